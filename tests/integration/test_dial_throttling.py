"""ElevenLabs' two 429s (api-facts §2.1) through the fake over HTTP: too_many_concurrent_requests
queues the dial until a place frees, and system_busy is retried with backoff. Neither placed a
call, so neither costs the lead an attempt."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.campaigns import client, service
from app.config import get_settings
from app.fakes.elevenlabs import FakeElevenLabs
from app.models import CallLog, CampaignDial, CampaignLead, CampaignLeadStatus, Lead, ProviderPause
from tests.campaigns import enroll, make_campaign

NOON_ISH = datetime(2026, 1, 14, 15, 0, tzinfo=UTC)  # 10:00 in New York, in the window


def enrolment(session: Session, lead: Lead) -> CampaignLead:
    session.expire_all()
    return session.scalars(select(CampaignLead).where(CampaignLead.lead_id == lead.id)).one()


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Settings read again (and the client built again) after the test sets some."""
    yield monkeypatch
    monkeypatch.undo()
    get_settings.cache_clear()
    client.default_client.cache_clear()


def use(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    client.default_client.cache_clear()


@pytest.fixture
def one_place(fake_elevenlabs: FakeElevenLabs) -> Iterator[FakeElevenLabs]:
    """The fake's plan allows one request at once, where callsync's budget allows ten: as when
    another integration uses the account's places."""
    limit = fake_elevenlabs.concurrency.limit
    fake_elevenlabs.concurrency.limit = 1
    yield fake_elevenlabs
    fake_elevenlabs.concurrency.limit = limit


def test_too_many_concurrent_requests_waits_for_a_place_and_costs_no_attempt(
    session: Session, one_place: FakeElevenLabs
) -> None:
    campaign = make_campaign(session)
    leads = [enroll(session, campaign) for _ in range(4)]
    one_place.inject("slow", times=4, seconds=0.3)  # each dial holds the one place a while
    result = service.run_campaign(campaign.id, NOON_ISH)
    assert (result.placed, result.failed) == (4, 0)
    assert one_place.throttled["too_many_concurrent_requests"] >= 3  # the others waited
    assert one_place.concurrency.peak == 1
    assert [one_place.dials_to(lead.phone or "") for lead in leads] == [1, 1, 1, 1]
    for lead in leads:
        row = enrolment(session, lead)
        assert (row.status, row.attempts) == (CampaignLeadStatus.contacted, 1)


def test_a_dial_that_finds_no_place_in_time_is_given_back_for_a_later_run(
    session: Session, fake_elevenlabs: FakeElevenLabs, settings_env: pytest.MonkeyPatch
) -> None:
    use(settings_env, ELEVENLABS_SLOT_WAIT_SECONDS="1")
    campaign = make_campaign(session)
    lead = enroll(session, campaign)
    fake_elevenlabs.inject("429", times=1000)
    assert service.run_campaign(campaign.id, NOON_ISH).placed == 0
    assert fake_elevenlabs.throttled["too_many_concurrent_requests"] >= 2  # it waited, and asked
    row = enrolment(session, lead)
    assert (row.status, row.attempts) == (CampaignLeadStatus.pending, 0)  # no attempt counted
    assert row.last_error
    assert service.NOT_PLACED in row.last_error
    assert "too_many_concurrent_requests" in row.last_error
    assert session.scalars(select(CampaignDial)).all() == []
    assert session.scalars(select(CallLog)).all() == []
    assert session.scalars(select(ProviderPause)).all() == []  # waiting for room, not for a key
    fake_elevenlabs.clear_faults()
    assert service.run_campaign(campaign.id, NOON_ISH).placed == 1  # the next run dials it
    assert enrolment(session, lead).attempts == 1


def test_system_busy_is_retried_with_backoff(
    session: Session, fake_elevenlabs: FakeElevenLabs
) -> None:
    campaign = make_campaign(session)
    lead = enroll(session, campaign)
    fake_elevenlabs.inject("system_busy", times=2)
    assert service.run_campaign(campaign.id, NOON_ISH).placed == 1
    assert fake_elevenlabs.throttled["system_busy"] == 2
    assert len(fake_elevenlabs.dials) == 3  # two refused, then placed
    assert fake_elevenlabs.dials_to(lead.phone or "") == 1
    row = enrolment(session, lead)
    assert (row.status, row.attempts) == (CampaignLeadStatus.contacted, 1)


def test_system_busy_through_every_retry_gives_the_attempt_back(
    session: Session, fake_elevenlabs: FakeElevenLabs
) -> None:
    tries = get_settings().http_retry_attempts
    campaign = make_campaign(session)
    lead = enroll(session, campaign)
    fake_elevenlabs.inject("system_busy", times=tries)
    assert service.run_campaign(campaign.id, NOON_ISH).placed == 0
    assert len(fake_elevenlabs.dials) == tries  # backed off between them (HTTP_RETRY_*)
    row = enrolment(session, lead)
    assert (row.status, row.attempts) == (CampaignLeadStatus.pending, 0)
    assert row.last_error
    assert "system_busy" in row.last_error
    assert service.run_campaign(campaign.id, NOON_ISH).placed == 1
