"""`callsync db`: the database schema."""

from __future__ import annotations

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
