"""campaign-orchestrator's rules, run in this process against the fake ElevenLabs at fixed
instants: eligibility, order, quota, call windows in the lead's timezone, reservations."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, time, timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from app import db
from app.campaigns import queries, service
from app.fakes.elevenlabs import FakeElevenLabs
from app.models import (
    CallLog,
    Campaign,
    CampaignDial,
    CampaignLead,
    CampaignLeadStatus,
    Conversation,
    DialStatus,
    Lead,
)
from tests.campaigns import enroll, make_campaign

# 15:00 UTC on a winter weekday: 10:00 in New York, 07:00 in Los Angeles.
NOON_ISH = datetime(2026, 1, 14, 15, 0, tzinfo=UTC)


def run(campaign: Campaign, now: datetime = NOON_ISH) -> service.CampaignRun:
    return service.run_campaign(campaign.id, now)


def enrolment(session: Session, lead: Lead) -> CampaignLead:
    session.expire_all()
    return session.scalars(select(CampaignLead).where(CampaignLead.lead_id == lead.id)).one()


def dial_of(session: Session, lead: Lead) -> CampaignDial:
    return session.scalars(select(CampaignDial).where(CampaignDial.lead_id == lead.id)).one()


def dialled(fake: FakeElevenLabs, *leads: Lead) -> list[bool]:
    return [fake.dials_to(lead.phone or "") == 1 for lead in leads]


def test_dials_the_best_leads_first_up_to_the_daily_cap(
    session: Session, fake_elevenlabs: FakeElevenLabs
) -> None:
    campaign = make_campaign(session, daily_call_cap=3)
    leads = [
        enroll(session, campaign, quality_rating=q, lead_score=s)
        for q, s in [(1, 90), (5, 10), (3, 50), (5, 80), (None, 99)]
    ]
    assert run(campaign).as_dict() == {  # the task's result
        "campaign_id": str(campaign.id),
        "remaining": 3,
        "reserved": 3,
        "placed": 3,
        "failed": 0,
        "invalid_numbers": 0,
    }
    assert dialled(fake_elevenlabs, *leads) == [False, True, True, True, False]
    row = enrolment(session, leads[3])
    assert (row.status, row.attempts) == (CampaignLeadStatus.contacted, 1)
    conversation = session.scalars(
        select(Conversation).where(Conversation.conversation_id == row.conversation_id)
    ).one()
    assert (conversation.lead_id, conversation.campaign_id) == (leads[3].id, campaign.id)
    assert conversation.call_sid
    [dial] = [d for d in fake_elevenlabs.dials if d.to_number == leads[3].phone]
    assert dial.dynamic_variables == {"first_name": "Ada"}
    assert (dial.agent_id, dial.agent_phone_number_id) == ("agent_fake_1", "phnum_fake_1")
    logs = {log.lead_id: log for log in session.scalars(select(CallLog))}
    assert set(logs) == {leads[1].id, leads[2].id, leads[3].id}  # one per attempt
    log = logs[leads[3].id]
    assert (log.status, log.error, log.attempt, log.to_number) == (
        "placed",
        None,
        1,
        leads[3].phone,
    )
    assert (log.conversation_id, log.call_sid) == (row.conversation_id, conversation.call_sid)
    assert (log.campaign_id, log.dial_id) == (campaign.id, dial_of(session, leads[3]).id)
    assert run(campaign).remaining == 0  # the cap is reached for today


def test_eligibility_rules(session: Session, fake_elevenlabs: FakeElevenLabs) -> None:
    campaign = make_campaign(session)
    eligible = enroll(session, campaign)
    dnc = enroll(session, campaign, do_not_call=True)
    exhausted = enroll(session, campaign, attempts=3, status=CampaignLeadStatus.failed)
    done = enroll(session, campaign, status=CampaignLeadStatus.completed)
    recent = enroll(
        session,
        campaign,
        attempts=1,
        status=CampaignLeadStatus.failed,
        last_attempt_at=NOON_ISH - timedelta(hours=23),
    )
    spaced = enroll(
        session,
        campaign,
        attempts=1,
        status=CampaignLeadStatus.contacted,
        last_attempt_at=NOON_ISH - timedelta(hours=25),
    )
    run(campaign)
    assert dialled(fake_elevenlabs, eligible, dnc, exhausted, done, recent, spaced) == [
        True,
        False,
        False,
        False,
        False,
        True,
    ]
    assert enrolment(session, spaced).attempts == 2


def test_do_not_call_leads_are_dialled_when_the_campaign_allows_it(
    session: Session, fake_elevenlabs: FakeElevenLabs
) -> None:
    campaign = make_campaign(session, exclude_dnc=False)
    dnc = enroll(session, campaign, do_not_call=True)
    run(campaign)
    assert dialled(fake_elevenlabs, dnc) == [True]


@pytest.mark.parametrize(
    ("phone", "reason"),
    [
        (None, "no phone number"),
        ("", "no phone number"),
        ("2025550123", "phone number 2025550123 is not E.164"),
        ("+1 202 555 0123", "phone number +1 202 555 0123 is not E.164"),
        ("+0123456789", "phone number +0123456789 is not E.164"),
    ],
)
def test_an_invalid_number_is_skipped_with_the_reason(
    session: Session, fake_elevenlabs: FakeElevenLabs, phone: str | None, reason: str
) -> None:
    campaign = make_campaign(session)
    lead = enroll(session, campaign, phone=phone)
    assert run(campaign).invalid_numbers == 1
    row = enrolment(session, lead)
    assert (row.status, row.last_error, row.attempts) == (
        CampaignLeadStatus.invalid_number,
        reason,
        0,
    )
    assert fake_elevenlabs.dials == []


def test_the_window_is_the_leads_own_timezone_else_the_campaigns(
    session: Session, fake_elevenlabs: FakeElevenLabs
) -> None:
    campaign = make_campaign(session)  # 09:00-17:00; 10:00 in New York now
    west = enroll(session, campaign, timezone="America/Los_Angeles")  # 07:00 there
    east = enroll(session, campaign, timezone="America/New_York")
    unknown = enroll(session, campaign)  # no timezone: the campaign's
    run(campaign)
    assert dialled(fake_elevenlabs, west, east, unknown) == [False, True, True]
    run(campaign, NOON_ISH + timedelta(hours=3))  # 10:00 in Los Angeles
    assert dialled(fake_elevenlabs, west) == [True]


@pytest.mark.parametrize(
    ("local", "inside"),
    [(time(7, 59), False), (time(8, 0), True), (time(20, 59), True), (time(21, 0), False)],
)
def test_the_tcpa_hours_bound_any_campaign_window(
    session: Session, fake_elevenlabs: FakeElevenLabs, local: time, inside: bool
) -> None:
    campaign = make_campaign(session, call_window_start=time(6), call_window_end=time(23, 30))
    lead = enroll(session, campaign, timezone="America/Chicago")
    now = datetime(2026, 1, 14, local.hour, local.minute, tzinfo=UTC) + timedelta(hours=6)
    run(campaign, now)  # Chicago is UTC-6 in January
    assert dialled(fake_elevenlabs, lead) == [inside]


@pytest.mark.parametrize(
    ("now", "inside"),
    [
        # Spring forward, 2026-03-08: 12:00 UTC is 07:00 EST the day before, 08:00 EDT on it.
        (datetime(2026, 3, 7, 12, 59, tzinfo=UTC), False),
        (datetime(2026, 3, 8, 12, 0, tzinfo=UTC), True),
        (datetime(2026, 3, 8, 0, 59, tzinfo=UTC), True),  # 20:59 EST on the 7th
        (datetime(2026, 3, 9, 1, 0, tzinfo=UTC), False),  # 21:00 EDT on the 8th
        # Fall back, 2026-11-01: 12:00 UTC is 08:00 EDT the day before, 07:00 EST on it.
        (datetime(2026, 10, 31, 12, 0, tzinfo=UTC), True),
        (datetime(2026, 11, 1, 12, 0, tzinfo=UTC), False),
        (datetime(2026, 11, 1, 13, 0, tzinfo=UTC), True),
        (datetime(2026, 11, 2, 1, 59, tzinfo=UTC), True),  # 20:59 EST on the 1st
        (datetime(2026, 11, 2, 2, 0, tzinfo=UTC), False),
    ],
)
def test_windows_across_daylight_saving_transitions(
    session: Session, fake_elevenlabs: FakeElevenLabs, now: datetime, inside: bool
) -> None:
    campaign = make_campaign(session, call_window_start=time(0), call_window_end=time(23, 59))
    lead = enroll(session, campaign, timezone="America/New_York")
    run(campaign, now)
    assert dialled(fake_elevenlabs, lead) == [inside]


def test_the_daily_cap_restarts_at_the_campaigns_midnight(
    session: Session, fake_elevenlabs: FakeElevenLabs
) -> None:
    campaign = make_campaign(session, daily_call_cap=2, timezone="America/Los_Angeles")
    lead = enroll(session, campaign)
    row = enrolment(session, lead)
    # Midnight in Los Angeles on 2026-01-14 is 08:00 UTC.
    for attempt, at in enumerate(
        [datetime(2026, 1, 14, 7, 59, tzinfo=UTC), datetime(2026, 1, 14, 8, 0, tzinfo=UTC)], start=1
    ):
        session.add(
            CampaignDial(
                campaign_id=campaign.id,
                campaign_lead_id=row.id,
                lead_id=lead.id,
                attempt=attempt,
                to_number=lead.phone,
                status=DialStatus.placed,
                reserved_at=at,
            )
        )
    session.commit()
    with db.session_scope() as own:
        assert (
            queries.get_quota(
                own, campaign.id, datetime(2026, 1, 14, 7, 59, 59, tzinfo=UTC)
            ).calls_today
            == 1
        )
        assert (
            queries.get_quota(own, campaign.id, datetime(2026, 1, 14, 18, tzinfo=UTC)).calls_today
            == 1
        )
        assert (
            queries.get_quota(
                own, campaign.id, datetime(2026, 1, 15, 7, 59, tzinfo=UTC)
            ).calls_today
            == 1
        )
        assert (
            queries.get_quota(own, campaign.id, datetime(2026, 1, 15, 8, tzinfo=UTC)).calls_today
            == 0
        )


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("success_false", "ElevenLabs did not place the call: Failed to initiate the call"),
        ("422", "HTTP 422"),
        ("500", "HTTP 500"),
    ],
)
def test_a_failed_dial_records_the_attempt_as_failed(
    session: Session, fake_elevenlabs: FakeElevenLabs, fault: str, message: str
) -> None:
    campaign = make_campaign(session)
    lead = enroll(session, campaign)
    fake_elevenlabs.inject(fault)
    assert run(campaign).failed == 1
    row = enrolment(session, lead)
    assert (row.status, row.attempts) == (CampaignLeadStatus.failed, 1)
    assert row.last_error is not None
    assert message in row.last_error
    dial = session.scalars(select(CampaignDial)).one()
    assert (dial.status, dial.error) == (DialStatus.failed, row.last_error)
    log = session.scalars(select(CallLog)).one()
    assert (log.dial_id, log.status, log.error, log.to_number) == (
        dial.id,
        "failed",
        row.last_error,
        lead.phone,
    )
    assert (log.conversation_id, log.call_sid) == (None, None)
    assert len(fake_elevenlabs.dials) == 1  # tried once, never again for this attempt
    run(campaign)
    assert len(fake_elevenlabs.dials) == 1  # the retry interval has not passed


def test_a_conversation_that_cannot_be_stored_goes_to_call_logs(
    session: Session, fake_elevenlabs: FakeElevenLabs
) -> None:
    campaign = make_campaign(session)
    lead = enroll(session, campaign)
    session.add(Conversation(conversation_id="conv_fake00000001", business_id=campaign.business_id))
    session.commit()
    assert run(campaign).placed == 1
    log = session.scalars(select(CallLog)).one()
    assert (log.lead_id, log.conversation_id, log.status) == (
        lead.id,
        "conv_fake00000001",
        "placed",
    )
    assert log.call_sid
    assert log.error is not None
    assert log.error.startswith("conversation not recorded: ")
    assert "duplicate key" in log.error
    dial = session.scalars(select(CampaignDial)).one()
    assert (dial.status, dial.error, dial.conversation_id) == (
        DialStatus.placed,
        None,
        "conv_fake00000001",
    )
    assert enrolment(session, lead).status == CampaignLeadStatus.contacted


def test_a_reservation_whose_dial_was_never_recorded_is_never_dialled(
    session: Session, fake_elevenlabs: FakeElevenLabs
) -> None:
    campaign = make_campaign(session, retry_interval_minutes=60)
    lead = enroll(session, campaign)
    with db.session_scope() as own:  # the run reserved, then its worker died
        assert len(queries.reserve_dials(own, campaign.id, limit=10, now=NOON_ISH).dials) == 1
    run(campaign, NOON_ISH + timedelta(minutes=1))
    assert fake_elevenlabs.dials == []  # still reserved: not eligible, not expired
    run(campaign, NOON_ISH + timedelta(minutes=11))  # the reservation's lease is over
    assert fake_elevenlabs.dials == []
    dial = session.scalars(select(CampaignDial)).one()
    assert (dial.status, dial.attempt) == (DialStatus.unknown, 1)
    log = session.scalars(select(CallLog)).one()
    assert (log.dial_id, log.attempt, log.status, log.error, log.to_number) == (
        dial.id,
        1,
        "unknown",
        service.WORKER_STOPPED,
        lead.phone,
    )
    row = enrolment(session, lead)
    assert (row.status, row.attempts, row.last_error) == (
        CampaignLeadStatus.failed,
        1,
        service.WORKER_STOPPED,
    )
    run(campaign, NOON_ISH + timedelta(minutes=61))  # the retry interval: attempt 2
    assert dialled(fake_elevenlabs, lead) == [True]
    assert enrolment(session, lead).attempts == 2
    session.expire_all()
    logs = session.scalars(select(CallLog).order_by(CallLog.attempt))
    assert [(log.attempt, log.status) for log in logs] == [(1, "unknown"), (2, "placed")]


def test_a_late_answer_for_an_attempt_replaces_its_call_log(session: Session) -> None:
    campaign = make_campaign(session)
    lead = enroll(session, campaign)
    with db.session_scope() as own:
        [dial] = queries.reserve_dials(own, campaign.id, limit=10, now=NOON_ISH).dials
    with db.session_scope() as own:
        later = NOON_ISH + timedelta(hours=1)
        queries.expire_reservations(own, campaign.id, before=later, error=service.WORKER_STOPPED)
    with db.session_scope() as own:  # the stopped worker's call did go out after all
        queries.record_placed(own, dial, conversation_id="conv_late", call_sid="CA_late")
    log = session.scalars(select(CallLog)).one()
    assert (log.lead_id, log.status, log.error, log.conversation_id, log.call_sid) == (
        lead.id,
        "placed",
        None,
        "conv_late",
        "CA_late",
    )


def test_two_runs_at_once_dial_each_lead_once(
    session: Session, fake_elevenlabs: FakeElevenLabs
) -> None:
    campaign = make_campaign(session, daily_call_cap=1000)
    leads = [enroll(session, campaign) for _ in range(40)]
    fake_elevenlabs.inject("slow", times=40, seconds=0.05)
    with ThreadPoolExecutor(max_workers=2) as pool:  # .result() re-raises a run's error
        results = [f.result() for f in [pool.submit(run, campaign) for _ in range(2)]]
    assert sum(r.placed for r in results) == 40
    assert all(dialled(fake_elevenlabs, *leads))
    assert len(fake_elevenlabs.dials) == 40
    assert session.scalar(select(func.count()).select_from(CampaignDial)) == 40
    assert session.scalar(select(func.count()).select_from(CallLog)) == 40


def test_only_active_campaigns_within_their_dates_run(session: Session) -> None:
    today = NOON_ISH.date()
    running = make_campaign(session, start_date=today, end_date=today)
    make_campaign(session, start_date=today + timedelta(days=1))
    make_campaign(session, end_date=today - timedelta(days=1))
    make_campaign(session, status="paused")
    with db.session_scope() as own:
        assert [c.id for c in queries.get_active_campaigns(own, NOON_ISH)] == [running.id]


def test_an_unknown_timezone_is_refused_by_the_database(session: Session) -> None:
    campaign = make_campaign(session)
    with pytest.raises(Exception, match="leads_timezone_valid"):
        enroll(session, campaign, timezone="Mars/Olympus_Mons")
    session.rollback()
    assert session.scalar(text("SELECT is_valid_timezone('Europe/Amsterdam')")) is True


def test_concurrent_runs_of_one_campaign_never_pass_its_daily_cap(
    session: Session, fake_elevenlabs: FakeElevenLabs
) -> None:
    """Four runs of each of 16 campaigns at once (two beats, a manual run, a redelivery):
    every run reads the quota and reserves under the campaign's lock, so the caps hold."""
    caps = [1, 2, 3, 5] * 4
    campaigns = [make_campaign(session, daily_call_cap=cap) for cap in caps]
    for campaign in campaigns:
        for _ in range(8):
            enroll(session, campaign)
    runs = [campaign for campaign in campaigns for _ in range(4)]
    start = threading.Barrier(len(runs))

    def race(campaign: Campaign) -> service.CampaignRun:
        start.wait()
        return run(campaign)

    with ThreadPoolExecutor(max_workers=len(runs)) as pool:
        results = list(pool.map(race, runs))
    reserved = {campaign.id: 0 for campaign in campaigns}
    for result in results:
        reserved[result.campaign_id] += result.reserved
    assert [reserved[campaign.id] for campaign in campaigns] == caps
    assert len(fake_elevenlabs.dials) == sum(caps)


def test_a_run_dials_a_round_and_says_when_more_may_be_due(
    session: Session, fake_elevenlabs: FakeElevenLabs
) -> None:
    """A run reserves at most DIAL_ROUND (25) dials, so campaigns take turns on the workers."""
    campaign = make_campaign(session, daily_call_cap=1000)
    for _ in range(30):
        enroll(session, campaign)
    first = run(campaign)
    assert (first.reserved, first.full_round) == (25, True)
    second = run(campaign)
    assert (second.reserved, second.full_round) == (5, False)
    assert len(fake_elevenlabs.dials) == 30


def test_a_full_round_that_uses_up_the_quota_asks_for_no_next_run(
    session: Session, fake_elevenlabs: FakeElevenLabs
) -> None:
    campaign = make_campaign(session, daily_call_cap=25)
    for _ in range(30):
        enroll(session, campaign)
    assert (run(campaign).reserved, run(campaign).full_round) == (25, False)
    assert len(fake_elevenlabs.dials) == 25
