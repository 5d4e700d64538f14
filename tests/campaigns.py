"""Plain helpers for campaign tests: a business, a campaign, leads enrolled in it."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, time
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from app.models import Business, Campaign, CampaignLead, CampaignStatus, Lead

_numbers = itertools.count(2025550100)


def phone() -> str:
    """A fresh, well-formed US number in E.164."""
    return f"+1{next(_numbers)}"


def make_campaign(session: Session, **overrides: Any) -> Campaign:
    business = Business(name="Food Bank")
    session.add(business)
    session.flush()
    values: dict[str, Any] = {
        "business_id": business.id,
        "name": "Winter appeal",
        "status": CampaignStatus.active,
        "agent_id": "agent_fake_1",
        "agent_phone_number_id": "phnum_fake_1",
        "timezone": "America/New_York",
        "call_window_start": time(9),
        "call_window_end": time(17),
        "daily_call_cap": 100,
        "max_attempts": 3,
        "retry_interval_minutes": 1440,
        "exclude_dnc": True,
    }
    campaign = Campaign(**(values | overrides))
    session.add(campaign)
    session.commit()
    return campaign


def enroll(session: Session, campaign: Campaign, **lead: Any) -> Lead:
    """A lead of the campaign's business, enrolled in it; `lead` overrides the defaults."""
    row = Lead(
        **{
            "business_id": campaign.business_id,
            "source": "test",
            "source_id": uuid.uuid4().hex,
            "first_name": "Ada",
            "phone": phone(),
            **{k: v for k, v in lead.items() if k not in ("attempts", "status", "last_attempt_at")},
        }
    )
    session.add(row)
    session.flush()
    enrolment = {k: v for k, v in lead.items() if k in ("attempts", "status", "last_attempt_at")}
    session.execute(
        insert(CampaignLead).values(campaign_id=campaign.id, lead_id=row.id, **enrolment)
    )
    session.commit()
    return row


def midday_zone() -> str:
    """A fixed-offset zone where it is about noon now, so the call window is open."""
    offset = 12 - datetime.now(UTC).hour  # hours ahead of UTC; Etc/GMT signs are inverted
    return f"Etc/GMT{-offset:+d}" if offset else "Etc/GMT"


def all_day(session: Session) -> Campaign:
    return make_campaign(
        session, timezone=midday_zone(), call_window_start=time(0), call_window_end=time(23, 59)
    )
