"""`callsync campaign`: outbound calling campaigns, their leads and progress."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Annotated

import typer

from app.config import load_or_exit
from app.models.campaigns import CampaignStatus

CampaignId = Annotated[uuid.UUID, typer.Argument(help="The campaign's id.")]
LeadsFile = Annotated[
    Path,
    typer.Option(
        "--leads", exists=True, dir_okay=False, help="A CSV file of leads (see the README)."
    ),
]

group = typer.Typer(help="Outbound calling campaigns.", no_args_is_help=True)


def _window(value: str) -> tuple[time, time]:
    opens, _, closes = value.partition("-")
    try:
        return time.fromisoformat(opens), time.fromisoformat(closes)
    except ValueError:
        raise typer.BadParameter(f"--window {value!r} is not HH:MM-HH:MM") from None


@group.command("create")
def campaign_create(
    business: Annotated[str, typer.Option(help="The business's id or name (a new name adds it).")],
    name: Annotated[str, typer.Option(help="The campaign's name.")],
    agent_id: Annotated[str, typer.Option(help="The ElevenLabs agent that calls.")],
    agent_phone_number_id: Annotated[str, typer.Option(help="Its Twilio number's ElevenLabs id.")],
    leads: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="A CSV file of leads to enrol."),
    ] = None,
    status: Annotated[CampaignStatus, typer.Option(help="active starts dialling.")] = (
        CampaignStatus.draft
    ),
    timezone: Annotated[str, typer.Option(help="The campaign's IANA timezone.")] = (
        "America/New_York"
    ),
    window: Annotated[str, typer.Option(help="Local call window, within 08:00-21:00.")] = (
        "09:00-17:00"
    ),
    daily_call_cap: Annotated[int, typer.Option(min=0, help="Dials per local day.")] = 100,
    max_attempts: Annotated[int, typer.Option(min=1, help="Attempts per lead.")] = 3,
    retry_interval_minutes: Annotated[int, typer.Option(min=0)] = 1440,
    exclude_dnc: Annotated[bool, typer.Option(help="Skip do-not-call leads.")] = True,
    start_date: Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"])] = None,
    end_date: Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"])] = None,
) -> None:
    """Create a campaign (and enrol the leads of a CSV file); print its id."""
    from app import db
    from app.campaigns import operations

    load_or_exit()
    opens, closes = _window(window)
    rows = operations.read_leads_csv(leads) if leads else []
    with db.session_scope() as session:
        business_id, added = operations.find_or_add_business(session, business)
        campaign = operations.create_campaign(
            session,
            business_id=business_id,
            name=name,
            status=status,
            agent_id=agent_id,
            agent_phone_number_id=agent_phone_number_id,
            timezone=timezone,
            call_window_start=opens,
            call_window_end=closes,
            daily_call_cap=daily_call_cap,
            max_attempts=max_attempts,
            retry_interval_minutes=retry_interval_minutes,
            exclude_dnc=exclude_dnc,
            start_date=_day(start_date),
            end_date=_day(end_date),
        )
        enrolled = operations.add_leads(session, campaign.id, rows) if rows else 0
    if added:
        typer.echo(f"added business {business!r}: {business_id}", err=True)
    typer.echo(f"{enrolled} leads enrolled", err=True)
    typer.echo(campaign.id)


@group.command("add-leads")
def campaign_add_leads(campaign: CampaignId, leads: LeadsFile) -> None:
    """Enrol the leads of a CSV file in the campaign (leads already in it keep their place)."""
    from app import db
    from app.campaigns import operations

    load_or_exit()
    rows = operations.read_leads_csv(leads)
    with db.session_scope() as session:
        enrolled = operations.add_leads(session, campaign, rows)
    typer.echo(f"{enrolled} of {len(rows)} leads newly enrolled in {campaign}")


@group.command("set-status")
def campaign_set_status(campaign: CampaignId, status: CampaignStatus) -> None:
    """Activate, pause or complete a campaign."""
    from app import db
    from app.campaigns import operations

    load_or_exit()
    with db.session_scope() as session:
        operations.set_status(session, campaign, status)
    typer.echo(f"campaign {campaign} is {status.value}")


@group.command("show")
def campaign_show(campaign: CampaignId) -> None:
    """A campaign's settings, its leads by status, today's dials against its cap, and its
    conversations."""
    from rich.console import Console

    from app import db
    from app.campaigns import operations

    load_or_exit()
    with db.session_scope() as session:
        progress = operations.progress(session, campaign, datetime.now(UTC))
    Console().print(operations.as_table(progress))


def _day(value: datetime | None) -> date | None:
    return value.date() if value else None
