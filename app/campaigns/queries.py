"""SQL for the campaigns: active campaigns, quotas and the reservation of dials
(campaign-orchestrator), conversations and their turns (conversation-orchestrator), leads
enrolled and progress counted (`callsync campaign`).

Nothing here commits; the caller owns the transaction. `now` is passed in rather than read
from the database clock, so that "today" and the call windows are those of one instant.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any

from sqlalchemy import Row, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from app import liveness
from app.campaigns.schemas import Turn
from app.models import (
    Business,
    Campaign,
    CampaignLead,
    CampaignLeadStatus,
    Conversation,
    ConversationEvent,
    DialStatus,
    Lead,
)

E164 = r"^\+[1-9][0-9]{7,14}$"
# TCPA and the FTC's TSR: 08:00-21:00 at the called person's location (api-facts §5).
EARLIEST, LATEST = "08:00", "21:00"

FINAL_STATUSES = ("done", "failed")  # a conversation in one of these is not synced again

_LOCAL_TODAY = "(CAST(:now AS timestamptz) AT TIME ZONE c.timezone)::date"
_CAMPAIGN = "c.id, c.name, c.agent_id, c.agent_phone_number_id, c.business_id"

ACTIVE_CAMPAIGNS = text(f"""
    SELECT {_CAMPAIGN} FROM campaigns AS c
    WHERE c.status = 'active'
      AND (c.start_date IS NULL OR c.start_date <= {_LOCAL_TODAY})
      AND (c.end_date IS NULL OR c.end_date >= {_LOCAL_TODAY})
    ORDER BY c.created_at
""")  # noqa: S608 (constant SQL)

# Dials reserved today, from midnight to midnight in the campaign's timezone.
QUOTA = text(f"""
    SELECT c.daily_call_cap AS cap, count(d.id) AS calls_today
    FROM campaigns AS c
    LEFT JOIN campaign_dials AS d
      ON d.campaign_id = c.id
     AND d.reserved_at >= ({_LOCAL_TODAY})::timestamp AT TIME ZONE c.timezone
     AND d.reserved_at < ({_LOCAL_TODAY} + 1)::timestamp AT TIME ZONE c.timezone
    WHERE c.id = :campaign_id
    GROUP BY c.id
""")  # noqa: S608 (constant SQL)

# Writes the call_logs row of each campaign_dials row in `finished`, one per attempt (seed 003:
# every dial is on record). A later answer for an attempt (its call placed after the
# reservation was ended as unknown) replaces what the row said. :note, when set, is the row's
# error instead of the dial's.
_LOG_FINISHED = """
    INSERT INTO call_logs (dial_id, attempt, campaign_id, lead_id, to_number, conversation_id,
                           call_sid, status, error)
    SELECT id, attempt, campaign_id, lead_id, to_number, conversation_id, call_sid,
           status::text, coalesce(CAST(:note AS text), error)
    FROM finished
    ON CONFLICT (dial_id) DO UPDATE
    SET status = excluded.status, error = excluded.error,
        conversation_id = excluded.conversation_id, call_sid = excluded.call_sid
"""

# Reservations whose dial was never recorded: the worker stopped in between (its row in
# workers is gone, or, reserved outside a worker, the reservation is older than :before).
# Whether the call went out is unknown, so that attempt is over and is never dialled again.
EXPIRE_RESERVATIONS = text(f"""
    WITH finished AS (
        UPDATE campaign_dials AS d SET status = 'unknown', finished_at = now(), error = :error
        WHERE campaign_id = :campaign_id AND status = 'reserved'
          AND CASE WHEN d.worker_id IS NULL THEN reserved_at < :before
                   ELSE NOT EXISTS (SELECT FROM workers AS w WHERE w.id = d.worker_id) END
        RETURNING d.*
    ),
    logged AS ({_LOG_FINISHED})
    UPDATE campaign_leads AS cl SET status = 'failed', last_error = :error, updated_at = now()
    FROM finished
    WHERE cl.id = finished.campaign_lead_id AND cl.attempts = finished.attempt
      AND cl.status = 'dialing'
""")  # noqa: S608 (constant SQL)

# An attempt's outcome, on its dial and in call_logs.
FINISH_DIAL = text(f"""
    WITH finished AS (
        UPDATE campaign_dials
        SET status = :status, error = :error, conversation_id = :conversation_id,
            call_sid = :call_sid, finished_at = now()
        WHERE id = :dial_id
        RETURNING *
    )
    {_LOG_FINISHED}
