"""What the `replay` commands of the queues share: one selection, then the dead rows it picks
queued again and their queue woken."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

import typer

from app.config import load_or_exit

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


def one_of(**options: object) -> None:
    """Exactly one of the replay's selections."""
    if sum(bool(value) for value in options.values()) != 1:
        names = [f"--{name.rstrip('_')}" for name in options]
        raise typer.BadParameter(f"give exactly one of {', '.join(names[:-1])} or {names[-1]}")


def replay(
    what: str, replay_dead: Callable[[Session], Counter[str]], wake: Callable[[], object]
) -> None:
    """Queue the dead rows `replay_dead` picks again, then wake what works them off; says how
    many, and what they had died of."""
    from app import db

    load_or_exit()
    with db.session_scope() as session:
        reasons = replay_dead(session)
    count = reasons.total()
    if count:
        wake()
    typer.echo(f"{count} dead {what}(s) queued again")
    for reason, times in reasons.most_common():
        typer.echo(f"  {times}: {reason}")
