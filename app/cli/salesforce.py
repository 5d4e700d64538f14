"""`callsync salesforce`: Salesforce lead sync."""

from __future__ import annotations

from typing import Annotated

import typer

from app.config import load_or_exit

group = typer.Typer(help="Salesforce lead sync.", no_args_is_help=True)


@group.command("connect")
def salesforce_connect(
    business_name: Annotated[str, typer.Option("--business", help="The business's name.")],
    instance_url: Annotated[str, typer.Option(help="The org's instance URL.")],
    refresh_token: Annotated[str, typer.Option(help="From the OAuth consent; stored encrypted.")],
) -> None:
    """Create a business and its Salesforce integration with sync on; print the integration id.
    Its first run refreshes the access token."""
    from app import db
    from app.models import Business
    from app.salesforce import queries

    load_or_exit()
    with db.session_scope() as session:
        business = Business(name=business_name)
        session.add(business)
        session.flush()
        typer.echo(
            queries.connect(
                session, business.id, instance_url=instance_url, refresh_token=refresh_token
            )
        )