""")  # noqa: S608 (constant SQL)

# One pass over the campaign's leads still in play. Those without an E.164 phone number are
# skipped for good, with the reason. The eligible ones, best first, have their next attempt
# reserved: attempts moves under an optimistic lock (WHERE attempts = the value read) and the
# dial is written with it, unique per (campaign lead, attempt). The result holds a row per
# reserved dial, then a row per skipped lead (dial_id null, skip_reason set).
RESERVE = text(f"""
    WITH c AS (
        SELECT id, timezone, max_attempts, exclude_dnc, retry_interval_minutes,
               greatest(call_window_start, time '{EARLIEST}') AS opens,
               least(call_window_end, time '{LATEST}') AS closes
        FROM campaigns WHERE id = :campaign_id
    ),
    in_play AS MATERIALIZED (
        SELECT cl.id, cl.attempts, cl.lead_id, cl.created_at, l.phone, l.first_name,
               l.last_name, l.company, l.quality_rating, l.lead_score,
               coalesce(l.timezone, c.timezone) AS timezone, c.opens, c.closes,
               coalesce(l.phone ~ '{E164}', false) AS dialable,
               cl.attempts < c.max_attempts
               AND (cl.last_attempt_at IS NULL OR cl.last_attempt_at
                    <= CAST(:now AS timestamptz) - make_interval(mins => c.retry_interval_minutes))
               AND NOT (c.exclude_dnc AND l.do_not_call) AS due
        FROM campaign_leads AS cl
        JOIN c ON c.id = cl.campaign_id
        -- One index lookup per lead of this campaign, never a scan of every business's
        -- leads: OFFSET 0 keeps the planner from turning this into a hash join.
        CROSS JOIN LATERAL (SELECT * FROM leads WHERE leads.id = cl.lead_id OFFSET 0) AS l
        WHERE cl.status IN ('pending', 'contacted', 'failed')
    ),
    -- Each timezone's local time now, worked out once per zone rather than once per lead.
    clocks AS MATERIALIZED (
        SELECT timezone, (CAST(:now AS timestamptz) AT TIME ZONE timezone)::time AS local_time
        FROM (SELECT DISTINCT timezone FROM in_play) AS zones
    ),
    skipped AS (
        UPDATE campaign_leads AS cl
        SET status = 'invalid_number', updated_at = now(),
            last_error = CASE WHEN coalesce(in_play.phone, '') = '' THEN 'no phone number'
                              ELSE 'phone number ' || in_play.phone || ' is not E.164' END
        FROM in_play
        WHERE cl.id = in_play.id AND NOT in_play.dialable
        RETURNING cl.lead_id, cl.last_error
    ),
    picked AS (
        SELECT in_play.*, uuid_generate_v4() AS dial_id
        FROM in_play JOIN clocks USING (timezone)
        WHERE dialable AND due AND local_time >= opens AND local_time < closes
        ORDER BY quality_rating DESC NULLS LAST, lead_score DESC NULLS LAST, created_at, id
        LIMIT :limit
    ),
    reserved AS (
        UPDATE campaign_leads AS cl
        SET attempts = cl.attempts + 1, status = 'dialing', last_attempt_at = :now,
            last_error = NULL, updated_at = now()
        FROM picked
        WHERE cl.id = picked.id AND cl.attempts = picked.attempts
          AND cl.status IN ('pending', 'contacted', 'failed')
        RETURNING picked.dial_id, cl.id AS campaign_lead_id, cl.attempts AS attempt,
                  cl.lead_id, picked.phone, picked.first_name, picked.last_name, picked.company,
                  picked.timezone, picked.opens, picked.closes
    ),
    dials AS (
        INSERT INTO campaign_dials (id, campaign_id, campaign_lead_id, lead_id, attempt,
                                    to_number, reserved_at, worker_id)
        SELECT dial_id, :campaign_id, campaign_lead_id, lead_id, attempt, phone, :now, :worker_id
        FROM reserved
    )
    SELECT *, NULL AS skip_reason FROM reserved
    UNION ALL
    SELECT NULL, NULL, NULL, lead_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, last_error
    FROM skipped
