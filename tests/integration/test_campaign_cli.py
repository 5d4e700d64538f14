"""`callsync campaign`: a campaign created and its leads loaded from a CSV file, without SQL,
then run by the orchestrator and shown with its progress."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.campaigns import operations, service
from app.fakes.elevenlabs import FakeElevenLabs
from app.models import Business, Campaign, CampaignLead, CampaignStatus, Lead
from tests.integration.test_cli import callsync

# 15:00 UTC on a winter weekday: 10:00 in New York.
MORNING_IN_NEW_YORK = datetime(2026, 1, 14, 15, 0, tzinfo=UTC)

LEADS = """phone,first_name,last_name,email,timezone,do_not_call,quality_rating
+12025550101,Ada,Lovelace,ADA@example.org,,false,5
(202) 555-0102,Grace,Hopper,,America/Chicago,no,
+12025550103,Alan,Turing,,,true,3
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "leads.csv"
    path.write_text(text)
    return path


def create(tmp_path: Path, *extra: str) -> uuid.UUID:
    result = callsync(
        "campaign",
        "create",
        "--business",
        "Food Bank",
        "--name",
        "Winter appeal",
        "--agent-id",
        "agent_fake_1",
        "--agent-phone-number-id",
        "phnum_fake_1",
        "--leads",
        str(write(tmp_path, LEADS)),
        "--daily-call-cap",
        "2",
        *extra,
    )
    assert result.returncode == 0, result.stderr
    assert "added business 'Food Bank'" in result.stderr
    assert "3 leads enrolled" in result.stderr
    return uuid.UUID(result.stdout.strip())


def test_create_a_campaign_from_a_csv_file_run_it_and_show_its_progress(
    tmp_path: Path, session: Session, fake_elevenlabs: FakeElevenLabs
) -> None:
    campaign_id = create(tmp_path, "--status", "active", "--window", "09:00-16:30")
    campaign = session.get_one(Campaign, campaign_id)
    assert (campaign.status, campaign.daily_call_cap) == (CampaignStatus.active, 2)
    assert (campaign.call_window_start, campaign.call_window_end) == (time(9), time(16, 30))
    leads = {lead.first_name: lead for lead in session.scalars(select(Lead))}
    assert leads["Grace"].phone == "+12025550102"  # read as E.164
    assert (leads["Ada"].email, leads["Ada"].quality_rating) == ("ada@example.org", 5)
    assert (leads["Grace"].timezone, leads["Alan"].do_not_call) == ("America/Chicago", True)

    service.run_campaign(campaign_id, MORNING_IN_NEW_YORK)
    assert len(fake_elevenlabs.dials) == 2  # the cap; the do-not-call lead is never dialled

    shown = callsync("campaign", "show", str(campaign_id))
    assert shown.returncode == 0, shown.stderr
    assert "Winter appeal (active)" in " ".join(shown.stdout.split())
    rows = table_rows(shown.stdout)
    assert rows["call window"] == "09:00-16:30 America/New_York"
    assert rows["today's dials"] == "0 of 2 (none)"  # the run was on another day
    assert rows["leads"] == "3 (contacted 2, pending 1)"
    assert rows["dials"] == "2 (placed 2)"
    assert rows["conversations"] == "2 (initiated 2)"
    that_day = operations.progress(session, campaign_id, MORNING_IN_NEW_YORK)
    assert that_day.dials_today == {"placed": 2}


def table_rows(output: str) -> dict[str, str]:
    """The two cells of each row of a table rich drew."""
    cells = [line.strip("│ ").split("│") for line in output.splitlines() if line.count("│") == 3]
    return {name.strip(): value.strip() for name, value in cells}


def test_loading_the_same_file_again_enrols_no_lead_twice(tmp_path: Path, session: Session) -> None:
    campaign_id = create(tmp_path)
    again = callsync(
        "campaign", "add-leads", str(campaign_id), "--leads", str(tmp_path / "leads.csv")
    )
    assert again.returncode == 0, again.stderr
    assert f"0 of 3 leads newly enrolled in {campaign_id}" in again.stdout
    assert session.scalar(select(func.count()).select_from(CampaignLead)) == 3
    assert session.scalar(select(func.count()).select_from(Lead)) == 3
    assert session.scalar(select(func.count()).select_from(Business)) == 1

    activated = callsync("campaign", "set-status", str(campaign_id), "active")
    assert activated.returncode == 0, activated.stderr
    assert session.get_one(Campaign, campaign_id).status == CampaignStatus.active


def test_a_bad_file_is_refused_whole_with_every_bad_line_named(
    tmp_path: Path, session: Session
) -> None:
    bad = write(tmp_path, "phone,timezone,quality_rating\n+12025550101,Mars/Base,\n,,x\n")
    result = callsync(
        "campaign",
        "create",
        "--business",
        "Food Bank",
        "--name",
        "n",
        "--agent-id",
        "a",
        "--agent-phone-number-id",
        "p",
        "--leads",
        str(bad),
    )
    assert result.returncode == 2
    assert f"{bad}:2: timezone: Value error, unknown timezone 'Mars/Base'" in result.stderr
    assert f"{bad}:3: phone: Input should be a valid string" in result.stderr
    assert f"{bad}:3: quality_rating: Input should be a valid integer" in result.stderr
    assert session.scalar(select(func.count()).select_from(Campaign)) == 0

    no_phone = write(tmp_path, "name\nAda\n")
    result = callsync("campaign", "add-leads", str(uuid.uuid4()), "--leads", str(no_phone))
    assert (result.returncode, result.stderr.strip()) == (
        2,
        f"callsync: error: {no_phone}: the header has no 'phone' column",
    )


def test_an_unknown_campaign_gets_one_line_and_status_2() -> None:
    missing = uuid.uuid4()
    result = callsync("campaign", "show", str(missing))
    assert (result.returncode, result.stderr.strip()) == (
        2,
        f"callsync: error: no campaign {missing}",
    )
