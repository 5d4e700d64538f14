"""`callsync webhooks`: the Ultravox webhook queue."""

from __future__ import annotations

import uuid
from typing import Annotated

import typer

from app.cli import replaying

group = typer.Typer(help="The Ultravox webhook queue.", no_args_is_help=True)


@group.command("replay")
def webhooks_replay(
    all_: Annotated[bool, typer.Option("--all", help="Every dead event.")] = False,
    agency: Annotated[
        uuid.UUID | None, typer.Option("--agency", help="The dead events of one agency.")
    ] = None,
    event_ids: Annotated[
        list[uuid.UUID] | None, typer.Option("--id", help="A dead event's id; repeatable.")
    ] = None,
) -> None:
    """Queue dead webhook events (failed max_attempts times) again, and drain them."""
    from app import drains
    from app.webhooks import queries

    replaying.one_of(all_=all_, agency=agency, id=event_ids)
    replaying.replay(
        "event",
        lambda session: queries.replay_dead(session, agency_id=agency, event_ids=event_ids or ()),
        drains.WEBHOOKS.request,
    )
