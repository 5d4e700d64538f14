"""SQL for sync-salesforce-leads: the run's lease, tokens, bulk upserts and sync_logs.

Nothing here commits; the caller owns the transaction.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import Boolean, Row, Text, Uuid, and_, bindparam, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from app import crypto, db, errors, liveness, pauses
from app.models import Integration, LeadList, SyncLog

PROVIDER = "salesforce"

_ENABLED = (
    (Integration.provider == PROVIDER)
    & (Integration.status == "active")
    & Integration.config["syncEnabled"].as_boolean()
)


def connect(
    session: Session, business_id: uuid.UUID, *, instance_url: str, refresh_token: str
) -> uuid.UUID:
    """The business's Salesforce integration with sync on; its first run refreshes the access
    token."""
    integration = Integration(
        business_id=business_id,
        provider=PROVIDER,
        config={"syncEnabled": True},
        instance_url=instance_url,
        refresh_token_encrypted=crypto.encrypt(session, refresh_token),
    )
    session.add(integration)
    session.flush()
    pauses.resume(session, pauses.SALESFORCE, business_id=business_id)
    return integration.id


LEAD_COLUMNS = {
    "source": Text,
    "source_id": Text,
    "first_name": Text,
    "last_name": Text,
    "email": Text,
    "phone": Text,
    "company": Text,
    "do_not_call": Boolean,
}
_UPDATED = ", ".join(f"{c} = EXCLUDED.{c}" for c in list(LEAD_COLUMNS)[2:])
# The batch arrives as one array per column: a short statement, whatever the batch size.
# xmax is 0 on a row this statement inserted, and set on one it updated.
UPSERT_LEADS = text(f"""
    INSERT INTO leads (business_id, {", ".join(LEAD_COLUMNS)})
    SELECT :business_id, * FROM unnest({", ".join(f":{c}" for c in LEAD_COLUMNS)})
    ON CONFLICT (business_id, source, source_id)
    DO UPDATE SET {_UPDATED}, updated_at = now()
    RETURNING id, xmax = 0 AS created
""").bindparams(*(bindparam(c, type_=ARRAY(t)) for c, t in LEAD_COLUMNS.items()))  # noqa: S608

ADD_MEMBERS = text("""
    INSERT INTO lead_list_members (list_id, lead_id)
    SELECT :list_id, unnest(:lead_ids) ON CONFLICT DO NOTHING
""").bindparams(bindparam("lead_ids", type_=ARRAY(Uuid)))


def get_enabled_integrations(session: Session) -> list[uuid.UUID]:
    """Salesforce integrations with syncEnabled that need no new authorisation."""
    return list(session.scalars(select(Integration.id).where(_ENABLED)))


def start_run(
    session: Session, integration_id: uuid.UUID, *, lease: timedelta
) -> Integration | None:
    """Take the integration's run; None when a run holds it or sync is off. A run holds it
    while its worker lives (app.liveness); one started outside a worker, for `lease`."""
    holder = Integration.sync_worker_id
    free = or_(
        Integration.sync_started_at.is_(None),
        and_(holder.is_(None), Integration.sync_started_at < func.now() - lease),
        and_(holder.is_not(None), ~liveness.alive(holder)),
    )
    stmt = (
        update(Integration)
        .where(Integration.id == integration_id, _ENABLED, free)
        .values(sync_started_at=func.now(), sync_worker_id=liveness.holder())
        .returning(Integration)
    )
    return session.scalars(stmt).one_or_none()


def finish_run(
    session: Session, integration: Integration, log: dict[str, Any], *, synced: bool
) -> None:
    """Write the run's sync_logs row and give the lease back."""
    session.add(
        SyncLog(
            integration_id=integration.id,
            business_id=integration.business_id,
            provider=PROVIDER,
            **log,
        )
    )
    values: dict[str, Any] = {
        "sync_started_at": None,
        "sync_worker_id": None,
        "updated_at": func.now(),
    }
    if synced:
        values["last_sync_at"] = func.now()
    session.execute(update(Integration).where(Integration.id == integration.id).values(**values))


