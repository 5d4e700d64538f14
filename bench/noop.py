"""A task that does nothing: what one Celery message costs, as a baseline for the drains."""

from __future__ import annotations

from app.celery import Queue, app


@app.task(name="bench.noop", queue=Queue.WEBHOOKS)
def noop() -> None:
    """Nothing at all."""
