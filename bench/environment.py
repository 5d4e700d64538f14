"""A database, a Redis database and a fake Ultravox of the benchmarks' own, and the table printer.

The environment is set before `app` is imported, because the Celery app reads its settings
at import time; worker processes inherit it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from app import processes
from app.fakes import server

LOG_DIR = processes.ROOT / "var" / "bench"
# BENCH_DATABASE_URL and BENCH_REDIS_URL let two runs on one machine keep apart.
BENCH_DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/callsync_bench"
)
BENCH_REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
ULTRAVOX_API_KEY = "uv-bench-key"


@dataclass(frozen=True)
class Environment:
    ultravox_url: str


@contextmanager
def prepared() -> Iterator[Environment]:
    """A fresh benchmark database at head; the fake Ultravox URL in the environment."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    port = server.free_port()
    os.environ.update(
        DATABASE_URL=BENCH_DATABASE_URL,
        REDIS_URL=BENCH_REDIS_URL,
        ULTRAVOX_API_BASE_URL=f"http://127.0.0.1:{port}",
    )
    from app import migrations

    migrations.drop_database(BENCH_DATABASE_URL)
    migrations.upgrade(BENCH_DATABASE_URL)
    yield Environment(ultravox_url=f"http://127.0.0.1:{port}")


@contextmanager
def api_server() -> Iterator[str]:
    """`callsync api` in a child process; yields its url."""
    port = server.free_port()
    command = [sys.executable, "-m", "app.cli", "api", "--port", str(port), "--no-access-log"]
    with processes.child(
        "api", command, log_dir=LOG_DIR, ready=lambda log: "Application startup complete" in log
    ):
        yield f"http://127.0.0.1:{port}"


def fake_ultravox(env: Environment, calls: int, *options: str) -> list[str]:
    """The command of a fake Ultravox holding `calls` ended calls, on the environment's port."""
    port = env.ultravox_url.rsplit(":", 1)[1]
    return [
        sys.executable,
        "-m",
        "app.cli",
        "fake",
        "ultravox",
        "--port",
        port,
        "--calls",
        str(calls),
        "--live-every",
        "0",
        "--api-key",
        ULTRAVOX_API_KEY,
        *options,
    ]


def celery_worker(concurrency: int = 1, queues: str = "default,sync") -> list[str]:
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "app",
        "worker",
        "-Q",
        queues,
        "-c",
        str(concurrency),
        "-l",
        "INFO",
    ]


def forget_enrichment() -> None:
    """No enrichment item of an earlier benchmark is left: the historical sync's calls queue
    transcripts too, which a fake holding other calls answers 404, at the key's rate."""
    from sqlalchemy import text

    from app import db

    with db.session_scope() as session:
        session.execute(text("DELETE FROM enrichment_queue"))


def print_table(title: str, rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    print(f"\n{title}\n")
    for n, row in enumerate(rows):
        print(
            "| "
            + " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            + " |"
        )
        if n == 0:
            print("|" + "|".join("-" * (width + 2) for width in widths) + "|")


def met(goal_met: bool) -> str:
    """The table's "met" cell."""
    return "yes" if goal_met else "NO"
