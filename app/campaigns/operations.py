"""Creating campaigns, loading their leads from a CSV file, and reading their progress, for
`callsync campaign`."""

from __future__ import annotations

import csv
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from rich.table import Table
from sqlalchemy.orm import Session

from app import errors
from app.campaigns import queries
from app.campaigns.schemas import CsvLead
from app.models import Business, Campaign, CampaignStatus


class LeadsFileError(errors.InvalidInput):
    """The CSV file cannot be loaded; the message names every bad line and why."""


def read_leads_csv(path: Path) -> list[dict[str, Any]]:
    """Every line of the file as a lead row; all or nothing: any bad line refuses the file."""
    with path.open(newline="", encoding="utf-8-sig") as file:
        reader = csv.DictReader(file)
        if "phone" not in (reader.fieldnames or []):
            raise LeadsFileError(f"{path}: the header has no 'phone' column")
        leads: list[dict[str, Any]] = []
        errors: list[str] = []
        for line, record in enumerate(reader, start=2):
            try:
                leads.append(CsvLead.model_validate(record).as_lead())
            except ValidationError as error:
                errors.extend(f"{path}:{line}: {_describe(e)}" for e in error.errors())
    if errors:
        raise LeadsFileError("\n".join(errors))
    return leads


def _describe(error: Any) -> str:
    place = ".".join(str(part) for part in error["loc"])
    return f"{place}: {error['msg']}"


def find_or_add_business(session: Session, business: str) -> tuple[uuid.UUID, bool]:
    """The business with this id or exact name, or a new one of that name; True if new."""
    try:
        by_id = session.get(Business, uuid.UUID(business))
    except ValueError:
        by_id = None
    if by_id is not None:
        return by_id.id, False
    named = queries.get_business_ids_named(session, business)
    if len(named) > 1:
        raise errors.InvalidInput(f"{len(named)} businesses are named {business!r}: give its id")
    if named:
        return named[0], False
    added = Business(name=business)
    session.add(added)
    session.flush()
    return added.id, True


def create_campaign(session: Session, **values: Any) -> Campaign:
    """A campaign row; the database checks its window, dates, cap and timezone."""
    campaign = Campaign(**values)
    session.add(campaign)
    session.flush()
    return campaign


def add_leads(session: Session, campaign_id: uuid.UUID, leads: Iterable[dict[str, Any]]) -> int:
    """Upsert the leads into the campaign's business and enrol them; returns how many were
    newly enrolled (a lead already in the campaign keeps its place and attempts)."""
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise errors.NotFound(f"no campaign {campaign_id}")
    return queries.enroll_leads(session, campaign, list(leads))


@dataclass(frozen=True)
class Progress(queries.ProgressCounts):
    campaign: Campaign


def progress(session: Session, campaign_id: uuid.UUID, now: datetime) -> Progress:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise errors.NotFound(f"no campaign {campaign_id}")
    counts = queries.get_progress_counts(session, campaign_id, now)
    return Progress(**vars(counts), campaign=campaign)


def set_status(session: Session, campaign_id: uuid.UUID, status: CampaignStatus) -> None:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise errors.NotFound(f"no campaign {campaign_id}")
    campaign.status = status


def as_table(progress: Progress) -> Table:
    """The campaign's settings and counts, for the terminal."""
    c = progress.campaign
    table = Table(title=f"campaign {c.id}: {c.name} ({c.status.value})", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    window = f"{c.call_window_start:%H:%M}-{c.call_window_end:%H:%M} {c.timezone}"
    today = sum(progress.dials_today.values())
    rows = {
        "agent": f"{c.agent_id} from {c.agent_phone_number_id}",
        "dates": f"{c.start_date or 'any'} to {c.end_date or 'any'}",
        "call window": window,
        "attempts": f"at most {c.max_attempts}, {c.retry_interval_minutes} min apart",
        "today's dials": f"{today} of {c.daily_call_cap} ({_counts(progress.dials_today)})",
        "leads": f"{sum(progress.leads.values())} ({_counts(progress.leads)})",
        "dials": f"{sum(progress.dials.values())} ({_counts(progress.dials)})",
        "conversations": f"{sum(progress.conversations.values())} "
        f"({_counts(progress.conversations)})",
    }
    for name, value in rows.items():
        table.add_row(name, value)
    return table


def _counts(by_status: dict[str, int]) -> str:
    return ", ".join(f"{status} {count}" for status, count in sorted(by_status.items())) or "none"
