"""Child processes for the demo and the benchmarks: started, awaited until ready, stopped."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from app import polling

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def child(
    name: str,
    command: list[str],
    *,
    log_dir: Path,
    ready: Callable[[str], bool],
    env: dict[str, str] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `command` logged to `log_dir/<name>.log` until `ready(log text)`; stop it on exit."""
    log_path = log_dir / f"{name}.log"
    with log_path.open("w") as log:
        # Our own interpreter running our own modules: no untrusted input reaches the command.
        process = subprocess.Popen(  # noqa: S603
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:

            def started() -> bool:
                if process.poll() is not None:
                    raise SystemExit(f"callsync: {name} exited early; see {log_path}")
                return ready(log_path.read_text())

            wait_until(started, f"{name} to start; see {log_path}")
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def wait_until(condition: Callable[[], bool], what: str, *, timeout: float = 60) -> None:
    """Poll `condition` until it holds; give up with one line after `timeout` seconds."""
    try:
        polling.poll(condition, timeout=timeout, interval=0.1)
    except TimeoutError:
        raise SystemExit(f"callsync: timed out waiting for {what}") from None