""")  # noqa: S608 (constant SQL)


@dataclass(frozen=True)
class CampaignView:
    """What a run of a campaign reads of it."""

    id: uuid.UUID
    name: str
    agent_id: str
    agent_phone_number_id: str
    business_id: uuid.UUID


@dataclass(frozen=True)
class Quota:
    cap: int  # campaigns.daily_call_cap
    calls_today: int  # dials reserved since the campaign's midnight


@dataclass(frozen=True)
class Dial:
    """A reserved attempt: the dial, the lead's enrolment and attempt, and whom to call."""

    dial_id: uuid.UUID
    campaign_lead_id: uuid.UUID
    attempt: int
    lead_id: uuid.UUID
    phone: str
    first_name: str | None
    last_name: str | None
    company: str | None
    timezone: str  # the lead's, else the campaign's
    opens: time  # the call window, within 08:00-21:00
    closes: time


@dataclass(frozen=True)
class Skip:
    """A lead skipped for good: it has no E.164 phone number."""

    lead_id: uuid.UUID
    reason: str


@dataclass(frozen=True)
class Reservation:
    dials: list[Dial]
    skipped: list[Skip]


def get_active_campaigns(session: Session, now: datetime) -> list[CampaignView]:
    """Active campaigns whose date range holds today in their own timezone."""
    rows = session.execute(ACTIVE_CAMPAIGNS, {"now": now})
    return [CampaignView(**row._mapping) for row in rows]


def lock_campaign(session: Session, campaign_id: uuid.UUID) -> CampaignView | None:
    """The campaign, locked until the caller's transaction ends, so that the runs of one
    campaign read its quota and reserve its dials one at a time: a second run waits, then
    counts the first one's reservations. NO KEY UPDATE leaves the rows that reference the
    campaign (dials and conversations being recorded) free to be written meanwhile."""
    sql = f"SELECT {_CAMPAIGN} FROM campaigns AS c WHERE c.id = :id FOR NO KEY UPDATE"  # noqa: S608
    row = session.execute(text(sql), {"id": campaign_id}).one_or_none()
    return None if row is None else CampaignView(**row._mapping)


def get_quota(session: Session, campaign_id: uuid.UUID, now: datetime) -> Quota:
    """The daily cap and the dials reserved since the campaign's midnight."""
    row = session.execute(QUOTA, {"campaign_id": campaign_id, "now": now}).one()
    return Quota(**row._mapping)


def expire_reservations(
    session: Session, campaign_id: uuid.UUID, *, before: datetime, error: str
) -> int:
    """End as `unknown` the reservations of workers that are gone, and those made outside a
    worker before `before`, each logged in call_logs; returns how many leads it freed."""
    params = {"campaign_id": campaign_id, "before": before, "error": error, "note": None}
    return int(session.execute(EXPIRE_RESERVATIONS, params).rowcount)  # type: ignore[attr-defined]


def reserve_dials(
    session: Session, campaign_id: uuid.UUID, *, limit: int, now: datetime
) -> Reservation:
    """Reserve the next attempt of up to `limit` eligible leads, best first, and skip those
    without an E.164 number; see RESERVE. Rows another run holds are waited for, then left
    out if that run reserved them."""
    params = {"campaign_id": campaign_id, "limit": limit, "now": now}
    rows = session.execute(RESERVE, {**params, "worker_id": liveness.holder()})
    reserved = list(rows)
    return Reservation(
        dials=[_dial(row) for row in reserved if row.skip_reason is None],
        skipped=[
            Skip(row.lead_id, row.skip_reason) for row in reserved if row.skip_reason is not None
        ],
    )


def _dial(row: Row[Any]) -> Dial:
    return Dial(**{name: value for name, value in row._mapping.items() if name != "skip_reason"})


def insert_conversation(
    session: Session,
    campaign: CampaignView,
    dial: Dial,
    *,
    conversation_id: str | None,
    call_sid: str | None,
) -> None:
    """The placed call's conversation row, for conversation-orchestrator to sync."""
    session.execute(
        insert(Conversation).values(
            conversation_id=conversation_id,
            call_sid=call_sid,
            business_id=campaign.business_id,
            campaign_id=campaign.id,
            lead_id=dial.lead_id,
        )
    )


def record_placed(
    session: Session,
    dial: Dial,
    *,
    conversation_id: str | None,
    call_sid: str | None,
    unrecorded: str | None = None,
) -> None:
    """The call went out: the dial is placed and logged, and the lead contacted (if still this
    attempt). `unrecorded` says why the conversation row could not be written, if it was not."""
    ids = {"conversation_id": conversation_id, "call_sid": call_sid}
    _finish(session, dial, DialStatus.placed, note=unrecorded, **ids)
    _update_lead(session, dial, CampaignLeadStatus.contacted, conversation_id=conversation_id)


