"""`callsync token`, `callsync api` and `callsync demo`: the commands of the root."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated

import typer

from app.config import load_or_exit


def token(
    user: Annotated[uuid.UUID, typer.Option(help="The user's uuid, the token's sub.")],
    ttl: Annotated[int, typer.Option(min=1, help="Seconds until it expires.")] = 3600,
) -> None:
    """Print a JWT signed with JWT_SECRET, for local use."""
    from app import security

    load_or_exit()
    typer.echo(security.create_token(user, ttl=timedelta(seconds=ttl)))


def api(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="uvicorn worker processes.")] = 1,
    access_log: Annotated[bool, typer.Option(help="Log every request's line.")] = True,
) -> None:
    """Serve the HTTP API with uvicorn."""
    import uvicorn

    from app import logs
    from app.api.main import server_options

    settings = load_or_exit()
    uvicorn.run(
        "app.api.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=access_log,
        log_config=logs.dict_config(settings),
        **server_options(settings),
    )


def demo(
    calls: Annotated[int, typer.Option(min=1, help="Calls in the fake Ultravox to import.")] = 500,
    webhook_calls: Annotated[int, typer.Option(min=1, help="Calls whose webhooks are sent.")] = 20,
    leads: Annotated[int, typer.Option(min=1, help="Contacts in the fake Salesforce.")] = 25,
    ultravox_api_key: Annotated[
        str | None, typer.Option(envvar="ULTRAVOX_API_KEY", help="Import from the real Ultravox.")
    ] = None,
    salesforce_instance_url: Annotated[
        str | None, typer.Option(help="Sync the leads of this real Salesforce org.")
    ] = None,
    salesforce_refresh_token: Annotated[
        str | None, typer.Option(envvar="SALESFORCE_REFRESH_TOKEN", help="That org's token.")
    ] = None,
) -> None:
    """Run every flow against fake providers (or real Ultravox and Salesforce), with a worker,
    beat and the API; show live progress and a summary; stop everything."""
    from app.demo import RealProviders
    from app.demo import run as run_demo

    settings = load_or_exit()
    if salesforce_instance_url and not settings.salesforce_client_id:
        raise typer.BadParameter("a real Salesforce org needs SALESFORCE_CLIENT_ID and _SECRET")
    real = RealProviders(ultravox_api_key, salesforce_instance_url, salesforce_refresh_token)
    run_demo(calls=calls, webhook_calls=webhook_calls, leads=leads, real=real)
