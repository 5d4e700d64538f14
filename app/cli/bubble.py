"""`callsync bubble`: the Bubble sync queue (sync_queue)."""

from __future__ import annotations

import uuid
from typing import Annotated

import typer

from app.cli import replaying

group = typer.Typer(help="The Bubble sync queue (sync_queue).", no_args_is_help=True)


@group.command("replay")
def bubble_replay(
    all_: Annotated[bool, typer.Option("--all", help="Every dead item.")] = False,
    item_ids: Annotated[
        list[uuid.UUID] | None, typer.Option("--id", help="A dead item's id; repeatable.")
    ] = None,
) -> None:
    """Queue dead sync_queue items (failed max_retries times) again, and push them."""
    from app.bubble import queries, tasks

    replaying.one_of(all_=all_, id=item_ids)
    replaying.replay(
        "item",
        lambda session: queries.replay_dead(session, item_ids=item_ids or ()),
        tasks.bubble_sync_processor.delay,
    )