def save_tokens(
    session: Session,
    integration_id: uuid.UUID,
    *,
    access: str,
    refresh: str | None,
    instance_url: str | None,
) -> None:
    """Store a refreshed access token (and a rotated refresh token), encrypted."""
    values: dict[str, Any] = {"access_token_encrypted": crypto.encrypt(session, access)}
    if refresh:
        values["refresh_token_encrypted"] = crypto.encrypt(session, refresh)
    if instance_url:
        values["instance_url"] = instance_url
    session.execute(update(Integration).where(Integration.id == integration_id).values(**values))


def mark_needs_reauth(session: Session, integration_id: uuid.UUID, reason: str) -> None:
    session.execute(
        update(Integration)
        .where(Integration.id == integration_id)
        .values(status="needs_reauth", status_reason=reason, updated_at=func.now())
    )


def save_watermark(
    session: Session, integration_id: uuid.UUID, sobject: str, mark: dict[str, str]
) -> None:
    """Move one object's watermark (SystemModstamp and Id of the last record processed)."""
    session.execute(
        text("""UPDATE integrations
                SET sync_state = jsonb_set(sync_state, ARRAY[:sobject], CAST(:mark AS jsonb))
                WHERE id = :id"""),
        {"sobject": sobject, "mark": json.dumps(mark), "id": integration_id},
    )


def upsert_leads(
    session: Session, business_id: uuid.UUID, rows: Sequence[dict[str, Any]], list_name: str
) -> tuple[int, int]:
    """Upsert on (business_id, source, source_id) in one statement and add every lead to the
    list; returns (created, updated)."""
    if not rows:
        return 0, 0
    upserted = _upsert(session, business_id, rows)
    return _add_to_list(session, business_id, list_name, rows[0]["source"], upserted)


def upsert_leads_one_by_one(
    session: Session, business_id: uuid.UUID, rows: Sequence[dict[str, Any]], list_name: str
) -> tuple[int, int, list[tuple[dict[str, Any], str]]]:
    """upsert_leads a row at a time, each under a savepoint, so that a row the database refuses
    leaves the others stored; returns (created, updated, the refused rows with the reason)."""
    upserted: list[Row[Any]] = []
    refused: list[tuple[dict[str, Any], str]] = []
    for row in rows:
        try:
            with session.begin_nested():
                upserted += _upsert(session, business_id, [row])
        except OperationalError:
            raise  # the database itself, not this row
        except DBAPIError as error:
            refused.append((row, db.error_reason(error)))
    if not upserted:
        return 0, 0, refused
    created, updated = _add_to_list(session, business_id, list_name, rows[0]["source"], upserted)
    return created, updated, refused


def _upsert(
    session: Session, business_id: uuid.UUID, rows: Sequence[dict[str, Any]]
) -> list[Row[Any]]:
    params: dict[str, Any] = {"business_id": business_id}
    params.update({column: [row[column] for row in rows] for column in LEAD_COLUMNS})
    return list(session.execute(UPSERT_LEADS, params).all())


def _add_to_list(
    session: Session,
    business_id: uuid.UUID,
    list_name: str,
    source: str,
    upserted: Sequence[Row[Any]],
) -> tuple[int, int]:
    """Add the upserted leads to the list; returns (created, updated)."""
    list_id = _lead_list(session, business_id, list_name, source)
    session.execute(ADD_MEMBERS, {"list_id": list_id, "lead_ids": [row.id for row in upserted]})
    created = sum(1 for row in upserted if row.created)
    return created, len(upserted) - created


def _lead_list(session: Session, business_id: uuid.UUID, name: str, source: str) -> uuid.UUID:
    stmt = (
        insert(LeadList)
        .values(business_id=business_id, name=name, source=source)
        .on_conflict_do_update(index_elements=["business_id", "name"], set_={"name": name})
        .returning(LeadList.id)
    )
    return session.scalars(stmt).one()


def set_oauth_client(
    session: Session, integration_id: uuid.UUID, *, client_id: str, client_secret: str
) -> None:
    """Store the org's own connected app for the integration's token refreshes, encrypted."""
    result = session.execute(
        update(Integration)
        .where(Integration.id == integration_id)
        .values(
            oauth_client_id=client_id,
            oauth_client_secret_encrypted=crypto.encrypt(session, client_secret),
            updated_at=func.now(),
        )
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise errors.NotFound(f"no integration {integration_id}")
