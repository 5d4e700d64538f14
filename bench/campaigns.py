"""campaign-orchestrator on the database side: select and reserve for 100 campaigns of 1,000
leads each, beside the seed's way (read the leads, then one optimistic UPDATE per lead)."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from sqlalchemy import text

from bench.environment import met

GOAL_SECONDS = 2.0
CAMPAIGNS = 100
LEADS = 1000
DAILY_CAP = 100
# 15:00 UTC on a weekday: inside the window in New York, outside it in Los Angeles.
NOW = datetime(2026, 1, 14, 15, 0, tzinfo=UTC)

Row = tuple[str, ...]


def run() -> list[Row]:
    one_at_a_time = _reserve_all(_fill("bench: one campaign at a time"), parallel=1)
    # A worker with -c 2 runs two campaign tasks at once, as beat's fan-out intends.
    two_at_a_time = _reserve_all(_fill("bench: two campaigns at a time"), parallel=2)
    seed_seconds = _seed_way(_fill("bench: one update per lead"))
    size = f"{CAMPAIGNS} x {LEADS:,}"
    reserved = f"{CAMPAIGNS * DAILY_CAP:,}"
    return [
        ("way", "campaigns x leads", "dials reserved", "seconds", "goal", "met"),
        (
            "one statement per campaign, two campaigns at a time",
            size,
            reserved,
            f"{two_at_a_time:.2f}",
            f"<= {GOAL_SECONDS:g}",
            met(two_at_a_time <= GOAL_SECONDS),
        ),
        (
            "one statement per campaign, one at a time",
            size,
            reserved,
            f"{one_at_a_time:.2f}",
            "",
            "",
        ),
        (
            "seed's way: select, then one optimistic UPDATE per lead",
            size,
            reserved,
            f"{seed_seconds:.2f}",
            "baseline",
            "",
        ),
        (
            "ratio (baseline / one at a time)",
            "",
            "",
            f"{seed_seconds / one_at_a_time:.1f}x",
            "",
            "",
        ),
    ]


def _fill(name: str) -> list[uuid.UUID]:
    """A business with CAMPAIGNS active campaigns, each with LEADS leads enrolled; a tenth of
    the leads live in Los Angeles (outside their window now), a twentieth are do-not-call."""
    from app import db

    with db.session_scope() as session:
        business = session.execute(
            text("INSERT INTO businesses (name) VALUES (:name) RETURNING id"), {"name": name}
        ).scalar_one()
        campaigns = list(
            session.execute(
                text("""INSERT INTO campaigns (business_id, name, status, agent_id,
                        agent_phone_number_id, daily_call_cap)
                        SELECT :business, 'campaign ' || n, 'active', 'agent', 'phone', :cap
                        FROM generate_series(1, :count) AS n RETURNING id"""),
                {"business": business, "cap": DAILY_CAP, "count": CAMPAIGNS},
            ).scalars()
        )
        session.execute(
            text("""
            WITH leads AS (
                INSERT INTO leads (business_id, source, source_id, phone, timezone, do_not_call,
                                   quality_rating, lead_score)
                SELECT :business, 'bench', n::text, '+1202' || lpad(n::text, 7, '0'),
                       CASE WHEN n % 10 = 0 THEN 'America/Los_Angeles' END, n % 20 = 1,
                       n % 5, n % 97
                FROM generate_series(1, :leads) AS n
                RETURNING id, source_id::int AS n
            )
            INSERT INTO campaign_leads (campaign_id, lead_id)
            SELECT c.id, leads.id FROM leads
            JOIN unnest(CAST(:campaigns AS uuid[])) WITH ORDINALITY AS c(id, k)
              ON (leads.n - 1) / :per_campaign + 1 = c.k
            """),
            {
                "business": business,
                "leads": CAMPAIGNS * LEADS,
                "per_campaign": LEADS,
                "campaigns": campaigns,
            },
        )
    with db.session_scope() as session:
        session.execute(text("ANALYZE leads; ANALYZE campaign_leads"))
    return campaigns


def _reserve_all(campaigns: list[uuid.UUID], *, parallel: int) -> float:
    """What each campaign's run does before dialling, for every campaign."""
    from app import db
    from app.campaigns import queries

    def reserve(campaign: uuid.UUID) -> int:
        with db.session_scope() as session:
            queries.expire_reservations(session, campaign, before=NOW, error="bench")
            quota = queries.get_quota(session, campaign, NOW)
            limit = quota.cap - quota.calls_today
            return len(queries.reserve_dials(session, campaign, limit=limit, now=NOW).dials)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        reserved = sum(pool.map(reserve, campaigns))
    elapsed = time.perf_counter() - started
    if reserved != CAMPAIGNS * DAILY_CAP:
        raise SystemExit(f"reserved {reserved} dials, expected {CAMPAIGNS * DAILY_CAP}")
    return elapsed


def _seed_way(campaigns: list[uuid.UUID]) -> float:
    """Read each campaign's eligible leads, then reserve them one UPDATE and commit at a time."""
    from app import db

    started = time.perf_counter()
    for campaign in campaigns:
        with db.session_scope() as session:
            leads = session.execute(
                text("""SELECT cl.id, cl.attempts FROM campaign_leads cl
                        JOIN leads l ON l.id = cl.lead_id
                        WHERE cl.campaign_id = :id AND cl.attempts < 3 AND NOT l.do_not_call
                          AND coalesce(l.timezone, '') <> 'America/Los_Angeles'
                        ORDER BY l.quality_rating DESC, l.lead_score DESC LIMIT :cap"""),
                {"id": campaign, "cap": DAILY_CAP},
            ).all()
        for lead in leads:
            with db.session_scope() as session:
                session.execute(
                    text("""UPDATE campaign_leads SET attempts = :next, status = 'dialing'
                            WHERE id = :id AND attempts = :read"""),
                    {"next": lead.attempts + 1, "id": lead.id, "read": lead.attempts},
                )
    return time.perf_counter() - started
