"""campaign-orchestrator's work for one campaign: reserve the next dials, then place them.

Every attempt is reserved and committed before its call is placed (app.campaigns.queries,
RESERVE), and its outcome is written as soon as it is known. A worker that stops in between
leaves the reservation, which later runs end as `unknown`: that attempt is never dialled again.
"""

from __future__ import annotations

import logging
import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from app import db, http, pauses
from app.campaigns import queries
from app.campaigns.client import (
    ElevenLabsBusy,
    ElevenLabsClient,
    ElevenLabsConcurrency,
    default_client,
)
from app.campaigns.queries import CampaignView, Dial
from app.campaigns.schemas import OutboundCall
from app.config import get_settings

log = logging.getLogger("campaigns")

NO_API_KEY = "ELEVENLABS_API_KEY is not configured"
WORKER_STOPPED = "the worker stopped between reserving and recording this attempt"
NOT_PLACED = "not placed, ElevenLabs had no room (the attempt is given back)"


@dataclass(frozen=True)
class CampaignRun:
    """What one run of a campaign did; `skipped` says why it did nothing."""

    campaign_id: uuid.UUID
    remaining: int = 0  # of today's quota, before this run
    reserved: int = 0
    placed: int = 0
    failed: int = 0
    invalid_numbers: int = 0  # leads skipped for good
    skipped: str | None = None
    needs_credentials: str | None = None  # why no call can be placed until a key is set
    full_round: bool = False  # it reserved DIAL_ROUND dials with quota left: more may be due

    def as_dict(self) -> dict[str, Any]:
        """The task's result."""
        if self.needs_credentials is not None:
            return {
                "campaign_id": str(self.campaign_id),
                pauses.NEEDS_CREDENTIALS: self.needs_credentials,
            }
        if self.skipped is not None:
            return {"campaign_id": str(self.campaign_id), "skipped": self.skipped}
        return {
            "campaign_id": str(self.campaign_id),
            "remaining": self.remaining,
            "reserved": self.reserved,
            "placed": self.placed,
            "failed": self.failed,
            "invalid_numbers": self.invalid_numbers,
        }


def run_campaign(campaign_id: uuid.UUID, now: datetime) -> CampaignRun:
    """Reserve up to a round (DIAL_ROUND) of the campaign's remaining daily quota of
    eligible leads and dial them; `full_round` says a next run may find more."""
    settings = get_settings()
    with db.session_scope() as session:
        if (waiting := _needs_credentials(session)) is not None:
            return CampaignRun(campaign_id, needs_credentials=waiting)
        campaign = queries.lock_campaign(session, campaign_id)
        if campaign is None:
            return CampaignRun(campaign_id, skipped="no such campaign")
        log.info(
            "[campaign] id=%s name=%r agent_id=%s", campaign.id, campaign.name, campaign.agent_id
        )
        queries.expire_reservations(
            session,
            campaign_id,
            error=WORKER_STOPPED,
            before=now - timedelta(seconds=settings.dial_lease_seconds),
        )
        quota = queries.get_quota(session, campaign_id, now)
        remaining = max(0, quota.cap - quota.calls_today)
        log.info(
            "[quota] campaign=%s cap=%d callsToday=%d remaining=%d",
            campaign_id,
            quota.cap,
            quota.calls_today,
            remaining,
        )
        round_size = min(remaining, settings.dial_round)
        reservation = queries.reserve_dials(session, campaign_id, limit=round_size, now=now)
    dials = reservation.dials
    for skip in reservation.skipped:
        log.info("[lead] id=%s skipped: %s", skip.lead_id, skip.reason)
    log.info("[leads] campaign=%s limit=%d returned=%d", campaign_id, round_size, len(dials))
    for dial in dials:
        log.info(
            "[lead] id=%s phone=%s tz=%s window=%s-%s ok=true",
            dial.lead_id,
            mask(dial.phone),
            dial.timezone,
            f"{dial.opens:%H:%M}",
            f"{dial.closes:%H:%M}",
        )
    placed = _place_all(campaign, dials)
    return CampaignRun(
        campaign_id,
        remaining=remaining,
        reserved=len(dials),
        placed=placed,
        failed=len(dials) - placed,
        invalid_numbers=len(reservation.skipped),
        full_round=len(dials) == settings.dial_round < remaining,
    )


def _place_all(campaign: CampaignView, dials: list[Dial]) -> int:
    if not dials:
        return 0
    client = default_client()
    workers = min(get_settings().dial_concurrency, len(dials))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dial") as pool:
        return sum(pool.map(lambda dial: _place(client, campaign, dial), dials))


