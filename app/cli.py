"""The `callsync` command line: database, agencies, tokens, the API, the fakes, syncs, the demo.

Heavy imports (the Celery app, the database) happen inside commands, so `--help` works
without any configuration.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated

import typer
from pydantic import ValidationError
from typer.exceptions import Abort, Exit, TyperException

from app.config import fail, load_or_exit
from app.models.base import AgencyRole

cli = typer.Typer(help="Background jobs for voice-AI operations teams.", no_args_is_help=True)
db_cli = typer.Typer(help="The database schema.", no_args_is_help=True)
agency_cli = typer.Typer(help="Agencies and their members.", no_args_is_help=True)
fake_cli = typer.Typer(
    help="Fake providers on loopback, for the demo and tests.", no_args_is_help=True
)
sync_cli = typer.Typer(help="Historical syncs of Ultravox calls.", no_args_is_help=True)
webhooks_cli = typer.Typer(help="The Ultravox webhook queue.", no_args_is_help=True)
cli.add_typer(db_cli, name="db")
cli.add_typer(agency_cli, name="agency")
cli.add_typer(fake_cli, name="fake")
cli.add_typer(sync_cli, name="sync")
cli.add_typer(webhooks_cli, name="webhooks")
queue_cli = typer.Typer(help="The work queues.", no_args_is_help=True)
cli.add_typer(queue_cli, name="queue")
salesforce_cli = typer.Typer(help="Salesforce lead sync.", no_args_is_help=True)
cli.add_typer(salesforce_cli, name="salesforce")
enrichment_cli = typer.Typer(help="Transcripts and analyses of ended calls.", no_args_is_help=True)
cli.add_typer(enrichment_cli, name="enrichment")

AgencyId = Annotated[uuid.UUID, typer.Option("--agency", help="The agency's id.")]
JobId = Annotated[uuid.UUID, typer.Argument(help="The sync job's id.")]


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Create the database if it is missing, then migrate it to head."""
    from app import migrations

    settings = load_or_exit()
    migrations.upgrade(settings.database_url)
    typer.echo("database is at head")


@db_cli.command("adopt")
def db_adopt(
    dry_run: Annotated[bool, typer.Option(help="Compare and print only.")] = False,
) -> None:
    """Take over a database the old Supabase system built: print how it differs from
    callsync's, add what callsync needs (dropping and changing nothing), stamp it at head."""
    from app.adopt.service import adopt

    settings = load_or_exit()
    adopt(settings.database_url, typer.echo, dry_run=dry_run)


@agency_cli.command("add")
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


@agency_cli.command("add-member")
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


@agency_cli.command("set-secrets")
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


@agency_cli.command("rotate-webhook-secret")
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


@agency_cli.command("end-rotation")
def agency_end_rotation(agency: AgencyId) -> None:
    """Stop accepting the agency's previous webhook secret."""
    from app import agencies, db

    load_or_exit()
    with db.session_scope() as session:
        agencies.end_webhook_secret_rotation(session, agency)
    typer.echo(f"{agency}: only the current webhook secret is accepted")


@cli.command("token")
def token(
    user: Annotated[uuid.UUID, typer.Option(help="The user's uuid, the token's sub.")],
    ttl: Annotated[int, typer.Option(min=1, help="Seconds until it expires.")] = 3600,
) -> None:
    """Print a JWT signed with JWT_SECRET, for local use."""
    from app import security

    load_or_exit()
    typer.echo(security.create_token(user, ttl=timedelta(seconds=ttl)))


@cli.command("api")
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


