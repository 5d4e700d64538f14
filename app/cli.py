"""The `callsync` command line: database, agencies, tokens, the API, the fakes, syncs, the demo.

Heavy imports (the Celery app, the database) happen inside commands, so `--help` works
without any configuration.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from typer.exceptions import Abort, Exit, TyperException

from app.config import fail, load_or_exit
from app.models.base import AgencyRole
from app.models.campaigns import CampaignStatus

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
campaign_cli = typer.Typer(help="Outbound calling campaigns.", no_args_is_help=True)
cli.add_typer(campaign_cli, name="campaign")

AgencyId = Annotated[uuid.UUID, typer.Option("--agency", help="The agency's id.")]
JobId = Annotated[uuid.UUID, typer.Argument(help="The sync job's id.")]
CampaignId = Annotated[uuid.UUID, typer.Argument(help="The campaign's id.")]
LeadsFile = Annotated[
    Path,
    typer.Option(
        "--leads", exists=True, dir_okay=False, help="A CSV file of leads (see the README)."
    ),
]


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Create the database if it is missing, then migrate it to head."""
    from app import migrations

    settings = load_or_exit()
    migrations.upgrade(settings.database_url)
    typer.echo("database is at head")


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
    other_key: Annotated[
        list[str] | None, typer.Option(help="Another key of the account; repeatable.")
    ] = None,
    rate_limit: Annotated[int, typer.Option(min=1, help="Requests/s per key.")] = 200,
    account_rate_limit: Annotated[
        int, typer.Option(min=1, help="Requests/s of all the keys together.")
    ] = 500,
    no_limits: Annotated[bool, typer.Option(help="Answer every request: no rate limits.")] = False,
) -> None:
    """Serve a fake Ultravox API on loopback, limiting requests as the real one does."""
    from app.fakes import ultravox

    ultravox.run(
        port,
        api_key=api_key,
        calls=calls,
        other_keys=other_key or (),
        seed=seed,
        live_every=live_every,
        latency=latency,
        rate_limit=None if no_limits else rate_limit,
        account_rate_limit=None if no_limits else account_rate_limit,
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
    from app import db, drains
    from app.webhooks import queries

    if sum((all_, agency is not None, bool(event_ids))) != 1:
        raise typer.BadParameter("give exactly one of --all, --agency or --id")
    load_or_exit()
    with db.session_scope() as session:
        count = queries.replay_dead(session, agency_id=agency, event_ids=event_ids or ())
    if count:
        drains.WEBHOOKS.request()
    typer.echo(f"{count} dead event(s) queued again")


@fake_cli.command("salesforce")
def fake_salesforce(
    port: Annotated[int, typer.Option(min=0, max=65535)],
    client_id: Annotated[str, typer.Option(help="The consumer key it accepts.")] = "demo-client",
    client_secret: Annotated[str, typer.Option(help="The consumer secret.")] = "demo-secret",  # noqa: S107
    refresh_token: Annotated[str, typer.Option(help="The refresh token it accepts.")] = "demo",  # noqa: S107
    daily_limit: Annotated[
        int, typer.Option(min=1, help="API requests the org may make today (Sforce-Limit-Info).")
    ] = 100_000,
) -> None:
    """Serve a fake Salesforce org (OAuth and SOQL) on loopback (SALESFORCE_LOGIN_URL)."""
    from app.fakes import salesforce

    salesforce.run(
        port,
        client_id=client_id,
        client_secret=client_secret,
        refresh_token=refresh_token,
        daily_limit=daily_limit,
    )


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


@fake_cli.command("bubble")
def fake_bubble(
    port: Annotated[int, typer.Option(min=0, max=65535)],
    types: Annotated[
        str,
        typer.Option(
            help="The app's data types and their fields, as JSON or a JSON file's path: "
            '{"user": {"email": "text", "age": "number"}}.'
        ),
    ],
    token: Annotated[str, typer.Option(help="The admin token it accepts.")] = "bubble-demo-token",  # noqa: S107
    rate_limit: Annotated[int, typer.Option(min=1, help="Requests per minute it serves.")] = 1000,
    no_limits: Annotated[bool, typer.Option(help="Answer every request: no rate limit.")] = False,
) -> None:
    """Serve a fake Bubble Data API on loopback (BUBBLE_API_BASE_URL=http://127.0.0.1:PORT/api/1.1)."""
    from pydantic import TypeAdapter, ValidationError

    from app.config import json_or_file
    from app.fakes import bubble

    try:
        declared = TypeAdapter(bubble.DataTypes).validate_python(json_or_file(types))
    except ValidationError as error:
        first = error.errors()[0]
        fail(f"--types: {'.'.join(str(part) for part in first['loc'])}: {first['msg']}")
    except ValueError as error:
        fail(f"--types: {error}")
    bubble.run(port, token=token, types=declared, rate_limit=None if no_limits else rate_limit)


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
    concurrency: Annotated[int, typer.Option(min=1, help="Requests it serves at once.")] = 10,
    no_limits: Annotated[bool, typer.Option(help="Serve any number at once.")] = False,
) -> None:
    """Serve a fake ElevenLabs Conversational AI API on loopback (ELEVENLABS_API_BASE_URL)."""
    from app.fakes import elevenlabs

    elevenlabs.run(port, api_key=api_key, concurrency=None if no_limits else concurrency)


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
def queue_stats(
    analyze: Annotated[
        bool, typer.Option(help="ANALYZE the queue tables first, for a fresh completed estimate.")
    ] = False,
) -> None:
    """Rows per queue and status, the oldest pending row's age, dead rows, jobs in flight."""
    from rich.console import Console

    from app import db
    from app.queue_stats import as_table, jobs_in_flight, refresh_estimates
    from app.queue_stats import queue_stats as read_stats

    load_or_exit()
    with db.session_scope() as session:
        if analyze:
            refresh_estimates(session)
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