def _place(client: ElevenLabsClient, campaign: CampaignView, dial: Dial) -> bool:
    """Dial the reserved attempt once and record what happened; True if the call went out."""
    log.info("[dial] placing call to %s", mask(dial.phone))
    try:
        call = client.outbound_call(
            agent_id=campaign.agent_id,
            agent_phone_number_id=campaign.agent_phone_number_id,
            to_number=dial.phone,
            dynamic_variables=_dynamic_variables(dial),
        )
    except (ElevenLabsConcurrency, ElevenLabsBusy) as error:
        return _not_placed(dial, str(error))
    except http.ProviderError as error:
        if error.status == 401:
            return _given_back(dial, str(error))
        return _failed(dial, str(error))
    if not call.success:
        return _failed(dial, f"ElevenLabs did not place the call: {call.message}")
    log.info("[dial] success conversation_id=%s callSid=%s", call.conversation_id, call.call_sid)
    _record_placed(campaign, dial, call)
    return True


def _record_placed(campaign: CampaignView, dial: Dial, call: OutboundCall) -> None:
    """The conversation, and the dial with its call_logs row and the lead, in one transaction;
    a conversation that cannot be stored leaves the placed call on record in call_logs, with
    the reason (the seed's fallback)."""
    with db.session_scope() as session:
        unrecorded = _insert_conversation(session, campaign, dial, call)
        queries.record_placed(
            session,
            dial,
            conversation_id=call.conversation_id,
            call_sid=call.call_sid,
            unrecorded=unrecorded,
        )
    log.info(
        "[campaign_lead] update ok campaign=%s lead=%s attempts=%d status=contacted",
        campaign.id,
        dial.lead_id,
        dial.attempt,
    )


def _insert_conversation(
    session: Session, campaign: CampaignView, dial: Dial, call: OutboundCall
) -> str | None:
    """Insert the call's conversation row; why not, if the database refused it."""
    try:
        with session.begin_nested():
            queries.insert_conversation(
                session,
                campaign,
                dial,
                conversation_id=call.conversation_id,
                call_sid=call.call_sid,
            )
    except OperationalError:
        raise
    except DBAPIError as error:
        reason = db.error_reason(error)
        log.warning("[dial] conversation insert failed (%s); on record in call_logs", reason)
        return f"conversation not recorded: {reason}"
    return None


def _needs_credentials(session: Session) -> str | None:
    """Why no call can be placed (no ELEVENLABS_API_KEY, or the one set was refused), if so;
    the work then waits, and no attempt is reserved."""
    key = get_settings().elevenlabs_api_key
    credential = pauses.credential_id(key.get_secret_value() if key else None)
    pauses.resume_other_credentials(session, pauses.ELEVENLABS, credential)
    if key is None:
        pauses.pause(session, pauses.ELEVENLABS, NO_API_KEY)
        return NO_API_KEY
    return pauses.paused_for_everyone(session, pauses.ELEVENLABS, credential)


def _given_back(dial: Dial, error: str) -> bool:
    """ElevenLabs refused our key: the attempt is given back and the dialling pauses."""
    key = get_settings().elevenlabs_api_key
    credential = pauses.credential_id(key.get_secret_value() if key else None)
    with db.session_scope() as session:
        queries.release_dial(session, dial, f"{pauses.NEEDS_CREDENTIALS}: {error}")
        pauses.pause(session, pauses.ELEVENLABS, error, credential=credential)
    return False


def _not_placed(dial: Dial, error: str) -> bool:
    """ElevenLabs had no room for the call (429) after the client's waits: no call was placed,
    so the attempt is given back uncounted and the lead is dialled by a later run."""
    with db.session_scope() as session:
        queries.release_dial(session, dial, f"{NOT_PLACED}: {error}")
    log.warning("[dial] not placed lead=%s attempt=%d: %s", dial.lead_id, dial.attempt, error)
    return False


def _failed(dial: Dial, error: str) -> bool:
    with db.session_scope() as session:
        queries.record_failed(session, dial, error)
    log.warning("[dial] failed lead=%s attempt=%d: %s", dial.lead_id, dial.attempt, error)
    return False


def _dynamic_variables(dial: Dial) -> dict[str, str]:
    names = {"first_name": dial.first_name, "last_name": dial.last_name, "company": dial.company}
    return {key: value for key, value in names.items() if value}


def mask(phone: str) -> str:
    """A phone number for log lines: the country code and the last four digits."""
    return re.sub(r"(?<=^\+\d)\d+(?=\d{4}$)", lambda m: "*" * len(m.group()), phone)