@fake_cli.command("ultravox")
def fake_ultravox(
    port: Annotated[int, typer.Option(min=0, max=65535)],
    api_key: Annotated[str, typer.Option(help="The X-API-Key it accepts.")] = "uv-demo-key",
    calls: Annotated[int, typer.Option(min=0, help="How many calls it holds.")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the generated calls.")] = 0,
    live_every: Annotated[int, typer.Option(min=0, help="Every Nth call is live; 0: none.")] = 10,
    latency: Annotated[float, typer.Option(min=0, help="Seconds before every API answer.")] = 0.0,
) -> None:
    """Serve a fake Ultravox API on loopback."""
    from app.fakes import ultravox

    ultravox.run(
        port, api_key=api_key, calls=calls, seed=seed, live_every=live_every, latency=latency
    )


@webhooks_cli.command("replay")
def webhooks_replay(
    all_: Annotated[bool, typer.Option("--all", help="Every dead event.")] = False,
    agency: Annotated[
        uuid.UUID | None, typer.Option("--agency", help="The dead events of one agency.")
    ] = None,
    event_ids: Annotated[
        list[uuid.UUID] | None, typer.Option("--id", help="A dead event's id; repeatable.")
    ] = None,
) -> None:
    """Queue dead webhook events (failed max_attempts times) again, and drain them."""
    from app import db
    from app.webhooks import queries, tasks

    if sum((all_, agency is not None, bool(event_ids))) != 1:
        raise typer.BadParameter("give exactly one of --all, --agency or --id")
    load_or_exit()
    with db.session_scope() as session:
        count = queries.replay_dead(session, agency_id=agency, event_ids=event_ids or ())
    if count:
        tasks.request_drain()
    typer.echo(f"{count} dead event(s) queued again")


@fake_cli.command("salesforce")
def fake_salesforce(
    port: Annotated[int, typer.Option(min=0, max=65535)],
    client_id: Annotated[str, typer.Option(help="The consumer key it accepts.")] = "demo-client",
    client_secret: Annotated[str, typer.Option(help="The consumer secret.")] = "demo-secret",  # noqa: S107
    refresh_token: Annotated[str, typer.Option(help="The refresh token it accepts.")] = "demo",  # noqa: S107
) -> None:
    """Serve a fake Salesforce org (OAuth and SOQL) on loopback (SALESFORCE_LOGIN_URL)."""
    from app.fakes import salesforce

    salesforce.run(port, client_id=client_id, client_secret=client_secret,
                   refresh_token=refresh_token)  # fmt: skip


@salesforce_cli.command("connect")
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


@salesforce_cli.command("set-client")
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


@fake_cli.command("bubble")
def fake_bubble(
    port: Annotated[int, typer.Option(min=0, max=65535)],
    token: Annotated[str, typer.Option(help="The admin token it accepts.")] = "bubble-demo-token",  # noqa: S107
) -> None:
    """Serve a fake Bubble Data API on loopback (BUBBLE_API_BASE_URL=http://127.0.0.1:PORT/api/1.1)."""
    from app.fakes import bubble

    bubble.run(port, token=token)


@fake_cli.command("llm")
def fake_llm(
    port: Annotated[int, typer.Option(min=0, max=65535)],
    api_key: Annotated[str, typer.Option(help="The Bearer token it accepts.")] = "llm-demo-key",
) -> None:
    """Serve a fake OpenAI-compatible chat completions API on loopback (LLM_BASE_URL)."""
    from app.fakes import llm

    llm.run(port, api_key=api_key)


@fake_cli.command("elevenlabs")
def fake_elevenlabs(
    port: Annotated[int, typer.Option(min=0, max=65535)],
    api_key: Annotated[str, typer.Option(help="The xi-api-key it accepts.")] = "xi-demo-key",
) -> None:
    """Serve a fake ElevenLabs Conversational AI API on loopback (ELEVENLABS_API_BASE_URL)."""
    from app.fakes import elevenlabs

    elevenlabs.run(port, api_key=api_key)


@enrichment_cli.command("replay")
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
    from app import db
    from app.enrichment import queries, tasks

    if sum((all_, call is not None, bool(item_ids))) != 1:
        raise typer.BadParameter("give exactly one of --all, --call or --id")
    load_or_exit()
    with db.session_scope() as session:
        count = queries.replay_dead(session, call_id=call, item_ids=item_ids or ())
    if count:
        tasks.request_drain()
    typer.echo(f"{count} dead item(s) queued again")


@sync_cli.command("start")
def sync_start(
    agency: AgencyId,
    date_to: Annotated[datetime, typer.Option(help="End of the range (inclusive).")],
    date_from: Annotated[datetime | None, typer.Option(help="Start of the range.")] = None,
    max_calls: Annotated[int, typer.Option(help="Import at most this many calls.")] = 100,
    watch: Annotated[bool, typer.Option(help="Draw progress until the job ends.")] = True,
) -> None:
    """Start a historical sync for an agency (start-historical-sync)."""
    from app.ultravox import operations
    from app.ultravox.schemas import StartSync
    from app.validation import first_error

    load_or_exit()
    try:
        request = StartSync(date_from=date_from, date_to=date_to, max_calls=max_calls)
    except ValidationError as error:
        raise typer.BadParameter(first_error(error)) from error
    job_id = operations.start(agency, request).id
    typer.echo(f"sync job {job_id} started")
    if watch:
        operations.watch(job_id)


@sync_cli.command("status")
def sync_status(
    job: JobId,
    watch: Annotated[bool, typer.Option(help="Keep drawing until the job ends.")] = False,
) -> None:
    """Show a sync job's progress (get-sync-status)."""
    from app.ultravox import operations

    load_or_exit()
    operations.watch(job, follow=watch)


@sync_cli.command("cancel")
def sync_cancel(job: JobId) -> None:
    """Cancel a sync job; a page in flight finishes first (cancel-historical-sync)."""
    from app.ultravox import operations

    load_or_exit()
    typer.echo(f"sync job {job} is {operations.cancel(job)}")


@queue_cli.command("stats")
def queue_stats() -> None:
    """Rows per queue and status, the oldest pending row's age, dead rows, jobs in flight."""
    from rich.console import Console

    from app import db
    from app.queue_stats import as_table, jobs_in_flight
    from app.queue_stats import queue_stats as read_stats

    load_or_exit()
    with db.session_scope() as session:
        stats, jobs = read_stats(session), jobs_in_flight(session)
    console = Console()
    console.print(as_table(stats))
    console.print(f"historical sync jobs in flight: {jobs}")


@cli.command("demo")
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


def main() -> None:
    """Entry point: usage errors and operational errors end with one line and status 2."""
    command = typer.main.get_command(cli)
    try:
        command.main(prog_name="callsync", standalone_mode=False)
    except Exit as done:
        raise SystemExit(done.exit_code) from None
    except Abort:
        fail("aborted")
    except TyperException as error:  # a usage error: bad option, value or command
        fail(f"error: {error.format_message()}")
    except LookupError as error:  # an unknown agency or job, or a job in the wrong state
        fail(f"error: {error.args[0]}")


if __name__ == "__main__":
    main()
