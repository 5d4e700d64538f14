"""Run an ASGI app with uvicorn on loopback, in a background thread or in the foreground."""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from app import polling

HOST = "127.0.0.1"


class RunningServer:
    """A uvicorn server answering on `url` from a daemon thread until `stop()`."""

    def __init__(
        self, app: Any, *, port: int = 0, startup_timeout: float = 10.0, **options: Any
    ) -> None:
        self._sock = bind(port)
        self.port: int = self._sock.getsockname()[1]
        self.url = f"http://{HOST}:{self.port}"
        self._server = uvicorn.Server(_config(app, self.port, **options))
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, name=f"fake-http-{self.port}", daemon=True
        )
        self._thread.start()
        with contextlib.suppress(TimeoutError):
            polling.poll(
                lambda: self._server.started or not self._thread.is_alive(),
                timeout=startup_timeout,
                interval=0.005,
            )
        if not self._server.started:
            self.stop()
            raise RuntimeError(f"server on {self.url} did not start") from self._error

    def stop(self, timeout: float = 5.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():
            # Open keep-alive or slow requests would otherwise hold the graceful shutdown.
            self._server.force_exit = True
            self._thread.join(timeout)
        self._sock.close()

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            self._server.run(sockets=[self._sock])
        except BaseException as error:  # uvicorn exits via SystemExit on startup failures
            self._error = error


@contextmanager
def serve(app: Any, *, port: int = 0, **options: Any) -> Iterator[RunningServer]:
    """`with serve(app) as running: requests.get(running.url + "/...")`; `options` go to
    uvicorn.Config."""
    running = RunningServer(app, port=port, **options)
    try:
        yield running
    finally:
        running.stop()


def run_forever(app: Any, sock: socket.socket) -> None:
    """Serve `app` on an already bound socket in the foreground until Ctrl-C."""
    port = sock.getsockname()[1]
    try:
        uvicorn.Server(_config(app, port)).run(sockets=[sock])
    finally:
        sock.close()


def run_announced(app: Any, port: int, name: str, *, path: str = "") -> None:
    """Bind `port`, say where `name` serves (the line a parent process waits for), serve."""
    sock = bind(port)
    sys.stdout.write(f"fake {name} serving on http://{HOST}:{sock.getsockname()[1]}{path}\n")
    sys.stdout.flush()
    run_forever(app, sock)


def free_port() -> int:
    """A loopback port nothing listens on now, for a server started later or elsewhere."""
    with bind(0) as probe:
        return int(probe.getsockname()[1])


def bind(port: int = 0) -> socket.socket:
    """A loopback socket bound to `port` (0 picks a free one) and listening, so the port is
    known up front."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
        # Listening already: a client that comes as soon as the port is announced waits in the
        # backlog for the server to start, rather than being refused.
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


def _config(app: Any, port: int, **options: Any) -> uvicorn.Config:
    defaults: dict[str, Any] = {
        "log_level": "warning",
        "lifespan": "off",
        "ws": "none",
        "timeout_graceful_shutdown": 2,
    }
    return uvicorn.Config(app, host=HOST, port=port, **(defaults | options))
