"""`callsync queue stats` against the test database."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func
from sqlalchemy.orm import Session

from app.models import ProcessingStatus, SyncOperation, SyncQueueItem
from tests.integration.test_cli import callsync


def test_counts_ages_and_dead_rows_per_queue(session: Session) -> None:
    session.add_all([
        SyncQueueItem(table_name="t", record_id="1", operation=SyncOperation.INSERT,
                      created_at=func.now() - timedelta(hours=2)),
        SyncQueueItem(table_name="t", record_id="2", operation=SyncOperation.INSERT),
        SyncQueueItem(table_name="t", record_id="3", operation=SyncOperation.UPDATE,
                      status=ProcessingStatus.failed, retry_count=3, max_retries=3),
    ])  # fmt: skip
    session.commit()
    result = callsync("queue", "stats")
    assert result.returncode == 0, result.stderr
    [line] = [line for line in result.stdout.splitlines() if "sync_queue" in line]
    cells = [cell.strip() for cell in line.strip("│┃| ").split("│")]
    assert cells[:5] == ["sync_queue", "2", "0", "0", "1"]
    assert cells[5].startswith("2:00:")  # the oldest pending row's age
    assert cells[6] == "1"  # dead
    assert "historical sync jobs in flight: 0" in result.stdout
