"""`callsync agency`: agencies, their secrets and their members."""

from __future__ import annotations

import uuid
from typing import Annotated

import typer

from app.cli.options import AgencyId
from app.config import load_or_exit
from app.models.base import AgencyRole

group = typer.Typer(help="Agencies and their members.", no_args_is_help=True)


@group.command("add")
def agency_add(
    name: Annotated[str, typer.Option(help="The agency's display name.")],
    ultravox_api_key: Annotated[str | None, typer.Option(help="Stored encrypted.")] = None,
    webhook_secret: Annotated[str | None, typer.Option(help="Stored encrypted.")] = None,
) -> None:
    """Create an agency and print its id (never its secrets)."""
    from app import agencies, db

    load_or_exit()
    with db.session_scope() as session:
        agency_id = agencies.add_agency(
            session, name=name, ultravox_api_key=ultravox_api_key, webhook_secret=webhook_secret
        )
    typer.echo(agency_id)


@group.command("add-member")
def agency_add_member(
    agency: AgencyId,
    user: Annotated[uuid.UUID, typer.Option(help="The user's uuid (the JWT's sub).")],
    role: Annotated[AgencyRole, typer.Option(help="owner, admin or member.")],
) -> None:
    """Give a user a role in an agency."""
    from app import agencies, db

    load_or_exit()
    with db.session_scope() as session:
        agencies.add_member(session, agency_id=agency, user_id=user, role=role)
    typer.echo(f"{user} is {role.value} of {agency}")


@group.command("rotate-webhook-secret")
def agency_rotate_webhook_secret(
    agency: AgencyId,
    secret: Annotated[str, typer.Option(help="The new secret; stored encrypted.")],
) -> None:
    """Make SECRET the agency's webhook secret; the old one stays valid until `end-rotation`."""
    from app import agencies, db

    load_or_exit()
    with db.session_scope() as session:
        agencies.rotate_webhook_secret(session, agency, secret)
    typer.echo(f"{agency}: new webhook secret stored; the previous one is still accepted")


@group.command("end-rotation")
def agency_end_rotation(agency: AgencyId) -> None:
    """Stop accepting the agency's previous webhook secret."""
    from app import agencies, db

    load_or_exit()
    with db.session_scope() as session:
        agencies.end_webhook_secret_rotation(session, agency)
    typer.echo(f"{agency}: only the current webhook secret is accepted")


@group.command("set-secrets")
def agency_set_secrets(
    agency: AgencyId,
    ultravox_api_key: Annotated[str | None, typer.Option(help="Stored encrypted.")] = None,
    webhook_secret: Annotated[str | None, typer.Option(help="Stored encrypted.")] = None,
) -> None:
    """Set an existing agency's Ultravox API key and/or webhook secret (e.g. one carried over
    from Supabase); what is not given stays as it is."""
    from app import agencies, db

    if not (ultravox_api_key or webhook_secret):
        raise typer.BadParameter("give --ultravox-api-key, --webhook-secret or both")
    load_or_exit()
    with db.session_scope() as session:
        agencies.set_secrets(
            session, agency, ultravox_api_key=ultravox_api_key, webhook_secret=webhook_secret
        )
    given = {"Ultravox API key": ultravox_api_key, "webhook secret": webhook_secret}
    typer.echo(f"{agency}: {' and '.join(name for name, value in given.items() if value)} stored")
