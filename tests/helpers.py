"""Plain helpers for tests: waiting on a condition, real Celery worker processes, agencies."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import requests
from sqlalchemy import text
from sqlalchemy.orm import Session

from app import agencies, db, polling, security
from app.api.main import create_app, server_options
from app.celery import ALL_QUEUES
from app.celery import app as celery_app
from app.config import get_settings
from app.fakes import server
from app.models import AgencyRole

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


def wait_for(
    condition: Callable[[], T | None],
    *,
    timeout: float = 30.0,
    what: str = "condition",
    interval: float = 0.05,
) -> T:
    """Poll until `condition()` is truthy and return its value; fail after `timeout` seconds."""
    try:
        return polling.poll(condition, timeout=timeout, interval=interval)  # type: ignore[return-value]
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout}s waiting for {what}") from None


class Worker:
    """A real `celery -A app worker` process on every queue, with its log kept in a file."""

    def __init__(
        self,
        log_path: Path,
        *,
        concurrency: int = 2,
        queues: str = ALL_QUEUES,
        env: dict[str, str] | None = None,
    ) -> None:
        self.log_path = log_path
        self.concurrency = concurrency
        self.queues = queues
        self.env = env  # None: this process's environment
        self.name = f"test-{uuid.uuid4().hex[:8]}@callsync"
        self.start()

    def start(self) -> None:
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "app",
            "worker",
            "-Q",
            self.queues,
            "-c",
            str(self.concurrency),
            "--loglevel",
            "INFO",
            "--without-mingle",
            "--without-gossip",
            "-n",
            self.name,
        ]
        self._starts = self.log_path.read_text().count(" ready.") if self.log_path.exists() else 0
        self._log = self.log_path.open("a")
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(self._ready, timeout=60, what="the worker to be ready")

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"worker exited early:\n{self.log_path.read_text()}")
        return self.log_path.read_text().count(" ready.") > self._starts

    def wait_idle(self) -> None:
        """Until the worker runs, holds and waits on no task, so no test sees another's."""

        def idle() -> bool:
            # A connection of its own: a pooled one may have died with a restarted Redis.
            with celery_app.connection_for_write() as connection:
                inspect = celery_app.control.inspect(
                    destination=[self.name], timeout=2.0, limit=1, connection=connection
                )
                views = (inspect.active(), inspect.reserved(), inspect.scheduled())
            return all(view is not None and view.get(self.name) == [] for view in views)

        wait_for(idle, timeout=60, what="the worker to be idle")

    def kill(self) -> None:
        """SIGKILL the whole process group, as a crashed machine would."""
        if self.process.poll() is None:
            subprocess.run(["pkill", "-KILL", "-g", str(self.process.pid)], check=False)
            self.process.wait(timeout=10)
        self._log.close()

    @contextmanager
    def supervised(self) -> Iterator[list[int]]:
        """Start the worker again whenever it exits, as `restart: unless-stopped` does; yields
        the exit codes seen."""
        exits: list[int] = []
        done = threading.Event()

        def watch() -> None:
            while not done.wait(0.2):
                code = self.process.poll()
                if code is not None:
                    exits.append(code)
                    self._log.close()
                    self.start()

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            yield exits
        finally:
            done.set()
            watcher.join()

    def freeze(self) -> None:
        """SIGSTOP the whole process group: its open transactions stay open, as they are."""
        subprocess.run(["pkill", "-STOP", "-g", str(self.process.pid)], check=False)

    def thaw(self) -> None:
        subprocess.run(["pkill", "-CONT", "-g", str(self.process.pid)], check=False)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()


# Among the oldest pending events, where drains take from, those a transaction holds locked.
EVENTS_HELD = text("""
    WITH oldest AS (
        SELECT id FROM webhook_queue WHERE status = 'pending' ORDER BY created_at LIMIT 2000
    )
    SELECT (SELECT count(*) FROM oldest) - (
        SELECT count(*) FROM (
            SELECT 1 FROM webhook_queue WHERE id IN (SELECT id FROM oldest)
            FOR KEY SHARE SKIP LOCKED
        ) AS free
    )
""")


def events_held() -> int:
    """Webhook events a drain has taken in a transaction that is still open."""
    with db.session_scope() as session:  # commits at once: the probe's own locks go
        return int(session.scalar(EVENTS_HELD) or 0)


def make_agency(
    session: Session,
    *,
    api_key: str | None = "uv-test-key",
    name: str = "Acme Voice",
    webhook_secret: str | None = None,
) -> uuid.UUID:
    agency_id = agencies.add_agency(
        session, name=name, ultravox_api_key=api_key, webhook_secret=webhook_secret
    )
    session.commit()
    return agency_id


def make_member(session: Session, agency_id: uuid.UUID, role: str = "admin") -> str:
    """A user with `role` in the agency; returns a bearer token for them."""
    user_id = uuid.uuid4()
    agencies.add_member(session, agency_id=agency_id, user_id=user_id, role=AgencyRole(role))
    session.commit()
    return security.create_token(user_id)


class ApiClient:
    """`requests` against the API served by uvicorn on loopback, paths relative to its url."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self._session = requests.Session()

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self._session.get(self.base_url + path, timeout=30, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self._session.post(self.base_url + path, timeout=30, **kwargs)

    def options(self, path: str, **kwargs: Any) -> requests.Response:
        return self._session.options(self.base_url + path, timeout=30, **kwargs)


@contextmanager
def api_with(**settings: Any) -> Iterator[ApiClient]:
    """Another API server, with some settings changed."""
    changed = get_settings().model_copy(update=settings)
    with server.serve(create_app(changed), **server_options(changed)) as running:
        yield ApiClient(running.url)


@contextmanager
def beat(directory: Path, env: dict[str, str] | None = None) -> Iterator[Path]:
    """A real `celery beat` with its schedule file in `directory`; yields its log's path."""
    log_path = directory / "beat.log"
    schedule = str(directory / "beat-schedule")
    command = [sys.executable, "-m", "celery", "-A", "app", "beat", "-l", "INFO", "-s", schedule]
    with log_path.open("w") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield log_path
        finally:
            process.terminate()
            process.wait(timeout=20)
