"""A database, a Redis database and a fake Ultravox of the benchmarks' own, and the table printer.

The environment is set before `app` is imported, because the Celery app reads its settings
at import time; worker processes inherit it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOG_DIR = ROOT / "var" / "bench"
BENCH_DATABASE_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/callsync_bench"
ULTRAVOX_API_KEY = "uv-bench-key"


@dataclass(frozen=True)
class Environment:
    ultravox_url: str


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def prepared() -> Iterator[Environment]:
    """A fresh callsync_bench database at head; the fake Ultravox URL in the environment."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    os.environ.update(
        DATABASE_URL=BENCH_DATABASE_URL,
        REDIS_URL="redis://127.0.0.1:6379/14",
        ULTRAVOX_API_BASE_URL=f"http://127.0.0.1:{port}",
    )
    from sqlalchemy import create_engine, text

    from app import migrations

    admin = create_engine(
        "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as connection:
        connection.execute(text("DROP DATABASE IF EXISTS callsync_bench WITH (FORCE)"))
    admin.dispose()
    migrations.upgrade(BENCH_DATABASE_URL)
    yield Environment(ultravox_url=f"http://127.0.0.1:{port}")


@contextmanager
def process(name: str, command: list[str], ready: Callable[[str], bool]) -> Iterator[None]:
    """A child process, logged under var/bench/, stopped on exit."""
    log_path = LOG_DIR / f"{name}.log"
    with log_path.open("w") as log:
        child = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while not ready(log_path.read_text()):
                if child.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"{name} did not start; see {log_path}")
                time.sleep(0.1)
            yield
        finally:
            child.terminate()
            child.wait(timeout=30)


def celery_worker(concurrency: int = 1) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "app", "worker", "-Q", "default,sync",
            "-c", str(concurrency), "-l", "INFO"]  # fmt: skip


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
