"""Webhook events get time-ordered ids: `time_ordered_uuid()`, a UUID version 7 (RFC 9562).

Completing an event writes a new version of its row, and with it a new entry in every index
of webhook_queue, its primary key among them. With random ids the new events' keys are spread
over every leaf of a primary key that holds all the finished events too, so each batch reads
and dirties leaves all over it: the drain slows as the queue grows. Ids that start with the
time of their insert keep the new events together at the right of the index, whatever lies to
their left. webhook-ingest sets them; the column keeps its seed's default
(uuid_generate_v4()) for rows that come another way.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The first 48 bits are the Unix time in milliseconds; bits 52 and 53 (of the version
# nibble, 4 in gen_random_uuid's) make it 7; the variant bits and the rest stay random.
UPGRADE = """
CREATE FUNCTION time_ordered_uuid() RETURNS uuid
LANGUAGE sql VOLATILE PARALLEL SAFE AS $$
    SELECT encode(
        set_bit(set_bit(
            overlay(
                uuid_send(gen_random_uuid())
                PLACING substring(
                    int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint)
                    FROM 3)
                FROM 1 FOR 6),
            52, 1), 53, 1),
        'hex')::uuid
$$;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute("DROP FUNCTION time_ordered_uuid()")
