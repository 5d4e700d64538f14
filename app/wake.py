"""Waking a periodic task from SQL: `pg_notify('callsync_wake', '<seed name>')`.

The old pg_cron jobs call SQL functions (`invoke_bubble_sync_processor()`, ...). Here those
functions notify this channel, and beat, which listens on it, sends the named periodic task at
once. A notification nobody hears is lost, which is harmless: beat's own schedule runs the
same claim a minute later at most, and a claim twice over takes nothing twice.
"""

from __future__ import annotations

import logging
import select
import threading
from collections.abc import Callable, Collection
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

log = logging.getLogger(__name__)

CHANNEL = "callsync_wake"
POLL_SECONDS = 5.0
RECONNECT_SECONDS = 5.0


class WakeListener:
    """A thread that LISTENs on CHANNEL and calls `send(name)` for each known job name."""

    def __init__(
        self, database_url: str, names: Collection[str], send: Callable[[str], None]
    ) -> None:
        # A connection of its own, outside any pool: it stays in LISTEN for as long as beat runs.
        self._engine = create_engine(database_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        self._names = frozenset(names)
        self._send = send
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="callsync-wake", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=POLL_SECONDS + 1)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._listen()
            except Exception as error:  # SQLAlchemy's or psycopg2's own (from poll())
                log.warning("wake listener lost the database (%s); listening again", error)
                self._stop.wait(RECONNECT_SECONDS)

    def _listen(self) -> None:
        with self._engine.connect() as connection:
            connection.exec_driver_sql(f"LISTEN {CHANNEL}")
            raw: Any = connection.connection.driver_connection  # psycopg2's, for its notifies
            log.info("listening for %s notifications", CHANNEL)
            while not self._stop.is_set():
                if select.select([raw], [], [], POLL_SECONDS)[0]:
                    raw.poll()
                    names = {notify.payload for notify in raw.notifies}
                    raw.notifies.clear()
                    for name in sorted(names):
                        self._wake(name)

    def _wake(self, name: str) -> None:
        if name not in self._names:
            log.warning("%s: no periodic task named %r", CHANNEL, name)
            return
        log.info("woken by %s: sending %s", CHANNEL, name)
        try:
            self._send(name)
        except Exception as error:  # the broker: beat's own tick sends it again
            log.warning("could not send %s: %s", name, error)
