"""Whether this Celery worker is shutting down, as its pool's processes can tell too.

A warm shutdown (SIGTERM, as a deploy sends) reaches the worker's main process only; its pool
processes finish the task they run and are never told. Work that would go on taking more
(an enrichment drain topping up its batch) asks `stopping()` first. The event is made before
the pool's processes are forked, so they share it.
"""

from __future__ import annotations

import multiprocessing
from typing import Any

from celery.signals import worker_shutting_down

_STOPPING = multiprocessing.Event()


@worker_shutting_down.connect
def _on_shutting_down(**_: Any) -> None:
    _STOPPING.set()


def stopping() -> bool:
    """True once this worker (or the worker whose pool this process belongs to) is stopping."""
    return _STOPPING.is_set()
