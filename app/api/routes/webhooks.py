"""webhook-ingest: `POST /webhooks/ultravox/{agency_id}` (seed 002).

Every request writes one webhook_logs row. An accepted event is queued in the same statement,
answered 204, and only then is the drain woken. Bad input is answered 4xx with its reason.
"""

from __future__ import annotations

import ipaddress
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.config import Settings
from app.webhooks.ingest import MAX_BODY_BYTES, Delivery, Rejected, check, loggable_headers
from app.webhooks.store import LoggedRequest, WebhookStore


async def webhook_ingest(request: Request) -> Response:
    """Verify, log and queue one Ultravox webhook delivery."""
    settings: Settings = request.app.state.settings
    store: WebhookStore = request.app.state.webhook_store
    agency_id: str = request.path_params["agency_id"]
    logged = LoggedRequest(
        method=request.method,
        path=request.scope["path"],
        headers=loggable_headers(request.headers),
        source_ip=_source_ip(request),
    )
    agency = _uuid(agency_id)
    secrets = await store.secrets(agency) if agency else None
    known = agency if secrets is not None else None
    try:
        delivery = Delivery(await _read_body(request), request.headers)
        logged.body = delivery.text
        if known is None:
            raise Rejected(404, f"no agency {agency_id}")
        tolerance = timedelta(seconds=settings.webhook_timestamp_tolerance_seconds)
        event = check(delivery, secrets or [], now=datetime.now(UTC), tolerance=tolerance)
    except Rejected as rejected:
        return await _reject(store, known, logged, rejected)
    try:
        queued = await store.accept(known, event, logged)
    except asyncpg.DataError as error:  # JSON that jsonb refuses, such as a \u0000 escape
        logged.body = None
        return await _reject(store, known, logged, Rejected(400, f"body cannot be stored: {error}"))
    if queued:
        request.app.state.drain_waker.poke()
    return Response(status_code=204)


async def _reject(
    store: WebhookStore, agency: uuid.UUID | None, logged: LoggedRequest, rejected: Rejected
) -> Response:
    await store.reject(agency, logged, rejected.reason)
    return JSONResponse({"detail": rejected.reason}, status_code=rejected.status)


async def _read_body(request: Request) -> bytes:
    """The raw body, refused with 413 as soon as it passes MAX_BODY_BYTES."""
    too_large = Rejected(413, f"body is larger than {MAX_BODY_BYTES} bytes")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise too_large
    return bytes(body)


def _source_ip(request: Request) -> str | None:
    """The client's address; uvicorn has already replaced a trusted proxy's with the forwarded one."""
    host = request.client.host if request.client else None
    try:
        return str(ipaddress.ip_address(host)) if host else None
    except ValueError:
        return None


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


# A plain Starlette route: FastAPI's parameter solving would cost a fifth of this hot path,
# and the endpoint reads the raw body itself anyway.
route = Route("/webhooks/ultravox/{agency_id}", webhook_ingest, methods=["POST"])