# A reserved attempt given back undialled (ElevenLabs refused our key, or had no room for the
# call): the dial is forgotten and the lead's attempt not counted; its last attempt is the one
# before (the subquery still sees the deleted dial, hence the id), so the retry interval runs
# from a call that was made.
RELEASE_DIAL = text("""
    WITH released AS (
        DELETE FROM campaign_dials WHERE id = :dial_id AND status = 'reserved'
        RETURNING campaign_lead_id, attempt
    )
    UPDATE campaign_leads AS cl
    SET attempts = cl.attempts - 1, last_error = :error, updated_at = now(),
        status = CAST(CASE WHEN cl.attempts = 1 THEN 'pending' ELSE 'failed' END
                      AS campaign_lead_status),
        last_attempt_at = (SELECT max(d.reserved_at) FROM campaign_dials AS d
                           WHERE d.campaign_lead_id = cl.id AND d.id <> :dial_id)
    FROM released
    WHERE cl.id = released.campaign_lead_id AND cl.attempts = released.attempt
      AND cl.status = 'dialing'
""")


def release_dial(session: Session, dial: Dial, error: str) -> None:
    """The attempt was not made: see RELEASE_DIAL."""
    session.execute(RELEASE_DIAL, {"dial_id": dial.dial_id, "error": error})


def record_failed(session: Session, dial: Dial, error: str) -> None:
    """The attempt failed with `error` and is logged; a later attempt may follow after the retry
    interval."""
    _finish(session, dial, DialStatus.failed, error=error)
    _update_lead(session, dial, CampaignLeadStatus.failed, last_error=error)


def _finish(session: Session, dial: Dial, status: DialStatus, **values: str | None) -> None:
    params = {"conversation_id": None, "call_sid": None, "error": None, "note": None} | values
    session.execute(FINISH_DIAL, {"status": status.value, "dial_id": dial.dial_id, **params})


def _update_lead(
    session: Session, dial: Dial, status: CampaignLeadStatus, **values: str | None
) -> None:
    sets = ", ".join(f"{name} = :{name}" for name in values)
    session.execute(
        text(f"""UPDATE campaign_leads SET status = :status, {sets}, updated_at = now()
                 WHERE id = :id AND attempts = :attempt AND status = 'dialing'"""),  # noqa: S608
        {"status": status.value, "id": dial.campaign_lead_id, "attempt": dial.attempt, **values},
    )


def enroll_leads(session: Session, campaign: Campaign, leads: list[dict[str, Any]]) -> int:
    """Upsert `leads` into the campaign's business on (business_id, source, source_id), then
    enrol them; returns how many were newly enrolled. A lead met twice keeps its last line."""
    unique = list({(lead["source"], lead["source_id"]): lead for lead in leads}.values())
    if not unique:
        return 0
    upsert = pg_insert(Lead).values(
        [lead | {"business_id": campaign.business_id} for lead in unique]
    )
    updated = {
        name: upsert.excluded[name] for name in unique[0] if name not in ("source", "source_id")
    }
    lead_ids = session.scalars(
        upsert.on_conflict_do_update(
            index_elements=["business_id", "source", "source_id"],
            set_=updated | {"updated_at": func.now()},
        ).returning(Lead.id)
    ).all()
    enrolled = session.scalars(
        pg_insert(CampaignLead)
        .values([{"campaign_id": campaign.id, "lead_id": lead_id} for lead_id in lead_ids])
        .on_conflict_do_nothing(index_elements=["campaign_id", "lead_id"])
        .returning(CampaignLead.id)
    ).all()
    return len(enrolled)


_BY_STATUS = {
    "leads": "SELECT status::text, count(*) FROM campaign_leads WHERE campaign_id = :campaign_id"
    " GROUP BY 1",
    "dials": "SELECT status::text, count(*) FROM campaign_dials WHERE campaign_id = :campaign_id"
    " GROUP BY 1",
    "dials_today": f"""SELECT d.status::text, count(*) FROM campaign_dials AS d
        JOIN campaigns AS c ON c.id = d.campaign_id
        WHERE d.campaign_id = :campaign_id
          AND d.reserved_at >= ({_LOCAL_TODAY})::timestamp AT TIME ZONE c.timezone
          AND d.reserved_at < ({_LOCAL_TODAY} + 1)::timestamp AT TIME ZONE c.timezone
        GROUP BY 1""",  # noqa: S608 (constant SQL)
    "conversations": "SELECT status, count(*) FROM conversations"
    " WHERE campaign_id = :campaign_id GROUP BY 1",
}


