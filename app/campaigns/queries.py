"""SQL for campaign-orchestrator: active campaigns, quotas, and the reservation of dials.

Nothing here commits; the caller owns the transaction. `now` is passed in rather than read
from the database clock, so that "today" and the call windows are those of one instant.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from app.models import Campaign, CampaignLead, CampaignLeadStatus, DialStatus, Lead

E164 = r"^\+[1-9][0-9]{7,14}$"
# TCPA and the FTC's TSR: 08:00-21:00 at the called person's location (api-facts §5).
EARLIEST, LATEST = "08:00", "21:00"

_LOCAL_TODAY = "(CAST(:now AS timestamptz) AT TIME ZONE c.timezone)::date"

ACTIVE_CAMPAIGNS = text(f"""
    SELECT c.id, c.name, c.agent_id FROM campaigns AS c
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

# Reservations whose dial was never recorded: the worker stopped in between. Whether the
# call went out is unknown, so that attempt is over and is never dialled again.
EXPIRE_RESERVATIONS = text(f"""
    WITH finished AS (
        UPDATE campaign_dials SET status = 'unknown', finished_at = now(), error = :error
        WHERE campaign_id = :campaign_id AND status = 'reserved' AND reserved_at < :before
        RETURNING *
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
                                    to_number, reserved_at)
        SELECT dial_id, :campaign_id, campaign_lead_id, lead_id, attempt, phone, :now
        FROM reserved
    )
    SELECT *, NULL AS skip_reason FROM reserved
    UNION ALL
    SELECT NULL, NULL, NULL, lead_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, last_error
    FROM skipped
""")  # noqa: S608 (constant SQL)


def get_active_campaigns(session: Session, now: datetime) -> list[Row[Any]]:
    """Active campaigns whose date range holds today in their own timezone."""
    return list(session.execute(ACTIVE_CAMPAIGNS, {"now": now}))


def lock_campaign(session: Session, campaign_id: uuid.UUID) -> Row[Any] | None:
    """The campaign, locked until the caller's transaction ends, so that the runs of one
    campaign read its quota and reserve its dials one at a time: a second run waits, then
    counts the first one's reservations. NO KEY UPDATE leaves the rows that reference the
    campaign (dials and conversations being recorded) free to be written meanwhile."""
    return session.execute(
        text("SELECT * FROM campaigns WHERE id = :id FOR NO KEY UPDATE"), {"id": campaign_id}
    ).one_or_none()


def get_quota(session: Session, campaign_id: uuid.UUID, now: datetime) -> Row[Any]:
    """The daily cap and the dials reserved since the campaign's midnight."""
    return session.execute(QUOTA, {"campaign_id": campaign_id, "now": now}).one()


def expire_reservations(
    session: Session, campaign_id: uuid.UUID, *, before: datetime, error: str
) -> int:
    """End reservations older than `before` as `unknown`, each logged in call_logs; returns
    how many leads it freed."""
    params = {"campaign_id": campaign_id, "before": before, "error": error, "note": None}
    return int(session.execute(EXPIRE_RESERVATIONS, params).rowcount)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Reservation:
    dials: list[Row[Any]]  # dial_id, campaign_lead_id, attempt, lead_id, phone, names, window
    skipped: list[Row[Any]]  # lead_id, skip_reason


def reserve_dials(
    session: Session, campaign_id: uuid.UUID, *, limit: int, now: datetime
) -> Reservation:
    """Reserve the next attempt of up to `limit` eligible leads, best first, and skip those
    without an E.164 number; see RESERVE. Rows another run holds are waited for, then left
    out if that run reserved them."""
    rows = session.execute(RESERVE, {"campaign_id": campaign_id, "limit": limit, "now": now})
    reserved = list(rows)
    return Reservation(
        dials=[row for row in reserved if row.skip_reason is None],
        skipped=[row for row in reserved if row.skip_reason is not None],
    )


def record_placed(
    session: Session,
    dial: Row[Any],
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


# A reserved attempt given back undialled (ElevenLabs refused our key): the dial is forgotten and
# the lead's attempt not counted.
RELEASE_DIAL = text("""
    WITH released AS (
        DELETE FROM campaign_dials WHERE id = :dial_id AND status = 'reserved'
        RETURNING campaign_lead_id, attempt
    )
    UPDATE campaign_leads AS cl
    SET attempts = cl.attempts - 1, last_error = :error, updated_at = now(),
        status = CAST(CASE WHEN cl.attempts = 1 THEN 'pending' ELSE 'failed' END
                      AS campaign_lead_status)
    FROM released
    WHERE cl.id = released.campaign_lead_id AND cl.attempts = released.attempt
      AND cl.status = 'dialing'
""")


def release_dial(session: Session, dial: Row[Any], error: str) -> None:
    """The attempt was not made: see RELEASE_DIAL."""
    session.execute(RELEASE_DIAL, {"dial_id": dial.dial_id, "error": error})


def record_failed(session: Session, dial: Row[Any], error: str) -> None:
    """The attempt failed with `error` and is logged; a later attempt may follow after the retry
    interval."""
    _finish(session, dial, DialStatus.failed, error=error)
    _update_lead(session, dial, CampaignLeadStatus.failed, last_error=error)


def _finish(session: Session, dial: Row[Any], status: DialStatus, **values: str | None) -> None:
    params = {"conversation_id": None, "call_sid": None, "error": None, "note": None} | values
    session.execute(FINISH_DIAL, {"status": status.value, "dial_id": dial.dial_id, **params})


def _update_lead(
    session: Session, dial: Row[Any], status: CampaignLeadStatus, **values: str | None
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


def get_progress_counts(
    session: Session, campaign_id: uuid.UUID, now: datetime
) -> dict[str, dict[str, int]]:
    """The campaign's leads, dials (all and today's) and conversations, counted by status."""
    params = {"campaign_id": campaign_id, "now": now}
    return {
        name: dict(session.execute(text(sql), params).all()) for name, sql in _BY_STATUS.items()
    }
