"""sync-salesforce-leads' work for one integration: Contacts, then Leads, incrementally.

Each object is queried from its watermark (`SystemModstamp >=` the last record processed,
ordered by SystemModstamp and Id; the boundary record itself is skipped) and every batch is
committed with the watermark of its last record. A run stops at MAX_RECORDS_PER_SYNC, or on
the org's limits, and the next one continues from there: nothing is missed or done twice.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from app import crypto, db, pauses
from app.config import get_settings
from app.models import Integration
from app.salesforce import queries
from app.salesforce.client import (
    SalesforceClient,
    SalesforceError,
    SalesforceRateLimited,
    SalesforceReauthRequired,
    refresh_access_token,
)
from app.salesforce.mapping import OBJECTS, soql, to_lead

log = logging.getLogger("salesforce")

NO_WATERMARK = {"SystemModstamp": "1970-01-01T00:00:00.000+0000", "Id": ""}


@dataclass
class Run:
    """What one run did, as its sync_logs row records it."""

    processed: int = 0
    created: int = 0
    updated: int = 0
    failed: int = 0
    skipped: Counter[str] = field(default_factory=Counter)

    def log_row(
        self, status: str, started: datetime, seconds: float, error: str | None
    ) -> dict[str, Any]:
        return {
            "status": status,
            "records_processed": self.processed,
            "records_created": self.created,
            "records_updated": self.updated,
            "records_failed": self.failed,
            "records_skipped": sum(self.skipped.values()),
            "skip_reasons": dict(self.skipped),
            "duration_ms": int(seconds * 1000),
            "error_message": error,
            "started_at": started,
            "completed_at": datetime.now(UTC),
        }


def sync_integration(integration_id: uuid.UUID) -> dict[str, Any]:
    """One run: never two at once for an integration (the run's lease)."""
    settings = get_settings()
    with db.session_scope() as session:
        integration = queries.start_run(
            session, integration_id, lease=timedelta(seconds=settings.lease_seconds)
        )
        if integration is None:
            return {"integration_id": str(integration_id), "skipped": "running or not enabled"}
        access = crypto.decrypt(session, integration.access_token_encrypted) or ""
    log.info(
        "[sync] starting integration_id=%s business_id=%s", integration.id, integration.business_id
    )
    started, clock = datetime.now(UTC), time.monotonic()
    run, status, error = Run(), "success", None
    try:
        client = SalesforceClient(
            integration.instance_url or "",
            access,
            refresh=lambda: _refresh(integration.id),
            reserve_percent=settings.salesforce_api_reserve_percent,
        )
        with closing(client):
            for sobject in OBJECTS:
                _sync_object(client, integration, sobject, run, settings.max_records_per_sync)
    except SalesforceReauthRequired as failure:
        status, error = "failed", str(failure)
        with db.session_scope() as session:
            queries.mark_needs_reauth(session, integration.id, error)
            pauses.pause(session, pauses.SALESFORCE, error, business_id=integration.business_id)
    except SalesforceRateLimited as failure:
        status, error = "partial", f"stopped by the org's limits; resumes next run: {failure}"
    except SalesforceError as failure:
        status, error = "failed", str(failure)
    except Exception as failure:
        # Anything else (a bug, the database): still log the run and give the lease back.
        log.exception("[sync] integration_id=%s failed", integration.id)
        status, error = "failed", f"{type(failure).__name__}: {failure}"
    row = run.log_row(status, started, time.monotonic() - clock, error)
    with db.session_scope() as session:
        queries.finish_run(session, integration, row, synced=status != "failed")
    log.info(
        "[sync] completed integration_id=%s status=%s processed=%d created=%d updated=%d failed=%d",
        integration.id,
        status,
        run.processed,
        run.created,
        run.updated,
        run.failed,
    )
    if error:
        log.warning("[sync] integration_id=%s: %s", integration.id, error)
    return {
        "integration_id": str(integration.id),
        **{k: v for k, v in row.items() if k not in ("started_at", "completed_at")},
    }


def _sync_object(
    client: SalesforceClient, integration: Integration, sobject: str, run: Run, cap: int
) -> None:
    if run.processed >= cap:
        return
    mark = integration.sync_state.get(sobject) or _since_last_sync(integration)
    log.info("[sync] fetching %ss integration_id=%s", sobject, integration.id)
    fetched = 0
    for batch in client.query(soql(sobject, mark["SystemModstamp"])):
        fresh = [
            r
            for r in batch
            if (r["SystemModstamp"], r["Id"]) > (mark["SystemModstamp"], mark["Id"])
        ]
        fresh = fresh[: cap - run.processed]
        fetched += len(fresh)
        if fresh:
            _store(integration, sobject, fresh, run)
            mark = {"SystemModstamp": fresh[-1]["SystemModstamp"], "Id": fresh[-1]["Id"]}
        if run.processed >= cap:
            break
    log.info(
        "[sync] fetched %ss integration_id=%s count=%d api_usage=%s",
        sobject,
        integration.id,
        fetched,
        client.limit_info,
    )


def _store(integration: Integration, sobject: str, records: list[dict[str, Any]], run: Run) -> None:
    """Upsert a batch and move the watermark to its last record, in one transaction; when the
    database refuses the batch, again one lead at a time, so only the rows it refuses fail."""
    rows = []
    for record in records:
        lead = to_lead(sobject, record)
        if isinstance(lead, str):
            run.skipped[lead] += 1
        else:
            rows.append(lead)
    last = {"SystemModstamp": records[-1]["SystemModstamp"], "Id": records[-1]["Id"]}
    try:
        created, updated, refused = _upsert(integration, sobject, rows, last, one_by_one=False)
    except OperationalError:
        raise  # the database itself: the run fails and the next one redoes this batch
    except DBAPIError as error:
        log.warning(
            "[sync] %s batch refused integration_id=%s: %s; upserting it one by one",
            sobject,
            integration.id,
            db.error_reason(error),
        )
        created, updated, refused = _upsert(integration, sobject, rows, last, one_by_one=True)
    for row, reason in refused:
        log.warning(
            "[sync] %s Id=%s refused integration_id=%s: %s",
            sobject,
            row["source_id"],
            integration.id,
            reason,
        )
    run.processed += len(records)
    run.created += created
    run.updated += updated
    run.failed += len(refused)


def _upsert(
    integration: Integration,
    sobject: str,
    rows: list[dict[str, Any]],
    last: dict[str, str],
    *,
    one_by_one: bool,
) -> tuple[int, int, list[tuple[dict[str, Any], str]]]:
    """(created, updated, refused rows with the reason), the watermark moved with them."""
    business, list_name = integration.business_id, OBJECTS[sobject].list_name
    with db.session_scope() as session:
        if one_by_one:
            stored = queries.upsert_leads_one_by_one(session, business, rows, list_name)
        else:
            stored = (*queries.upsert_leads(session, business, rows, list_name), [])
        queries.save_watermark(session, integration.id, sobject, last)
    return stored


def _refresh(integration_id: uuid.UUID) -> str:
    """Refresh the access token with the stored refresh token; store the results encrypted."""
    settings = get_settings()
    with db.session_scope() as session:
        row = session.get_one(Integration, integration_id)
        refresh_token = crypto.decrypt(session, row.refresh_token_encrypted) or ""
        client_id, client_secret = _oauth_client(session, row)
    token = refresh_access_token(
        settings.salesforce_login_url,
        client_id=client_id,
        client_secret=client_secret,
        refresh_token=refresh_token,
    )
    with db.session_scope() as session:
        queries.save_tokens(
            session,
            integration_id,
            access=token["access_token"],
            refresh=token.get("refresh_token"),
            instance_url=token.get("instance_url"),
        )
    log.info("[sync] refreshed the access token integration_id=%s", integration_id)
    return str(token["access_token"])


def _oauth_client(session: Session, integration: Integration) -> tuple[str, str]:
    """The integration's own OAuth client when the database holds one, else the environment's."""
    secret = crypto.decrypt(session, integration.oauth_client_secret_encrypted)
    if integration.oauth_client_id and secret:
        return integration.oauth_client_id, secret
    settings = get_settings()
    env_secret = settings.salesforce_client_secret
    return settings.salesforce_client_id or "", env_secret.get_secret_value() if env_secret else ""


def _since_last_sync(integration: Integration) -> dict[str, str]:
    """An integration carried over from the old system has only `last_sync_at`: its first run
    here goes on from there (SystemModstamp >= it), not from the beginning."""
    if integration.last_sync_at is None:
        return NO_WATERMARK
    moment = integration.last_sync_at.astimezone(UTC)
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"
    return {"SystemModstamp": stamp, "Id": ""}
