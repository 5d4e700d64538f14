"""The FastAPI application, served by `callsync api` (uvicorn)."""

from __future__ import annotations

from fastapi import FastAPI

from app.api.routes import functions, health, historical_syncs


def create_app() -> FastAPI:
    api = FastAPI(title="callsync", version="0.1.0")
    api.include_router(health.router)
    api.include_router(historical_syncs.router)
    api.include_router(functions.router)
    return api
