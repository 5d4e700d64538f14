"""`callsync salesforce`: Salesforce lead sync."""

from __future__ import annotations

import uuid
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


@group.command("set-client")
def salesforce_set_client(
    integration: Annotated[uuid.UUID, typer.Option(help="The integration's id.")],
    client_id: Annotated[str, typer.Option(help="The org's connected app consumer key.")],
    client_secret: Annotated[str, typer.Option(help="Its consumer secret; stored encrypted.")],
) -> None:
    """Refresh this integration's tokens with its org's own connected app, not
    SALESFORCE_CLIENT_ID and SALESFORCE_CLIENT_SECRET."""
    from app import db
    from app.salesforce import queries

    load_or_exit()
    with db.session_scope() as session:
        queries.set_oauth_client(
            session, integration, client_id=client_id, client_secret=client_secret
        )
    typer.echo(f"{integration}: its own OAuth client is stored")
