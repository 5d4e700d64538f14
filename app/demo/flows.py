"""The demo's work, sent the way users, providers and pg_cron send it: signed webhooks and
API calls over HTTP, and rows that the product's own tables would receive."""

from __future__ import annotations

import secrets
import uuid
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

import requests
from sqlalchemy import text

from app import agencies, db, security
from app.config import get_settings
from app.demo.stack import Providers
from app.fakes.ultravox import FakeUltravox, call_at, generate_calls, send_webhook
from app.models import AgencyRole, Business, Campaign, CampaignStatus, SyncOperation, SyncQueueItem
from app.salesforce import queries as salesforce

WEBHOOK_EVENTS = ("call.started", "call.joined", "call.ended", "call.billed")
# Candidates for the campaign's timezone: one of them is always in office hours.
ZONES = (
    "Europe/London",
    "Europe/Berlin",
    "Asia/Kolkata",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Pacific/Honolulu",
    "America/Los_Angeles",
    "America/New_York",
)
SIGNUP = {
    "steps": [
        {"key": "user", "type": "user", "fields": {"email": "ada@example.org", "name": "Ada"}},
        {"key": "account", "type": "account", "fields": {"owner": "$user", "plan": "trial"}},
    ]
}


@dataclass(frozen=True)
class Demo:
    api_url: str
    agency_id: uuid.UUID
    business_id: uuid.UUID
    webhook_secret: str
    headers: dict[str, str]  # an owner of the agency

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return requests.get(self.api_url + path, timeout=30, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return requests.post(self.api_url + path, timeout=30, **kwargs)


def set_up(api_url: str, providers: Providers) -> Demo:
    """An agency with its Ultravox key and webhook secret, an owner, and a business."""
    secret = secrets.token_urlsafe(24)
    owner = uuid.uuid4()
    with db.session_scope() as session:
        agency_id = agencies.add_agency(
            session,
            name="Demo agency",
            ultravox_api_key=providers.ultravox_api_key,
            webhook_secret=secret,
        )
        agencies.add_member(session, agency_id=agency_id, user_id=owner, role=AgencyRole.owner)
        business = Business(name="Demo food bank")
        session.add(business)
        session.flush()
        business_id = business.id
    headers = {"Authorization": f"Bearer {security.create_token(owner)}"}
    return Demo(api_url, agency_id, business_id, secret, headers)


def send_webhooks(demo: Demo, fake: FakeUltravox, count: int) -> int:
    """Every lifecycle event of `count` new calls of the fake, as Ultravox signs them, one
    delivered twice; returns how many distinct events were sent."""
    calls = generate_calls(
        count, seed=7, start=datetime.now(UTC) - timedelta(hours=1), live_every=0
    )
    fake.add_calls(calls)  # so that their transcripts can be fetched
    url = f"{demo.api_url}/webhooks/ultravox/{demo.agency_id}"
    for call in calls:
        for event in WEBHOOK_EVENTS:
            send_webhook(url, event, call_at(call, event), demo.webhook_secret).raise_for_status()
    # Ultravox retries a delivery it thinks failed: the duplicate is answered and queues nothing.
    send_webhook(url, "call.ended", call_at(calls[0], "call.ended"), demo.webhook_secret)
    return count * len(WEBHOOK_EVENTS)


def start_sync(demo: Demo, max_calls: int) -> uuid.UUID:
    body = {"date_to": (datetime.now(UTC) + timedelta(days=1)).isoformat(), "max_calls": max_calls}
    response = demo.post("/api/historical-syncs", json=body, headers=demo.headers)
    response.raise_for_status()
    return uuid.UUID(response.json()["id"])


def sync_job(demo: Demo, job: uuid.UUID) -> dict[str, Any]:
    """get-sync-status, as the agency's owner sees it."""
    response = demo.get(f"/api/historical-syncs/{job}", headers=demo.headers)
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


def connect_salesforce(demo: Demo, providers: Providers) -> None:
    with db.session_scope() as session:
        salesforce.connect(
            session,
            demo.business_id,
            instance_url=providers.salesforce_instance_url,
            refresh_token=providers.salesforce_refresh_token,
        )


def run_function(demo: Demo, name: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """What pg_cron + pg_net did: run a periodic function now, with the service token."""
    headers = {"Authorization": f"Bearer {_service_token()}"}
    response = demo.post(f"/functions/v1/{name}", json=body, headers=headers)
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


def start_campaign(demo: Demo) -> None:
    """A campaign over every lead of the business, in a timezone where it is office hours now,
    then one campaign-orchestrator run."""
    zone = next(zone for zone in ZONES if 9 <= datetime.now(zoneinfo.ZoneInfo(zone)).hour < 17)
    today = datetime.now(zoneinfo.ZoneInfo(zone)).date()
    with db.session_scope() as session:
        campaign = Campaign(
            business_id=demo.business_id,
            name="Winter appeal",
            status=CampaignStatus.active,
            agent_id="agent_demo",
            agent_phone_number_id="phnum_demo",
            timezone=zone,
            start_date=today,
            end_date=today + timedelta(days=7),
            call_window_start=time(9),
            call_window_end=time(17),
        )
        session.add(campaign)
        session.flush()
        session.execute(
            text(
                "INSERT INTO campaign_leads (campaign_id, lead_id)"
                " SELECT :campaign, id FROM leads WHERE business_id = :business"
            ),
            {"campaign": campaign.id, "business": demo.business_id},
        )
    run_function(demo, "campaign-orchestrator")


def queue_signup(demo: Demo) -> None:
    """A signup queued the way the product's trigger would, then one bubble_sync run."""
    with db.session_scope() as session:
        session.add(
            SyncQueueItem(
                table_name="users",
                record_id=str(demo.business_id),
                operation=SyncOperation.SIGNUP_ATOMIC,
                payload=SIGNUP,
            )
        )
    run_function(demo, "bubble_sync", {"action": "process_queue_data_api"})


def _service_token() -> str:
    token = get_settings().service_token
    if token is None:
        raise SystemExit("callsync: the demo needs SERVICE_TOKEN (scripts/bootstrap.sh sets it)")
    return token.get_secret_value()
