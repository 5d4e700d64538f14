"""Revision 0010 on a database with campaign history: every finished attempt gets its call_logs
row, the fallback rows already there are tied to their dial, and downgrade keeps only those."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, create_engine, text

from alembic import command
from app import migrations

URL = f"postgresql+psycopg2://postgres@127.0.0.1:5432/callsync_test_0010_{os.getpid()}"

HISTORY = """
    INSERT INTO businesses (id, name) VALUES ('00000000-0000-0000-0000-00000000000b', 'B');
    INSERT INTO campaigns (id, business_id, name, agent_id, agent_phone_number_id)
    VALUES ('00000000-0000-0000-0000-00000000000c', '00000000-0000-0000-0000-00000000000b',
            'C', 'agent', 'phnum');
    INSERT INTO leads (id, business_id, source, source_id, phone)
    SELECT ('00000000-0000-0000-0000-00000000000' || n)::uuid,
           '00000000-0000-0000-0000-00000000000b', 'test', n, '+1202555010' || n
    FROM unnest(ARRAY['1', '2', '3', '4']) AS n;
    INSERT INTO campaign_leads (id, campaign_id, lead_id, attempts)
    SELECT ('00000000-0000-0000-0000-00000000010' || n)::uuid,
           '00000000-0000-0000-0000-00000000000c',
           ('00000000-0000-0000-0000-00000000000' || n)::uuid, 1
    FROM unnest(ARRAY['1', '2', '3', '4']) AS n;
    INSERT INTO campaign_dials (campaign_id, campaign_lead_id, lead_id, attempt, to_number,
                                status, error, conversation_id, call_sid, finished_at)
    SELECT '00000000-0000-0000-0000-00000000000c',
           ('00000000-0000-0000-0000-00000000010' || n)::uuid,
           ('00000000-0000-0000-0000-00000000000' || n)::uuid, 1, '+1202555010' || n,
           status::dial_status, error, conversation_id, call_sid,
           CASE WHEN status = 'reserved' THEN NULL ELSE now() END
    FROM (VALUES ('1', 'placed', NULL, 'conv_1', 'CA1'), ('2', 'placed', NULL, 'conv_2', 'CA2'),
                 ('3', 'failed', 'HTTP 500', NULL, NULL), ('4', 'reserved', NULL, NULL, NULL))
         AS d (n, status, error, conversation_id, call_sid);
    INSERT INTO call_logs (campaign_id, lead_id, to_number, conversation_id, call_sid, status,
                           error)
    VALUES ('00000000-0000-0000-0000-00000000000c', '00000000-0000-0000-0000-000000000002',
            '+12025550102', 'conv_2', 'CA2', 'placed',
            'conversation not recorded: duplicate key');
"""


@pytest.fixture
def at_0008() -> Iterator[Connection]:
    migrations.drop_database(URL)
    try:
        migrations.upgrade(URL, "0008")
        engine = create_engine(URL, isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.execute(text(HISTORY))
            yield connection
        engine.dispose()
    finally:
        migrations.drop_database(URL)


def logs(connection: Connection) -> list[tuple[str | None, str, str | None, bool]]:
    rows = connection.execute(
        text("""SELECT l.to_number, l.status, l.error, l.dial_id = d.id AND l.attempt = 1
                FROM call_logs AS l LEFT JOIN campaign_dials AS d ON d.to_number = l.to_number
                ORDER BY l.to_number""")
    )
    return [tuple(row) for row in rows]


def test_finished_attempts_are_logged_once_and_downgrade_keeps_the_fallback(
    at_0008: Connection,
) -> None:
    config = migrations.alembic_config(URL)
    command.upgrade(config, "0010")
    assert logs(at_0008) == [
        ("+12025550101", "placed", None, True),
        ("+12025550102", "placed", "conversation not recorded: duplicate key", True),
        ("+12025550103", "failed", "HTTP 500", True),
    ]  # the reserved attempt is not over: it has no row yet
    command.downgrade(config, "0008")
    rows = at_0008.execute(text("SELECT to_number, status FROM call_logs")).all()
    assert [tuple(row) for row in rows] == [("+12025550102", "placed")]
