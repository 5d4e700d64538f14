"""sync-salesforce-leads: a 50,000-record backfill from the fake Salesforce, with the per-run
cap raised, beside row-by-row upserts of the same leads in the same run."""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

from bench.environment import met

GOAL_PER_SECOND = 5000
ROW_BY_ROW = 5000

Row = tuple[str, ...]


def run(*, records: int) -> list[Row]:
    from app.config import get_settings
    from app.fakes.salesforce import FakeSalesforce
    from app.salesforce import service

    os.environ["MAX_RECORDS_PER_SYNC"] = str(records)
    get_settings.cache_clear()
    fake = FakeSalesforce("bench-client", "bench-secret", "bench-refresh")
    fake.add_many(
        "Contact",
        [
            {
                "FirstName": "Ada",
                "LastName": f"Contact {n}",
                "Email": f"Contact{n}@Example.com",
                "Phone": f"(202) 555-{n % 10000:04d}",
                "AccountName": "Acme",
            }
            for n in range(records)
        ],
    )
    with fake.serve() as running:
        integration = _integration(fake, running.url)
        started = time.perf_counter()
        result = service.sync_integration(integration)
        whole_run = records / (time.perf_counter() - started)
    if result["records_created"] != records:
        raise SystemExit(f"backfill created {result['records_created']} of {records}: {result}")
    bulk = _upserts(_rows(records), batch=2000)
    single = _upserts(_rows(ROW_BY_ROW), batch=1)
    return [
        ("way", "records", "records/s", "goal", "met"),
        (
            "database side: one upsert statement per batch of 2,000",
            f"{records:,}",
            f"{bulk:,.0f}",
            f">= {GOAL_PER_SECOND:,}",
            met(bulk >= GOAL_PER_SECOND),
        ),
        (
            "the whole sync run, fake Salesforce and mapping included",
            f"{records:,}",
            f"{whole_run:,.0f}",
            "",
            "",
        ),
        (
            "row by row: one upsert and commit per record",
            f"{ROW_BY_ROW:,}",
            f"{single:,.0f}",
            "baseline",
            "",
        ),
        ("ratio (database side)", "", f"{bulk / single:.1f}x", "", ""),
    ]


def _rows(count: int) -> list[dict[str, Any]]:
    """Mapped leads, as the sync hands them to the database."""
    return [
        {
            "source": "salesforce_contact",
            "source_id": f"003row{n:011d}",
            "first_name": "Ada",
            "last_name": f"Contact {n}",
            "email": f"contact{n}@example.com",
            "phone": "+12025550143",
            "company": "Acme",
            "do_not_call": False,
        }
        for n in range(count)
    ]


def _upserts(rows: list[dict[str, Any]], *, batch: int) -> float:
    """Records per second upserted (with their list membership), `batch` per transaction."""
    from app import db
    from app.models import Business
    from app.salesforce import queries

    with db.session_scope() as session:
        business = Business(name=f"bench: upserts of {batch}")
        session.add(business)
        session.flush()
        business_id = business.id
    started = time.perf_counter()
    for first in range(0, len(rows), batch):
        with db.session_scope() as session:
            queries.upsert_leads(
                session, business_id, rows[first : first + batch], "Salesforce Contacts"
            )
    return len(rows) / (time.perf_counter() - started)


def _integration(fake: Any, url: str) -> uuid.UUID:
    from app import crypto, db
    from app.models import Business, Integration

    with db.session_scope() as session:
        business = Business(name="bench: salesforce backfill")
        session.add(business)
        session.flush()
        integration = Integration(
            business_id=business.id,
            provider="salesforce",
            config={"syncEnabled": True},
            instance_url=url,
            access_token_encrypted=crypto.encrypt(session, fake.issue_token()),
        )
        session.add(integration)
        session.flush()
        return integration.id
