"""Plain helpers for Salesforce sync tests: a connected integration, records in the fake org."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from app import crypto
from app.fakes.salesforce import FakeSalesforce
from app.models import Business, Integration
from tests.conftest import FAKE_SALESFORCE_PORT

URL = f"http://127.0.0.1:{FAKE_SALESFORCE_PORT}"


def connect(session: Session, fake: FakeSalesforce, *, refresh: str | None = None) -> uuid.UUID:
    business = Business(name="Acme Fundraising")
    session.add(business)
    session.flush()
    integration = Integration(
        business_id=business.id,
        provider="salesforce",
        config={"syncEnabled": True},
        instance_url=URL,
        access_token_encrypted=crypto.encrypt(session, fake.issue_token()),
        refresh_token_encrypted=crypto.encrypt(session, refresh or fake.refresh_token),
    )
    session.add(integration)
    session.commit()
    return integration.id


def contacts(fake: FakeSalesforce, count: int, **fields: Any) -> list[dict[str, Any]]:
    return [
        fake.add("Contact", LastName=f"Contact {n}", Phone=f"(202) 555-{n % 10000:04d}", **fields)
        for n in range(count)
    ]
