"""`callsync db`: the database schema."""

from __future__ import annotations

from typing import Annotated

import typer

from app.config import load_or_exit

group = typer.Typer(help="The database schema.", no_args_is_help=True)


@group.command("upgrade")
def db_upgrade() -> None:
    """Create the database if it is missing, then migrate it to head."""
    from app import migrations

    settings = load_or_exit()
    migrations.upgrade(settings.database_url)
    typer.echo("database is at head")


@group.command("adopt")
def db_adopt(
    dry_run: Annotated[bool, typer.Option(help="Compare and print only.")] = False,
) -> None:
    """Take over a database the old Supabase system built: print how it differs from
    callsync's, add what callsync needs (dropping and changing nothing), stamp it at head."""
    from app.adopt.service import adopt

    settings = load_or_exit()
    adopt(settings.database_url, typer.echo, dry_run=dry_run)
