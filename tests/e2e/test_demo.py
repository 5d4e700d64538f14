"""`callsync demo`, the README's first command: every flow settles, and everything it started
stops, Ctrl-C included."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.helpers import ROOT, wait_for

pytestmark = pytest.mark.e2e

# A broker of its own: the demo's worker must not take the other tests' tasks, nor theirs its.
ENV = {**os.environ, "REDIS_URL": "redis://127.0.0.1:6379/13", "COLUMNS": "200"}
DEMO = [
    sys.executable,
    "-m",
    "app.cli",
    "demo",
    "--calls",
    "60",
    "--leads",
    "5",
    "--webhook-calls",
    "5",
]


@contextmanager
def demo_process() -> Iterator[subprocess.Popen[str]]:
    """The demo in a process group of its own, killed whole if the test fails."""
    demo = subprocess.Popen(
        DEMO,
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        yield demo
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()


def children(output: str) -> list[int]:
    return [int(pid) for pid in re.findall(r"running \(pid (\d+)", output)]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.timeout(300)
def test_the_demo_runs_every_flow_to_the_end_and_stops_what_it_started() -> None:
    with demo_process() as demo:
        output, _ = demo.communicate(timeout=240)
    assert demo.returncode == 0, output
    summary = output.split("What happened", 1)[1]
    rows = {
        label.strip(): (int(done), int(total))
        for label, done, total in re.findall(r"│ ([^│]+?)\s*│\s*(\d+) │\s*(\d+) │", summary)
    }
    assert rows["webhook events applied"] == (20, 20)  # 5 calls x 4 events; the duplicate not
    assert rows["Salesforce leads synced"] == (5, 5)
    assert rows["calls placed"] == (5, 5)
    assert rows["conversations finished"] == (5, 5)
    assert rows["signups pushed to Bubble"] == (1, 1)
    for label in ("historical sync: calls read", "transcripts", "analyses"):
        done, total = rows[label]
        assert done == total > 0, label
    assert "unfinished" not in summary
    assert re.search(r"historical sync completed: \d+ calls imported", summary)
    pids = children(output)
    assert len(pids) == 3
    assert not any(alive(pid) for pid in pids)


def test_ctrl_c_stops_everything_the_demo_started() -> None:
    with demo_process() as demo:
        assert demo.stdout is not None
        output = ""
        while "api running" not in output:
            line = demo.stdout.readline()
            assert line, output
            output += line
        pids = children(output)
        assert len(pids) == 3
        demo.send_signal(signal.SIGINT)
        demo.communicate(timeout=60)
    wait_for(lambda: not any(alive(pid) for pid in pids), what="the demo's children to stop")