@dataclass(frozen=True)
class ProgressCounts:
    leads: dict[str, int]  # campaign_leads by status
    dials: dict[str, int]  # every dial by status
    dials_today: dict[str, int]  # today's dials (campaign's timezone) by status
    conversations: dict[str, int]  # conversations by status


def get_progress_counts(session: Session, campaign_id: uuid.UUID, now: datetime) -> ProgressCounts:
    """The campaign's leads, dials (all and today's) and conversations, counted by status."""
    params = {"campaign_id": campaign_id, "now": now}
    return ProgressCounts(
        **{name: dict(session.execute(text(sql), params).all()) for name, sql in _BY_STATUS.items()}
    )


def get_business_ids_named(session: Session, name: str) -> list[uuid.UUID]:
    """The businesses with exactly this name."""
    return list(session.scalars(select(Business.id).where(Business.name == name)).all())


def get_conversations_to_sync(session: Session, *, since: datetime, limit: int) -> list[uuid.UUID]:
    """Unfinished conversations updated since `since`, least recently synced first."""
    stmt = (
        select(Conversation.id)
        .where(Conversation.updated_at >= since, Conversation.status.not_in(FINAL_STATUSES))
        .order_by(Conversation.last_synced_at.asc().nulls_first(), Conversation.updated_at)
        .limit(limit)
    )
    return list(session.scalars(stmt))


def get_external_id(session: Session, conversation_id: uuid.UUID) -> str | None:
    """The conversation's ElevenLabs id, None if there is no such conversation."""
    row = session.get(Conversation, conversation_id)
    return None if row is None else row.conversation_id


@dataclass(frozen=True)
class LockedConversation:
    campaign_id: uuid.UUID | None
    lead_id: uuid.UUID | None
    events: int  # conversation_events stored so far


def lock_conversation(session: Session, conversation_id: uuid.UUID) -> LockedConversation:
    """Lock the conversation until the caller's transaction ends, so that its syncs store
    turns one at a time; with the number of turns stored."""
    row = session.get_one(Conversation, conversation_id, with_for_update=True)
    known = session.scalar(
        select(func.count()).where(ConversationEvent.conversation_id == conversation_id)
    )
    return LockedConversation(row.campaign_id, row.lead_id, known or 0)


def insert_events(
    session: Session, conversation_id: uuid.UUID, turns: Sequence[Turn], *, start: int, batch: int
) -> int:
    """Insert turns from index `start` on, `batch` rows a statement; a turn already stored is
    left alone. Returns how many were inserted."""
    rows = [
        {
            "conversation_id": conversation_id,
            "event_index": index,
            "role": turn.role,
            "message": turn.message,
            "time_in_call_secs": turn.time_in_call_secs,
        }
        for index, turn in enumerate(turns)
        if index >= start
    ]
    added = 0
    for first in range(0, len(rows), batch):
        stmt = (
            pg_insert(ConversationEvent)
            .values(rows[first : first + batch])
            .on_conflict_do_nothing(index_elements=["conversation_id", "event_index"])
        )
        added += session.execute(stmt).rowcount  # type: ignore[attr-defined]
    return added


@dataclass(frozen=True)
class ConversationSync:
    """What a sync learnt of a conversation."""

    status: str
    outcome: str | None
    sentiment_score: float
    key_points: list[str]
    summary: str | None  # None or empty keeps the stored summary
    call_sid: str | None  # kept only if none is stored
    metadata: dict[str, Any]  # merged into the stored metadata


def record_sync(session: Session, conversation_id: uuid.UUID, sync: ConversationSync) -> None:
    """Write what the sync learnt onto the conversation (locked by lock_conversation)."""
    row = session.get_one(Conversation, conversation_id)
    row.status = sync.status
    row.outcome = sync.outcome
    row.sentiment_score = sync.sentiment_score
    row.key_points = sync.key_points
    row.summary = sync.summary or row.summary
    row.call_sid = row.call_sid or sync.call_sid
    row.metadata_ = row.metadata_ | sync.metadata
    row.last_synced_at = datetime.now(UTC)
    row.updated_at = func.now()


def complete_campaign_lead(session: Session, campaign_id: uuid.UUID, lead_id: uuid.UUID) -> None:
    """The lead's conversation happened: a contacted lead is completed for the campaign."""
    session.execute(
        update(CampaignLead)
        .where(
            CampaignLead.campaign_id == campaign_id,
            CampaignLead.lead_id == lead_id,
            CampaignLead.status == CampaignLeadStatus.contacted,
        )
        .values(status=CampaignLeadStatus.completed, updated_at=func.now())
    )
