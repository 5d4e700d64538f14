"""Fair shares between agencies: the indexes a claim walks per agency, and enrichment_queue's
agency_id.

Claims take pending rows round-robin across agencies (app.shares): webhook_queue by its
agency_id, enrichment_queue by its call's agency, sync_queue by table_name. Each needs a
partial index on (group, the queue's order) WHERE status = 'pending'. An enrichment item's
agency is its call's: agency_id is copied from calls, by the statement-level triggers that
queue items, and by a row trigger for any other insert that leaves it out (an old system's
own triggers, say); it fires only then, so the statement-level inserts do not pay for it. It
has no foreign key: the call's own cascades the item away with its agency, and a key check
per row is what the statement-level triggers were made to avoid.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = sa.text("status = 'pending'")
# webhook_queue and sync_queue share by an expression rather than the bare column, which the
# seed's idx_webhook_queue_agency and idx_sync_queue_record (led by table_name) could serve
# too, with plans that read and sort a big agency's whole backlog (app.shares).
INDEXES = [
    (
        "idx_webhook_queue_agency_pending",
        "webhook_queue",
        [sa.text("uuid_send(agency_id)"), "created_at"],
    ),
    (
        "idx_enrichment_queue_agency_pending",
        "enrichment_queue",
        ["agency_id", "priority", "created_at"],
    ),
    (
        "idx_sync_queue_table_pending",
        "sync_queue",
        [sa.text("lower(table_name)"), "created_at"],
    ),
]

QUEUE_FOR_CALLS = """
CREATE OR REPLACE FUNCTION queue_enrichment_for_changed_calls() RETURNS trigger
LANGUAGE plpgsql AS $$
-- TG_ARGV[0] is the enrichment type, TG_ARGV[1] the column whose first value queues it.
BEGIN
    IF TG_OP = 'INSERT' THEN
        EXECUTE format(
            'INSERT INTO enrichment_queue (call_id, agency_id, type)
             SELECT id, agency_id, %L FROM new_rows WHERE %I IS NOT NULL
             ON CONFLICT ON CONSTRAINT enrichment_queue_unique_pending DO NOTHING',
            TG_ARGV[0], TG_ARGV[1]);
    ELSE
        EXECUTE format(
            'INSERT INTO enrichment_queue (call_id, agency_id, type)
             SELECT n.id, n.agency_id, %L FROM new_rows AS n JOIN old_rows AS o USING (id)
             WHERE n.%I IS NOT NULL AND o.%I IS NULL
             ON CONFLICT ON CONSTRAINT enrichment_queue_unique_pending DO NOTHING',
            TG_ARGV[0], TG_ARGV[1], TG_ARGV[1]);
    END IF;
    RETURN NULL;
END
$$;
"""

# 0004's version, for the downgrade.
QUEUE_FOR_CALLS_BEFORE = """
CREATE OR REPLACE FUNCTION queue_enrichment_for_changed_calls() RETURNS trigger
LANGUAGE plpgsql AS $$
-- TG_ARGV[0] is the enrichment type, TG_ARGV[1] the column whose first value queues it.
BEGIN
    IF TG_OP = 'INSERT' THEN
        EXECUTE format(
            'INSERT INTO enrichment_queue (call_id, type)
             SELECT id, %L FROM new_rows WHERE %I IS NOT NULL
             ON CONFLICT ON CONSTRAINT enrichment_queue_unique_pending DO NOTHING',
            TG_ARGV[0], TG_ARGV[1]);
    ELSE
        EXECUTE format(
            'INSERT INTO enrichment_queue (call_id, type)
             SELECT n.id, %L FROM new_rows AS n JOIN old_rows AS o USING (id)
             WHERE n.%I IS NOT NULL AND o.%I IS NULL
             ON CONFLICT ON CONSTRAINT enrichment_queue_unique_pending DO NOTHING',
            TG_ARGV[0], TG_ARGV[1], TG_ARGV[1]);
    END IF;
    RETURN NULL;
END
$$;
"""

AGENCY_OF_CALL = """
CREATE FUNCTION enrichment_item_agency() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    SELECT agency_id INTO NEW.agency_id FROM calls WHERE id = NEW.call_id;
    RETURN NEW;
END
$$;

CREATE TRIGGER enrichment_queue_agency
BEFORE INSERT ON enrichment_queue
FOR EACH ROW WHEN (NEW.agency_id IS NULL)
EXECUTE FUNCTION enrichment_item_agency();
"""


def upgrade() -> None:
    op.add_column("enrichment_queue", sa.Column("agency_id", postgresql.UUID()))
    op.execute(
        "UPDATE enrichment_queue AS q SET agency_id = c.agency_id FROM calls AS c "
        "WHERE c.id = q.call_id"
    )
    op.alter_column("enrichment_queue", "agency_id", nullable=False)
    op.execute(QUEUE_FOR_CALLS)
    op.execute(AGENCY_OF_CALL)
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns, postgresql_where=PENDING)


def downgrade() -> None:
    for name, table, _ in INDEXES:
        op.drop_index(name, table_name=table, postgresql_where=PENDING)
    op.execute("DROP TRIGGER enrichment_queue_agency ON enrichment_queue")
    op.execute("DROP FUNCTION enrichment_item_agency()")
    op.execute(QUEUE_FOR_CALLS_BEFORE)
    op.drop_column("enrichment_queue", "agency_id")
