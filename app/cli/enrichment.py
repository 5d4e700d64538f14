"""`callsync enrichment`: transcripts and analyses of ended calls."""

from __future__ import annotations

import uuid
from typing import Annotated

import typer

from app.config import load_or_exit

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
    from app import db, drains
    from app.enrichment import queries

    if sum((all_, call is not None, bool(item_ids))) != 1:
        raise typer.BadParameter("give exactly one of --all, --call or --id")
    load_or_exit()
    with db.session_scope() as session:
        count = queries.replay_dead(session, call_id=call, item_ids=item_ids or ())
    if count:
        drains.ENRICHMENT.request()
    typer.echo(f"{count} dead item(s) queued again")
