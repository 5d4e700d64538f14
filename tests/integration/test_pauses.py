"""A missing, invalid or revoked credential pauses that provider's work instead of burning
attempts: items stay pending, one log line per pause, `needs_credentials` with the reason in
queue stats, /metrics and the sync status; setting the credential resumes the work at once.
Against the fakes over HTTP."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from app import agencies, db, metrics
from app.bubble import queries as bubble_queries
from app.bubble import service as bubble_service
from app.bubble import tasks as bubble_tasks
from app.campaigns import service as campaigns
from app.fakes.bubble import FakeBubble
from app.fakes.elevenlabs import FakeElevenLabs
from app.fakes.salesforce import FakeSalesforce
from app.fakes.ultravox import FakeUltravox
from app.models import (
    CampaignDial,
    CampaignLead,
    EnrichmentItem,
    EnrichmentType,
    Integration,
    ProcessingStatus,
    ProviderPause,
    SyncQueueItem,
)
from app.queue_stats import as_table, queue_stats
from app.salesforce import queries as salesforce_queries
from app.salesforce import service as salesforce_service
from tests.campaigns import enroll, make_campaign
from tests.conftest import ULTRAVOX_API_KEY
from tests.helpers import ApiClient, make_agency, make_member
from tests.integration.test_campaign_orchestrator import NOON_ISH
from tests.integration.test_enrichment_queue import drain, ended_calls, store_calls
from tests.salesforce import connect, contacts

pytestmark = pytest.mark.usefixtures("clean_tables")


def paused(session: Session) -> list[ProviderPause]:
    session.expire_all()
    return list(session.scalars(select(ProviderPause)))


def transcripts(session: Session) -> list[EnrichmentItem]:
    session.expire_all()
    return list(session.scalars(select(EnrichmentItem)))


def pause_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("[pause]")]


def test_an_agency_without_an_ultravox_key_waits_and_resumes_when_it_is_set(
    session: Session, fake_ultravox: FakeUltravox, caplog: pytest.LogCaptureFixture
) -> None:
    agency = make_agency(session, api_key=None)
    store_calls(session, agency, ended_calls(fake_ultravox, 3))
    with caplog.at_level(logging.INFO, logger="pauses"):
        first = drain()
        assert (first.claimed, first.failed, first.done["transcripts"]) == (3, 0, 0)
        assert drain().claimed == 0  # paused: its items are left alone
        assert len(pause_lines(caplog)) == 1
    items = transcripts(session)
    assert {(i.status, i.attempts) for i in items} == {(ProcessingStatus.pending, 0)}
    [pause] = paused(session)
    assert (pause.provider, pause.agency_id, pause.reason) == (
        "ultravox",
        agency,
        "Agency API key not configured",
    )
    agencies.set_ultravox_api_key(session, agency, ULTRAVOX_API_KEY)
    session.commit()
    assert paused(session) == []
    assert drain().done["transcripts"] == 3


def test_a_revoked_ultravox_key_pauses_with_the_providers_reason(
    session: Session, fake_ultravox: FakeUltravox
) -> None:
    agency = make_agency(session, api_key="revoked-key")
    other = make_agency(session, name="Other")
    store_calls(session, agency, ended_calls(fake_ultravox, 2))
    store_calls(session, other, ended_calls(fake_ultravox, 1))
    assert drain().done["transcripts"] == 1  # the other agency's work goes on
    [pause] = paused(session)
    assert pause.agency_id == agency
    assert "HTTP 401" in pause.reason
    waiting = [
        i
        for i in transcripts(session)
        if i.type == EnrichmentType.transcript and i.status == ProcessingStatus.pending
    ]
    assert [i.attempts for i in waiting] == [0, 0]
    assert all(i.error_message and "needs_credentials" in i.error_message for i in waiting)


def test_needs_credentials_shows_in_queue_stats_metrics_and_the_sync_status(
    session: Session, api: ApiClient, fake_ultravox: FakeUltravox
) -> None:
    agency = make_agency(session, api_key="revoked-key")
    store_calls(session, agency, ended_calls(fake_ultravox, 1))
    drain()
    [enrichment] = [s for s in queue_stats(session) if s.name == "enrichment_queue"]
    assert [p.agency_id for p in enrichment.needs_credentials] == [agency]
    caption = str(as_table(queue_stats(session)).caption)
    assert f"needs_credentials: enrichment_queue, ultravox work of agency {agency}" in caption
    assert "HTTP 401" in caption
    exposition = metrics.exposition().decode()
    assert f'callsync_needs_credentials{{agency="{agency}",business=""' in exposition
    headers = {"Authorization": f"Bearer {make_member(session, agency, 'owner')}"}
    job = api.post(
        "/api/historical-syncs", json={"date_to": "2030-01-01T00:00:00Z"}, headers=headers
    ).json()
    status = api.get(f"/api/historical-syncs/{job['id']}", headers=headers).json()
    assert status["needs_credentials"] is not None
    assert "HTTP 401" in status["needs_credentials"]
    listed = api.get("/api/historical-syncs", headers=headers).json()["jobs"]
    assert [job["needs_credentials"] for job in listed] == [status["needs_credentials"]]


def bubble_item(session: Session) -> uuid.UUID:
    item = SyncQueueItem(
        table_name="user",
        record_id=str(uuid.uuid4()),
        operation="INSERT",
        payload={"_type": "user", "name": "Ada"},
    )
    session.add(item)
    session.commit()
    return item.id


def push(session: Session) -> str:
    """Claim the pending items as bubble-sync-processor does, and push the first here."""
    with db.session_scope() as own:
        claimed = bubble_queries.claim_pending(own, limit=10, lease=timedelta(seconds=300))
    assert claimed.leased_at is not None
    return bubble_service.process_item(claimed.ids[0], claimed.leased_at)


def test_a_bubble_token_refused_pauses_the_queue_without_counting_tries(
    session: Session, fake_bubble: FakeBubble
) -> None:
    token = fake_bubble.token
    fake_bubble.token = "another-token"
    item_id = bubble_item(session)
    assert push(session) == "needs_credentials"
    session.expire_all()
    item = session.get_one(SyncQueueItem, item_id)
    assert (item.status, item.retry_count, item.tries) == (ProcessingStatus.pending, 0, 0)
    [pause] = paused(session)
    assert (pause.provider, pause.agency_id, pause.business_id) == ("bubble", None, None)
    assert "HTTP 401" in pause.reason
    # bubble-sync-processor claims nothing while the pause holds.
    assert bubble_tasks.bubble_sync_processor() == {"claimed": 0, "needs_credentials": pause.reason}
    # Another token configured (the pause names an older one): the work goes on.
    fake_bubble.token = token
    session.execute(update(ProviderPause).values(credential="an-older-one"))
    session.commit()
    with db.session_scope() as own:
        assert bubble_tasks._paused(own) is None
    assert paused(session) == []
    assert push(session) == "done"
    assert len(fake_bubble.all("user")) == 1


def test_an_elevenlabs_key_refused_gives_the_attempt_back_and_pauses_dialling(
    session: Session, fake_elevenlabs: FakeElevenLabs
) -> None:
    campaign = make_campaign(session)
    lead = enroll(session, campaign)
    key = fake_elevenlabs.api_key
    fake_elevenlabs.api_key = "another-key"
    try:
        result = campaigns.run_campaign(campaign.id, NOON_ISH)
        assert (result.placed, result.failed) == (0, 1)
        session.expire_all()
        enrolled = session.scalars(
            select(CampaignLead).where(CampaignLead.lead_id == lead.id)
        ).one()
        assert enrolled.attempts == 0  # no attempt counted
        assert session.scalars(select(CampaignDial)).all() == []
        [pause] = paused(session)
        assert pause.provider == "elevenlabs"
        assert "HTTP 401" in pause.reason
        again = campaigns.run_campaign(campaign.id, NOON_ISH)
        assert again.as_dict() == {
            "campaign_id": str(campaign.id),
            "needs_credentials": pause.reason,
        }
        assert session.scalars(select(CampaignDial)).all() == []  # nothing reserved while paused
    finally:
        fake_elevenlabs.api_key = key


def test_salesforce_invalid_grant_pauses_the_business_until_it_connects_again(
    session: Session, fake_salesforce: FakeSalesforce
) -> None:
    integration = connect(session, fake_salesforce, refresh="revoked-refresh-token")
    contacts(fake_salesforce, 3)
    fake_salesforce.expire_all_tokens()
    salesforce_service.sync_integration(integration)
    [pause] = paused(session)
    assert pause.provider == "salesforce"
    assert pause.business_id is not None
    assert "invalid_grant" in pause.reason
    # Connected again (the old integration replaced): the business's work goes on.
    session.execute(delete(Integration).where(Integration.id == integration))
    salesforce_queries.connect(
        session,
        pause.business_id,
        instance_url="https://x",
        refresh_token=fake_salesforce.refresh_token,
    )
    session.commit()
    assert paused(session) == []