def _window(value: str) -> tuple[time, time]:
    opens, _, closes = value.partition("-")
    try:
        return time.fromisoformat(opens), time.fromisoformat(closes)
    except ValueError:
        raise typer.BadParameter(f"--window {value!r} is not HH:MM-HH:MM") from None


@campaign_cli.command("create")
def campaign_create(
    business: Annotated[str, typer.Option(help="The business's id or name (a new name adds it).")],
    name: Annotated[str, typer.Option(help="The campaign's name.")],
    agent_id: Annotated[str, typer.Option(help="The ElevenLabs agent that calls.")],
    agent_phone_number_id: Annotated[str, typer.Option(help="Its Twilio number's ElevenLabs id.")],
    leads: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="A CSV file of leads to enrol."),
    ] = None,
    status: Annotated[CampaignStatus, typer.Option(help="active starts dialling.")] = (
        CampaignStatus.draft
    ),
    timezone: Annotated[str, typer.Option(help="The campaign's IANA timezone.")] = (
        "America/New_York"
    ),
    window: Annotated[str, typer.Option(help="Local call window, within 08:00-21:00.")] = (
        "09:00-17:00"
    ),
    daily_call_cap: Annotated[int, typer.Option(min=0, help="Dials per local day.")] = 100,
    max_attempts: Annotated[int, typer.Option(min=1, help="Attempts per lead.")] = 3,
    retry_interval_minutes: Annotated[int, typer.Option(min=0)] = 1440,
    exclude_dnc: Annotated[bool, typer.Option(help="Skip do-not-call leads.")] = True,
    start_date: Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"])] = None,
    end_date: Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"])] = None,
) -> None:
    """Create a campaign (and enrol the leads of a CSV file); print its id."""
    from app import db
    from app.campaigns import operations

    load_or_exit()
    opens, closes = _window(window)
    rows = _read_leads(leads) if leads else []
    with db.session_scope() as session:
        business_id, added = operations.find_or_add_business(session, business)
        campaign = operations.create_campaign(
            session,
            business_id=business_id,
            name=name,
            status=status,
            agent_id=agent_id,
            agent_phone_number_id=agent_phone_number_id,
            timezone=timezone,
            call_window_start=opens,
            call_window_end=closes,
            daily_call_cap=daily_call_cap,
            max_attempts=max_attempts,
            retry_interval_minutes=retry_interval_minutes,
            exclude_dnc=exclude_dnc,
            start_date=_day(start_date),
            end_date=_day(end_date),
        )
        enrolled = operations.add_leads(session, campaign.id, rows) if rows else 0
    if added:
        typer.echo(f"added business {business!r}: {business_id}", err=True)
    typer.echo(f"{enrolled} leads enrolled", err=True)
    typer.echo(campaign.id)


@campaign_cli.command("add-leads")
def campaign_add_leads(campaign: CampaignId, leads: LeadsFile) -> None:
    """Enrol the leads of a CSV file in the campaign (leads already in it keep their place)."""
    from app import db
    from app.campaigns import operations

    load_or_exit()
    rows = _read_leads(leads)
    with db.session_scope() as session:
        enrolled = operations.add_leads(session, campaign, rows)
    typer.echo(f"{enrolled} of {len(rows)} leads newly enrolled in {campaign}")


@campaign_cli.command("set-status")
def campaign_set_status(campaign: CampaignId, status: CampaignStatus) -> None:
    """Activate, pause or complete a campaign."""
    from app import db
    from app.campaigns import operations

    load_or_exit()
    with db.session_scope() as session:
        operations.set_status(session, campaign, status)
    typer.echo(f"campaign {campaign} is {status.value}")


@campaign_cli.command("show")
def campaign_show(campaign: CampaignId) -> None:
    """A campaign's settings, its leads by status, today's dials against its cap, and its
    conversations."""
    from rich.console import Console

    from app import db
    from app.campaigns import operations

    load_or_exit()
    with db.session_scope() as session:
        progress = operations.progress(session, campaign, datetime.now(UTC))
    Console().print(operations.as_table(progress))


def _read_leads(path: Path) -> list[dict[str, object]]:
    from app.campaigns import operations

    try:
        return operations.read_leads_csv(path)
    except operations.LeadsFileError as error:
        fail(f"error: {error}")


def _day(value: datetime | None) -> date | None:
    return value.date() if value else None


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
