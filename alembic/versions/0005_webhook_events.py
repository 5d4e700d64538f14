"""Webhook events: one queue row per delivery, applied to calls in lifecycle order.

Ultravox sends no event id and retries a delivery up to 10 times, so a delivery is known by
(agency, event, call.callId): `uq_webhook_queue_event` lets webhook-ingest queue it once with
ON CONFLICT DO NOTHING.

`calls.last_event` records the latest lifecycle event applied to a call, so that an older
event arriving late (a retried call.joined after call.ended) only fills fields still empty and
never overwrites newer state. `apply_webhook_events` applies a batch of queue rows in one
statement; the merge happens in ON CONFLICT's SET, which sees the row's latest committed
version, so concurrent batches for one call cannot lose each other's state.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UPGRADE = """
CREATE UNIQUE INDEX uq_webhook_queue_event
    ON webhook_queue (agency_id, event_type, (payload #>> '{call,callId}'));

-- 1..4 along a call's life; 0 for anything else (a call imported by a historical sync).
CREATE FUNCTION ultravox_event_rank(p_event text) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(
        array_position(ARRAY['call.started', 'call.joined', 'call.ended', 'call.billed'], p_event),
        0
    )
$$;

-- A newer event's values win where it has them; an older one only fills what is missing.
CREATE FUNCTION webhook_merge(p_newer boolean, p_old anyelement, p_new anyelement)
RETURNS anyelement
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p_newer THEN coalesce(p_new, p_old) ELSE coalesce(p_old, p_new) END
$$;

-- Apply the given webhook_queue rows to their calls, creating calls that are absent. Of
-- several events for one call in the batch, the latest in the call's life is applied.
CREATE FUNCTION apply_webhook_events(p_ids uuid[]) RETURNS integer
LANGUAGE sql VOLATILE AS $$
    WITH applied AS (
        INSERT INTO calls AS c (
            agency_id, ultravox_call_id, agent_id, created, joined, ended, end_reason,
            billed_duration, billed_duration_seconds, billing_status,
            billed_side_input_tokens, billed_side_output_tokens, short_summary, summary,
            metadata, raw, last_event, last_event_at
        )
        SELECT DISTINCT ON (q.agency_id, (x ->> 'callId')::uuid)
            q.agency_id,
            (x ->> 'callId')::uuid,
            x ->> 'agentId',
            (x ->> 'created')::timestamptz,
            (x ->> 'joined')::timestamptz,
            (x ->> 'ended')::timestamptz,
            x ->> 'endReason',
            x ->> 'billedDuration',
            nullif(rtrim(x ->> 'billedDuration', 's'), '')::numeric,
            x ->> 'billingStatus',
            (x ->> 'billedSideInputTokens')::integer,
            (x ->> 'billedSideOutputTokens')::integer,
            x ->> 'shortSummary',
            x ->> 'summary',
            coalesce(x -> 'metadata', '{}'::jsonb),
            x,
            q.event_type,
            now()
        FROM webhook_queue AS q
        CROSS JOIN LATERAL (SELECT q.payload -> 'call') AS p (x)
        WHERE q.id = ANY (p_ids)
        ORDER BY q.agency_id, (x ->> 'callId')::uuid,
            ultravox_event_rank(q.event_type) DESC, q.created_at DESC
        ON CONFLICT (agency_id, ultravox_call_id) DO UPDATE SET (
            agent_id, created, joined, ended, end_reason, billed_duration,
            billed_duration_seconds, billing_status, billed_side_input_tokens,
            billed_side_output_tokens, short_summary, summary, metadata, raw, last_event,
            last_event_at, updated_at
        ) = (
            SELECT
                webhook_merge(r.newer, c.agent_id, EXCLUDED.agent_id),
                webhook_merge(r.newer, c.created, EXCLUDED.created),
                webhook_merge(r.newer, c.joined, EXCLUDED.joined),
                webhook_merge(r.newer, c.ended, EXCLUDED.ended),
                webhook_merge(r.newer, c.end_reason, EXCLUDED.end_reason),
                webhook_merge(r.newer, c.billed_duration, EXCLUDED.billed_duration),
                webhook_merge(r.newer, c.billed_duration_seconds, EXCLUDED.billed_duration_seconds),
                webhook_merge(r.newer, c.billing_status, EXCLUDED.billing_status),
                webhook_merge(r.newer, c.billed_side_input_tokens, EXCLUDED.billed_side_input_tokens),
                webhook_merge(r.newer, c.billed_side_output_tokens, EXCLUDED.billed_side_output_tokens),
                webhook_merge(r.newer, c.short_summary, EXCLUDED.short_summary),
                webhook_merge(r.newer, c.summary, EXCLUDED.summary),
                CASE WHEN r.newer THEN EXCLUDED.metadata ELSE c.metadata END,
                CASE WHEN r.newer THEN EXCLUDED.raw ELSE c.raw END,
                CASE WHEN r.newer THEN EXCLUDED.last_event ELSE c.last_event END,
                now(),
                now()
            FROM (
                SELECT ultravox_event_rank(EXCLUDED.last_event)
                    >= ultravox_event_rank(c.last_event) AS newer
            ) AS r
        )
        RETURNING 1
    )
    SELECT count(*)::integer FROM applied
$$;
"""

DOWNGRADE = """
DROP FUNCTION apply_webhook_events(uuid[]);
DROP FUNCTION webhook_merge(boolean, anyelement, anyelement);
DROP FUNCTION ultravox_event_rank(text);
DROP INDEX uq_webhook_queue_event;
"""


def upgrade() -> None:
    op.add_column("calls", sa.Column("last_event", sa.String(length=50), nullable=True))
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
    op.drop_column("calls", "last_event")
