"""Liveness and readiness probes, and the Prometheus metrics."""

from __future__ import annotations

from typing import Any

import redis
from fastapi import APIRouter, Depends, Response, status
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app import db, metrics
from app.api.deps import metrics_reader
from app.config import get_settings

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(response: Response) -> dict[str, Any]:
    """The database and the broker answer."""
    checks = {"database": _database_ok(), "broker": _broker_ok()}
    if not all(checks.values()):
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return {"status": "ok" if all(checks.values()) else "unavailable", "checks": checks}


def _database_ok() -> bool:
    try:
        with db.get_engine().connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError:
        return False
    return True


def _broker_ok() -> bool:
    try:
        with redis.Redis.from_url(get_settings().redis_url, socket_timeout=2) as client:
            return bool(client.ping())
    except redis.RedisError:
        return False


@router.get("/metrics", dependencies=[Depends(metrics_reader)])
def prometheus_metrics() -> Response:
    """Queue depth from the database; task outcomes and claim times the workers recorded."""
    try:
        body = metrics.exposition()
    except (SQLAlchemyError, redis.RedisError) as error:
        return Response(
            f"metrics unavailable: {type(error).__name__}\n",
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            media_type="text/plain",
        )
    return Response(body, media_type=CONTENT_TYPE_LATEST)
