"""The real Flower against the test Redis: it lists our worker, and a historical sync's page
tasks under their names, with ids for arguments and the job's result."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy.orm import Session

from app.fakes import server
from app.fakes.ultravox import FakeUltravox
from tests.helpers import ROOT, ApiClient, Worker, make_agency, make_member, wait_for

pytestmark = pytest.mark.e2e

AUTH = ("ops", "flower-test-password")
PAGE_TASK = "ultravox.process_sync_page"


class Flower:
    def __init__(self, url: str) -> None:
        self.url = url

    def get(self, path: str, **params: str) -> Any:
        response = requests.get(self.url + path, params=params, auth=AUTH, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture
def flower(worker: Worker, tmp_path: Path) -> Iterator[Flower]:
    port = server.free_port()
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "app",
        "flower",
        "--address=127.0.0.1",
        f"--port={port}",
        "--persistent=False",
        "--events_enable_interval=500",
    ]
    # The login comes from the environment, as docker-compose.yml passes it.
    env = {**os.environ, "FLOWER_BASIC_AUTH": ":".join(AUTH)}
    with (tmp_path / "flower.log").open("w") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            running = Flower(f"http://127.0.0.1:{port}")

            def sees_our_worker() -> bool:
                assert process.poll() is None, (tmp_path / "flower.log").read_text()
                try:
                    return bool(running.get("/api/workers", status="true").get(worker.name))
                except requests.ConnectionError:
                    return False

            wait_for(sees_our_worker, timeout=60, what="Flower to see the worker's heartbeat")
            # Task events are off in our configuration until Flower switches them on.
            wait_for(
                lambda: "Events of group {task} enabled" in worker.log_path.read_text(),
                what="Flower to switch the worker's task events on",
            )
            yield running
        finally:
            process.terminate()
            process.wait(timeout=20)


def test_flower_lists_a_sync_page_task_by_name_with_ids_for_arguments(
    flower: Flower,
    client: ApiClient,
    worker: Worker,
    fake_ultravox: FakeUltravox,
    session: Session,
) -> None:
    agency = make_agency(session)
    headers = {"Authorization": f"Bearer {make_member(session, agency, 'owner')}"}
    response = client.post(
        "/api/historical-syncs",
        json={"date_to": "2030-01-01T00:00:00Z", "max_calls": 1000},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    job_id = response.json()["id"]

    def page_tasks_done() -> dict[str, Any] | None:
        tasks: dict[str, Any] = flower.get("/api/tasks", taskname=PAGE_TASK)
        done = {key: task for key, task in tasks.items() if task["state"] == "SUCCESS"}
        return done or None

    tasks = wait_for(page_tasks_done, what="Flower to show a finished page task")
    task_id, task = next(iter(tasks.items()))
    assert task["name"] == PAGE_TASK
    assert task["args"] == f"('{job_id}', None)"  # the job's id and its cursor: no secret
    assert task["worker"] == worker.name
    result = flower.get(f"/api/task/result/{task_id}")
    assert result["state"] == "SUCCESS"
    assert result["result"]["job_id"] == job_id
    assert result["result"]["status"] in ("in_progress", "completed")
    assert result["result"]["total_calls"] == len(fake_ultravox.calls)


def test_flower_wants_its_login_except_for_the_health_check(flower: Flower) -> None:
    assert requests.get(flower.url + "/api/workers", timeout=10).status_code == 401
    wrong = requests.get(flower.url + "/api/workers", auth=("ops", "guess"), timeout=10)
    assert wrong.status_code == 401
    assert requests.get(flower.url + "/healthcheck", timeout=10).text == "OK"
