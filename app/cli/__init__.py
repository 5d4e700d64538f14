"""The `callsync` command line, a module per command group: database, agencies, tokens, the
API, the fakes, syncs, queues, campaigns, the demo.

Heavy imports (the Celery app, the database) happen inside commands, so `--help` works
without any configuration.
"""

from __future__ import annotations

import typer
from typer.exceptions import Abort, Exit, TyperException

from app import errors
from app.cli import (
    agency,
    bubble,
    campaign,
    db,
    enrichment,
    fake,
    queue,
    salesforce,
    server,
    sync,
    webhooks,
)
from app.config import fail

cli = typer.Typer(help="Background jobs for voice-AI operations teams.", no_args_is_help=True)
cli.command("token")(server.token)
cli.command("api")(server.api)
cli.command("demo")(server.demo)
for name, module in {
    "db": db,
    "agency": agency,
    "fake": fake,
    "sync": sync,
    "webhooks": webhooks,
    "queue": queue,
    "salesforce": salesforce,
    "enrichment": enrichment,
    "bubble": bubble,
    "campaign": campaign,
}.items():
    cli.add_typer(module.group, name=name)


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
    except errors.CallsyncError as error:  # an unknown agency or job, a job already ended, ...
        fail(f"error: {error}")
