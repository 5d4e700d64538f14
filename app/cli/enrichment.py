"""`callsync enrichment`: transcripts and analyses of ended calls."""

from __future__ import annotations

import uuid
from typing import Annotated

import typer

from app.cli import replaying

group = typer.Typer(help="Transcripts and analyses of ended calls.", no_args_is_help=True)


@group.command("replay")
def enrichment_replay(
    all_: Annotated[bool, typer.Option("--all", help="Every dead item.")] = False,
    call: Annotated[
        uuid.UUID | None, typer.Option("--call", help="The dead items of one call (calls.id).")
    ] = None,
    item_ids: Annotated[
        list[uuid.UUID] | None, typer.Option("--id", help="A dead item's id; repeatable.")
    ] = None,
) -> None:
    """Queue dead enrichment items (failed max_attempts times) again, and drain them."""
    from app import drains
    from app.enrichment import queries

    replaying.one_of(all_=all_, call=call, id=item_ids)
    replaying.replay(
        "item",
        lambda session: queries.replay_dead(session, call_id=call, item_ids=item_ids or ()),
        drains.ENRICHMENT.request,
    )
