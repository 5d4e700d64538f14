"""Which worker processes are alive, so that what a dead one held is taken over in seconds.

Every worker child has a row in `workers`, keyed by its Celery node name and pid, which a
thread of its own renews every WORKER_HEARTBEAT_SECONDS. A claim records the id of the process
that made it (`holder()`, a queue row's worker_id), and the claim holds for as long as that
row exists, however long the work takes. A row not renewed for WORKER_DEAD_AFTER_SECONDS
belongs to a dead worker: app.rescue deletes it, and what it held is claimable again.

A claim made outside a worker child (the API, the CLI, an embedded test worker) has no holder
and falls back to the lease (LEASE_SECONDS), as every claim did before.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Engine, create_engine, delete, event, exists, func, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import InstrumentedAttribute

from app import db
from app.config import Settings
from app.models import WorkerProcess

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Identity:
    """One worker child: its node, the start of the node it belongs to, and its pid."""

    node: str
    boot: str
    pid: int

    @property
    def id(self) -> str:
        return f"{self.node}:{self.pid}"


_node: tuple[str, str] | None = None  # this worker's node name and start, set before forking
_heartbeat: Heartbeat | None = None  # this process's, when it is a worker child


def name_node(node: str) -> tuple[str, str]:
    """In a worker's main process, before its children fork: this start of `node`."""
    global _node
    _node = (node, uuid.uuid4().hex)
    return _node


def this_node() -> tuple[str, str] | None:
    """This worker's node name and start, in its main process and its children."""
    return _node


def holder() -> str | None:
    """The worker id that this process's claims record; None outside a worker child."""
    return _heartbeat.me.id if _heartbeat is not None else None


def alive(worker_id: InstrumentedAttribute[str | None] | ColumnElement[str]) -> ColumnElement[bool]:
    """The worker that `worker_id` names still has its row."""
    return exists().where(WorkerProcess.id == worker_id)


@dataclass(frozen=True)
class Beat:
    """What one heartbeat saw: `trusted` once this process has been beating for as long as
    death takes (it may judge others dead); `reconnected` when the database came back after
    beats that failed."""

    trusted: bool
    reconnected: bool


def start_heartbeat(settings: Settings, watch: Callable[[Beat], object]) -> None:
    """In a worker child: register it and renew its row from a thread, calling `watch` after
    each beat that reached the database."""
    global _heartbeat
    if _node is None:
        return  # not started by `celery worker`
    node, boot = _node
    _heartbeat = Heartbeat(Identity(node, boot, os.getpid()), settings, watch)
    event.listen(db.get_engine(), "do_connect", _named)
    _heartbeat.start()


def _named(_: Any, __: Any, ___: Any, parameters: dict[str, Any]) -> None:
    """Each database connection of a worker child carries its worker id as application_name,
    so that a dead worker's sessions can be ended (app.rescue)."""
    parameters["application_name"] = holder()


def stop_heartbeat() -> None:
    """A child that exits: its row goes, so whatever it still held is claimable at once."""
    if _heartbeat is not None:
        _heartbeat.stop()


def note_applying(ids: Sequence[uuid.UUID]) -> None:
    """Record, committed, the webhook events this process is about to apply: their own
    transaction leaves no trace of them if the worker dies while applying."""
    if _heartbeat is not None:
        _heartbeat.note_applying(ids)


# Plain SQL, the ids as one array literal: a batch's note built as an ORM update cost three
# times as much, and a list of 200 ids, which psycopg2 sends as ARRAY['...', ...], a third more.
NOTE = text("UPDATE workers SET applying = CAST(:ids AS uuid[]) WHERE id = :me")


class Heartbeat:
    """A daemon thread renewing one worker's row over a connection of its own."""

    def __init__(self, me: Identity, settings: Settings, watch: Callable[[Beat], object]) -> None:
        self.me = me
        self._interval = settings.worker_heartbeat_seconds
        self._trusted_after = settings.worker_dead_after_seconds
        self._watch = watch
        self._engine = self._connection_of_its_own(settings)
        # One auto-committed statement per note, not waiting for its flush to disk
        # (synchronous_commit off): it is visible to the rescue at once, and only a crash of
        # the database could lose it, which rolls the batch back too.
        self._notes = db.ping_when_idle(
            self._connection_of_its_own(
                settings, isolation_level="AUTOCOMMIT", options="-c synchronous_commit=off"
            )
        )
        self._stopped = threading.Event()
        self._beating_since: float | None = None
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def _connection_of_its_own(
        self, settings: Settings, *, options: str | None = None, **engine: Any
    ) -> Engine:
        """An engine of one connection, named for this worker (its sessions end with it);
        `options` are the server settings it connects with."""
        connect = {"application_name": self.me.id}
        if options is not None:
            connect["options"] = options
        return create_engine(
            settings.database_url,
            pool_size=1,
            max_overflow=0,
            hide_parameters=True,
            connect_args=connect,
            **engine,
        )

    def start(self) -> None:
        self.beat()
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        try:
            with self._engine.begin() as connection:
                connection.execute(delete(WorkerProcess).where(WorkerProcess.id == self.me.id))
        except Exception as error:
            log.warning("worker %s could not remove its row: %s", self.me.id, error)

    def note_applying(self, ids: Sequence[uuid.UUID]) -> None:
        with self._notes.connect() as connection:
            literal = "{" + ",".join(map(str, ids)) + "}"
            connection.execute(NOTE, {"ids": literal, "me": self.me.id})

    def _run(self) -> None:
        failed = False
        while not self._stopped.wait(self._interval):
            if not self.beat():
                failed = True
                continue
            self._watch_safely(Beat(trusted=self._trusted(), reconnected=failed))
            failed = False

    def beat(self) -> bool:
        """Renew (or write again) this worker's row; False when the database is unreachable."""
        row = {"id": self.me.id, "node": self.me.node, "boot": self.me.boot, "pid": self.me.pid}
        stmt = insert(WorkerProcess).values(row)
        stmt = stmt.on_conflict_do_update(
            index_elements=[WorkerProcess.id], set_={"heartbeat_at": func.now()}
        )
        try:
            with self._engine.begin() as connection:
                connection.execute(stmt)
        except Exception as error:
            if self._beating_since is not None:
                log.warning("worker %s: heartbeat failed: %s", self.me.id, error)
            self._beating_since = None
            self._engine.dispose()
            return False
        if self._beating_since is None:
            self._beating_since = time.monotonic()
        return True

    def _trusted(self) -> bool:
        """After an outage every worker's row is old: only a worker that has been beating
        again for as long as death takes may judge the others, so that none is taken for
        dead merely because it has not reconnected yet."""
        since = self._beating_since
        return since is not None and time.monotonic() - since >= self._trusted_after

    def _watch_safely(self, beat: Beat) -> None:
        try:
            self._watch(beat)
        except Exception as error:
            log.warning("worker %s: rescue failed: %s", self.me.id, error)
