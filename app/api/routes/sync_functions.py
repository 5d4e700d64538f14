"""The old front end's Edge Functions, as `supabase.functions.invoke` calls them.

`invoke` sends a POST with a JSON body and the user's token. The bodies are the REST routes'
(app.api.routes.historical_syncs), with the job id in the body for status and cancel; an
absent job id lists the agency's jobs, as the REST collection does.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, status
from pydantic import BaseModel, ConfigDict, Field

from app.api.deps import AdminDep, CallerDep, SessionDep
from app.api.routes import historical_syncs
from app.ultravox.schemas import StartSync, SyncJobOut, SyncJobPage

router = APIRouter(prefix="/functions/v1", tags=["edge functions"])


class SyncStatusCall(BaseModel):
    """get-sync-status: one job by id, or a page of the agency's jobs."""

    model_config = ConfigDict(extra="forbid")

    job_id: uuid.UUID | None = None
    limit: int = Field(default=20, ge=1, le=100)
    offset: int = Field(default=0, ge=0)


class CancelSyncCall(BaseModel):
    model_config = ConfigDict(extra="forbid")

    job_id: uuid.UUID


@router.post("/start-historical-sync", status_code=status.HTTP_201_CREATED)
def start_historical_sync(body: StartSync, caller: AdminDep) -> SyncJobOut:
    """POST /api/historical-syncs."""
    return historical_syncs.start_historical_sync(body, caller)


@router.post("/get-sync-status")
def get_sync_status(
    session: SessionDep, caller: CallerDep, body: Annotated[SyncStatusCall | None, Body()] = None
) -> SyncJobOut | SyncJobPage:
    """GET /api/historical-syncs/{job_id}, or GET /api/historical-syncs without a job id
    (`invoke` without a body sends none)."""
    body = body or SyncStatusCall()
    if body.job_id is not None:
        return historical_syncs.get_historical_sync(body.job_id, session, caller)
    return historical_syncs.list_historical_syncs(session, caller, body.limit, body.offset)


@router.post("/cancel-historical-sync")
def cancel_historical_sync(
    body: CancelSyncCall, session: SessionDep, caller: AdminDep
) -> SyncJobOut:
    """POST /api/historical-syncs/{job_id}/cancel."""
    return historical_syncs.cancel_historical_sync(body.job_id, session, caller)
