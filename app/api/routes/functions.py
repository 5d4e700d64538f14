"""`/functions/v1/{name}`: the old pg_cron/pg_net callers run a periodic task by its seed name."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel, Field

from app.api.deps import service_caller
from app.celery import app as celery_app
from app.ultravox import tasks as ultravox_tasks

router = APIRouter(prefix="/functions/v1", tags=["functions"])


class BubbleSyncPayload(BaseModel):
    limit: int = Field(default=10, ge=1, le=100)
    batch_size: int = Field(default=5, ge=1, le=50)


class BubbleSyncCall(BaseModel):
    """The body the seed's invoke_bubble_sync_processor / _retry send through pg_net."""

    action: Literal["process_queue_data_api", "retry_failed"]
    payload: BubbleSyncPayload = BubbleSyncPayload()


@router.post("/bubble_sync", dependencies=[Depends(service_caller)])
def bubble_sync(call: BubbleSyncCall) -> dict[str, Any]:
    """The old bubble_sync function: process the queue, or retry the failed items."""
    name = (
        "bubble-sync-processor" if call.action == "process_queue_data_api" else "bubble-sync-retry"
    )
    task = _periodic(name)
    assert task is not None  # noqa: S101 (app.bubble.tasks registers both)
    result: dict[str, Any] = task(limit=call.payload.limit, batch_size=call.payload.batch_size)
    return {"action": call.action, **result}


@router.post("/process-historical-sync", dependencies=[Depends(service_caller)])
def process_historical_sync() -> dict[str, Any]:
    """Seed 000's function: claim up to 3 jobs, run a page of each, answer its body."""
    return ultravox_tasks.process_historical_sync_here()


@router.post("/{name}", dependencies=[Depends(service_caller)])
def run_function(name: str) -> dict[str, Any]:
    """Run the named periodic task here and now; its run is logged in cron_job_logs."""
    task = _periodic(name)
    if task is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no periodic function named {name!r}")
    result: dict[str, Any] = task()
    return result


def _periodic(name: str) -> Any:
    """The periodic task named after a seed function."""
    return celery_app.tasks.get(f"periodic.{name}")


# An API process imports only some task modules by itself; these routes need them all.
celery_app.loader.import_default_modules()
