"""Campaigns end to end on a real worker: beat's tick dials, and a worker killed between a
reservation and its dial never leads to a second dial of that attempt."""

from __future__ import annotations

import pytest
from celery.beat import Scheduler
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.campaigns import service, tasks
from app.celery import app as celery_app
from app.fakes.elevenlabs import FakeElevenLabs
from app.models import CallLog, CampaignDial, CampaignLead, CampaignLeadStatus, DialStatus
from tests.campaigns import all_day, enroll
from tests.helpers import Worker, wait_for

pytestmark = pytest.mark.e2e


def dial_rows(session: Session) -> list[CampaignDial]:
    session.expire_all()
    return list(session.scalars(select(CampaignDial)))


def test_beats_tick_dials_the_campaigns_leads(
    session: Session, worker: Worker, fake_elevenlabs: FakeElevenLabs
) -> None:
    campaign = all_day(session)
    leads = [enroll(session, campaign) for _ in range(3)]
    scheduler = Scheduler(app=celery_app, lazy=False)
    scheduler.apply_entry(scheduler.schedule["campaign-orchestrator"])
    wait_for(
        lambda: all(fake_elevenlabs.dials_to(lead.phone or "") for lead in leads),
        timeout=20,
        what="a call to every lead",
    )
    wait_for(
        lambda: {d.status for d in dial_rows(session)} == {DialStatus.placed},
        what="the dials recorded",
    )
    worker.wait_idle()
    logs = session.scalars(select(CallLog)).all()
    assert sorted((log.to_number, log.status) for log in logs) == sorted(
        (lead.phone, "placed") for lead in leads
    )


def test_campaigns_take_turns_a_round_at_a_time(
    session: Session, worker: Worker, fake_elevenlabs: FakeElevenLabs
) -> None:
    """Three businesses' campaigns with 60 leads due each, and a fourth's with 3, on a worker
    of two processes: each run dials a round (25) and queues the next behind the others, so
    the small campaign's calls go out within the first rounds, not after the big campaigns."""
    big = [all_day(session) for _ in range(3)]
    for campaign in big:
        for _ in range(60):
            enroll(session, campaign)
    small = all_day(session)
    small_leads = {enroll(session, small).phone for _ in range(3)}
    fake_elevenlabs.inject("slow", times=200, seconds=0.02)
    scheduler = Scheduler(app=celery_app, lazy=False)
    scheduler.apply_entry(scheduler.schedule["campaign-orchestrator"])
    wait_for(lambda: len(fake_elevenlabs.dials) == 183, timeout=60, what="every call")
    worker.wait_idle()
    order = [dial.to_number for dial in fake_elevenlabs.dials]
    positions = [n for n, number in enumerate(order) if number in small_leads]
    assert len(positions) == 3
    # Without turns the small campaign waits for a big one's 60 calls beside another's 60.
    assert max(positions) < 90, positions


def test_a_worker_killed_between_reservation_and_dial_never_dials_twice(
    session: Session, worker: Worker, fake_elevenlabs: FakeElevenLabs
) -> None:
    campaign = all_day(session)
    lead = enroll(session, campaign)
    fake_elevenlabs.inject("slow", seconds=2)  # the call is on its way when the worker dies
    tasks.run_campaign.delay(str(campaign.id))
    wait_for(lambda: dial_rows(session), what="the reservation")
    worker.kill()
    worker.start()
    # A second run: the reservation's worker is gone, so it ends the attempt as unknown (it
    # may have been dialled) and dials nothing.
    tasks.run_campaign.delay(str(campaign.id))
    wait_for(lambda: dial_rows(session)[0].status == DialStatus.unknown, what="the expiry")
    worker.wait_idle()
    wait_for(lambda: fake_elevenlabs.dials, timeout=10, what="the slow call to land")
    [dial] = dial_rows(session)
    assert dial.attempt == 1
    row = session.scalars(select(CampaignLead)).one()
    assert (row.status, row.attempts) == (CampaignLeadStatus.failed, 1)
    assert fake_elevenlabs.dials_to(lead.phone or "") == 1
    assert len(fake_elevenlabs.dials) == 1
    log = session.scalars(select(CallLog)).one()  # the attempt is on record, outcome unknown
    assert (log.dial_id, log.status, log.error) == (dial.id, "unknown", service.WORKER_STOPPED)
