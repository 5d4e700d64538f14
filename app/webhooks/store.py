"""webhook-ingest's database access, over asyncpg: the hot path is one statement per delivery.

An accepted delivery writes its webhook_queue row and its webhook_logs row in one
`WITH ... INSERT` statement, so both commit together or not at all. The row's id is
time-ordered (migration 0018), so the queue's primary key stays quick however many finished
events it holds.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

import asyncpg
from cachetools import TTLCache
from sqlalchemy.engine import make_url

from app.config import Settings
from app.webhooks.ingest import Event

SECRET_CACHE_SIZE = 10_000  # agencies whose secrets one API process keeps at once

ACCEPT = """
WITH body AS (
    SELECT $3::text::jsonb AS doc
), queued AS (
    INSERT INTO webhook_queue (id, agency_id, event_type, payload)
    SELECT time_ordered_uuid(), $1, $2, doc FROM body
    ON CONFLICT DO NOTHING
    RETURNING id
), item AS (
    SELECT id FROM queued
    UNION ALL
    SELECT id FROM webhook_queue
    WHERE NOT EXISTS (SELECT FROM queued)
        AND agency_id = $1 AND event_type = $2 AND payload #>> '{call,callId}' = $4
)
INSERT INTO webhook_logs (
    agency_id, request_method, request_path, request_headers, request_body,
    validation_success, queue_item_id, source_ip
)
SELECT $1, $5, $6, $7::text::jsonb, (SELECT doc FROM body), true, (SELECT id FROM item LIMIT 1),
    $8::text::inet
RETURNING EXISTS (SELECT FROM queued)
"""

REJECT = """
INSERT INTO webhook_logs (
    agency_id, request_method, request_path, request_headers, request_body,
    validation_success, validation_error, source_ip
)
VALUES ($1, $2, $3, $4::text::jsonb, $5::text::jsonb, false, $6, $7::text::inet)
"""

# decrypt_api_key is STRICT: a secret not set comes back NULL.
SECRETS = """
SELECT decrypt_api_key(webhook_secret_encrypted, $2),
       decrypt_api_key(webhook_secret_previous_encrypted, $2)
FROM agencies WHERE id = $1
"""


@dataclass
class LoggedRequest:
    """What webhook_logs keeps of a request; `body` is the JSON text where it parsed."""

    method: str
    path: str
    headers: dict[str, str]
    source_ip: str | None
    body: str | None = None


class WebhookStore:
    """Secrets lookup and the two writes of webhook-ingest."""

    def __init__(
        self, pool: asyncpg.Pool, encryption_key: str, secret_cache_seconds: float
    ) -> None:
        self._pool = pool
        self._encryption_key = encryption_key
        # Agency -> its secrets, kept a few seconds: a lookup costs as much as the insert.
        self._secrets: TTLCache[uuid.UUID, list[str]] = TTLCache(
            maxsize=SECRET_CACHE_SIZE, ttl=secret_cache_seconds
        )

    @classmethod
    async def connect(cls, settings: Settings) -> WebhookStore:
        dsn = make_url(settings.database_url).set(drivername="postgresql")
        pool = await asyncpg.create_pool(
            dsn.render_as_string(hide_password=False),
            min_size=settings.webhook_db_connections,
            max_size=settings.webhook_db_connections,
            reset=_keep,
        )
        return cls(
            pool,
            settings.encryption_key.get_secret_value(),
            settings.webhook_secret_cache_seconds,
        )

    async def close(self) -> None:
        await self._pool.close()

    async def secrets(self, agency_id: uuid.UUID) -> list[str] | None:
        """The agency's webhook secrets, current first; None when there is no such agency."""
        cached = self._secrets.get(agency_id)
        if cached is not None:
            return cached
        row = await self._pool.fetchrow(SECRETS, agency_id, self._encryption_key)
        if row is None:
            return None
        secrets = [secret for secret in row if secret is not None]
        self._secrets[agency_id] = secrets
        return secrets

    async def accept(self, agency_id: uuid.UUID, event: Event, request: LoggedRequest) -> bool:
        """Queue the event and log the request; False when the event was already queued."""
        queued: bool = await self._pool.fetchval(
            ACCEPT,
            agency_id,
            event.event,
            request.body,
            event.call_id,
            request.method,
            request.path,
            json.dumps(request.headers),
            request.source_ip,
        )
        return queued

    async def reject(
        self, agency_id: uuid.UUID | None, request: LoggedRequest, reason: str
    ) -> None:
        """Log a refused request; a body that jsonb refuses (a \\u0000 escape) is left out."""
        headers = json.dumps(request.headers)
        values = (agency_id, request.method, request.path, headers, request.body, reason)
        try:
            await self._pool.execute(REJECT, *values, request.source_ip)
        except asyncpg.DataError as error:
            unstored = (*values[:4], None, f"{reason}; body not stored: {error}")
            await self._pool.execute(REJECT, *unstored, request.source_ip)


async def _keep(_: asyncpg.Connection) -> None:
    """Return a connection to the pool as it is. The default reset costs a round trip per
    release; these single auto-committed statements leave no session state behind."""
