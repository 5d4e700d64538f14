"""The FastAPI application, served by `callsync api` (uvicorn)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from redis.asyncio import Redis

from app.api.routes import functions, health, historical_syncs, sync_functions, webhooks
from app.config import Settings, comma_separated, get_settings
from app.webhooks.store import WebhookStore
from app.webhooks.wake import DrainWaker


@asynccontextmanager
async def lifespan(api: FastAPI) -> AsyncIterator[None]:
    """webhook-ingest's async connections: an asyncpg pool, and Redis to wake the drain."""
    settings: Settings = api.state.settings
    api.state.webhook_store = await WebhookStore.connect(settings)
    redis = Redis.from_url(settings.redis_url)
    api.state.drain_waker = DrainWaker(redis)
    try:
        yield
    finally:
        await api.state.drain_waker.close()
        await redis.aclose()
        await api.state.webhook_store.close()


async def invalid_request(_: Request, error: RequestValidationError) -> JSONResponse:
    """422 naming each error's place, message and type. The offending input is not echoed
    back: it may hold a secret, and it may not even be JSON that can be sent (Infinity)."""
    errors = [{"loc": e["loc"], "msg": e["msg"], "type": e["type"]} for e in error.errors()]
    return JSONResponse({"detail": errors}, status_code=422)


def create_app(settings: Settings | None = None) -> FastAPI:
    api = FastAPI(title="callsync", version="0.1.0", lifespan=lifespan)
    api.exception_handlers[RequestValidationError] = invalid_request
    api.state.settings = settings = settings or get_settings()
    allow_cors(api, comma_separated(settings.cors_allowed_origins))
    api.include_router(health.router)
    api.router.routes.append(webhooks.route)
    api.include_router(historical_syncs.router)
    api.include_router(sync_functions.router)  # before functions' catch-all /{name}
    api.include_router(functions.router)
    return api


def allow_cors(api: FastAPI, origins: list[str]) -> None:
    """Browser pages from these origins may call the API with a bearer token (no cookies are
    used, so no credentials mode); with no origins, no CORS header is ever sent."""
    if origins:
        api.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST"],
            # supabase.functions.invoke, as the old front end calls, also sends the last two.
            allow_headers=[
                "Authorization",
                "X-Agency-Id",
                "Content-Type",
                "apikey",
                "x-client-info",
            ],
        )


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn settings of the API: its lifespan, and X-Forwarded-For from trusted proxies only."""
    proxies = comma_separated(settings.trusted_proxies)
    return {
        "lifespan": "on",
        "proxy_headers": bool(proxies),
        "forwarded_allow_ips": proxies or None,
    }
