"""`callsync queue stats` against the test database, and what its statements cost on a queue
table of mostly completed rows."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from sqlalchemy import func
from sqlalchemy.orm import Session

from app import queue_stats
from app.models import ProcessingStatus, SyncOperation, SyncQueueItem
from tests.integration.conftest import COMPLETED
from tests.integration.test_cli import callsync

QUEUE_TABLES = ("webhook_queue", "enrichment_queue", "sync_queue", "historical_sync_jobs")


def test_counts_ages_and_dead_rows_per_queue(session: Session) -> None:
    session.add_all(
        [
            SyncQueueItem(
                table_name="t",
                record_id="1",
                operation=SyncOperation.INSERT,
                created_at=func.now() - timedelta(hours=2),
            ),
            SyncQueueItem(table_name="t", record_id="2", operation=SyncOperation.DELETE),
            SyncQueueItem(
                table_name="t",
                record_id="3",
                operation=SyncOperation.UPDATE,
                status=ProcessingStatus.failed,
                retry_count=3,
                max_retries=3,
            ),
            SyncQueueItem(
                table_name="t",
                record_id="4",
                operation=SyncOperation.UPDATE,
                status=ProcessingStatus.completed,
            ),
        ]
    )
    session.commit()
    result = callsync("queue", "stats", "--analyze")
    assert result.returncode == 0, result.stderr
    [line] = [line for line in result.stdout.splitlines() if "sync_queue" in line]
    cells = [cell.strip() for cell in line.strip("│┃| ").split("│")]
    # pending, processing, failed, dead, and of the dead those lost with their worker
    assert cells[:6] == ["sync_queue", "2", "0", "1", "1", "0"]
    assert cells[6].startswith("2:00:")  # the oldest pending row's age
    assert cells[7] == "~1"  # completed, estimated from the statistics --analyze gathered
    assert "historical sync jobs in flight: 0" in result.stdout


def test_big_queues_are_counted_exactly_but_the_completed_rows(
    big_queues: None, session: Session
) -> None:
    stats = {stat.name: stat for stat in queue_stats.queue_stats(session)}
    for table, stat in stats.items():
        assert stat.counts == {"pending": 30, "processing": 5, "failed": 13}, table
        assert stat.dead == 3, table
        assert stat.oldest_pending is not None
        assert timedelta(minutes=30) <= stat.oldest_pending < timedelta(minutes=31), table
        assert abs(stat.completed_estimate - COMPLETED) <= COMPLETED // 100, table
    assert queue_stats.jobs_in_flight(session) == 1


def test_no_statement_reads_a_whole_queue_table(
    big_queues: None, session: Session, statements: list[tuple[str, Any]]
) -> None:
    queue_stats.queue_stats(session)
    queue_stats.jobs_in_flight(session)
    sent = list(statements)
    assert len(sent) == 5
    connection = session.connection()
    for statement, parameters in sent:
        if "FROM provider_pauses" in statement:
            continue  # a handful of rows, not a queue: read whole
        plan = "\n".join(
            row[0] for row in connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)
        )
        assert re.search(r"Index (Only )?Scan|Bitmap Index Scan", plan), plan
        assert not re.search(rf"Seq Scan on ({'|'.join(QUEUE_TABLES)})\b", plan), plan
