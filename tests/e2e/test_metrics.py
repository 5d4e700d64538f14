"""GET /metrics: queue depth read from the database, and the task outcomes and claim times that
a real worker recorded."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from app.celery import app as celery_app
from app.fakes.ultravox import call_at, generate_calls, send_webhook
from app.models import Call, ProcessingStatus, SyncOperation, SyncQueueItem
from tests.helpers import ApiClient, make_agency, wait_for

pytestmark = pytest.mark.e2e

SECRET = "whsec_metrics"
DRAIN = "webhooks.drain_webhook_queue"


def scrape(client: ApiClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def sample(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def test_queue_depth_comes_from_the_tables(api: ApiClient, session: Session) -> None:
    session.add_all(
        [
            SyncQueueItem(
                table_name="t",
                record_id="1",
                operation=SyncOperation.INSERT,
                created_at=func.now() - timedelta(minutes=5),
            ),
            SyncQueueItem(table_name="t", record_id="2", operation=SyncOperation.INSERT),
            SyncQueueItem(
                table_name="t",
                record_id="3",
                operation=SyncOperation.UPDATE,
                status=ProcessingStatus.failed,
                retry_count=3,
                max_retries=3,
            ),
        ]
    )
    session.commit()
    samples = scrape(api)
    rows = "callsync_queue_rows"
    assert sample(samples, rows, queue="sync_queue", status="pending") == 2
    assert sample(samples, rows, queue="sync_queue", status="failed") == 1
    assert sample(samples, rows, queue="webhook_queue", status="pending") == 0
    assert sample(samples, rows, queue="sync_queue", status="completed") is None  # estimated
    assert sample(samples, "callsync_queue_dead_rows", queue="sync_queue") == 1
    oldest = sample(samples, "callsync_queue_oldest_pending_seconds", queue="sync_queue")
    assert oldest is not None
    assert 300 <= oldest < 360
    assert sample(samples, "callsync_sync_jobs_in_flight") == 0


def test_a_drain_run_by_the_worker_is_counted_with_its_claim_time(
    client: ApiClient, session: Session
) -> None:
    drains_before = (
        sample(
            scrape(client),
            "callsync_tasks_total",
            queue="webhooks",
            task=DRAIN,
            outcome="succeeded",
        )
        or 0
    )
    agency = make_agency(session, webhook_secret=SECRET)
    [call] = generate_calls(1, live_every=0)
    url = f"{client.base_url}/webhooks/ultravox/{agency}"
    assert (
        send_webhook(url, "call.started", call_at(call, "call.started"), SECRET).status_code == 204
    )
    wait_for(lambda: session.scalar(select(func.count()).select_from(Call)), what="the call row")

    def counted() -> dict[tuple[str, frozenset[tuple[str, str]]], float] | None:
        samples = scrape(client)
        done = sample(
            samples, "callsync_tasks_total", queue="webhooks", task=DRAIN, outcome="succeeded"
        )
        return samples if (done or 0) > drains_before else None

    samples = wait_for(counted, what="the drain to be counted")
    assert sample(samples, "callsync_queue_rows", queue="webhook_queue", status="pending") == 0
    session.execute(text("ANALYZE webhook_queue"))  # what autovacuum does, now
    session.commit()
    completed = {"queue": "webhook_queue", "status": "completed"}
    assert sample(scrape(client), "callsync_queue_rows_estimate", **completed) == 1
    claims = sample(samples, "callsync_claim_seconds_count", queue="webhook_queue")
    assert claims is not None
    assert claims >= 1
    inf = sample(samples, "callsync_claim_seconds_bucket", queue="webhook_queue", le="+Inf")
    assert inf == claims
    assert sample(samples, "callsync_claim_seconds_sum", queue="webhook_queue") > 0  # type: ignore[operator]


def test_a_task_that_raises_is_counted_as_failed(client: ApiClient) -> None:
    failures = (
        sample(
            scrape(client), "callsync_tasks_total", queue="webhooks", task=DRAIN, outcome="failed"
        )
        or 0
    )
    # A message the task cannot take: the worker runs it, and it raises TypeError.
    celery_app.send_task(DRAIN, args=[str(uuid.uuid4())], queue="webhooks")

    def failed() -> float | None:
        return sample(
            scrape(client), "callsync_tasks_total", queue="webhooks", task=DRAIN, outcome="failed"
        )

    wait_for(lambda: failed() == failures + 1, what="the failure to be counted")
