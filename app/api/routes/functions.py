"""`/functions/v1/{name}`: the old pg_cron/pg_net callers run a periodic task by its seed name."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, status

from app.api.deps import service_caller
from app.celery import app as celery_app

router = APIRouter(prefix="/functions/v1", tags=["functions"])


@router.post("/{name}", dependencies=[Depends(service_caller)])
def run_function(name: str) -> dict[str, Any]:
    """Run the named periodic task here and now; its run is logged in cron_job_logs."""
    task = celery_app.tasks.get(f"periodic.{name}")
    if task is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no periodic function named {name!r}")
    result: dict[str, Any] = task()
    return result
