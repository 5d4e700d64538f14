"""`callsync demo`: every flow of callsync on this machine, watched live, then stopped.

It starts the providers (fakes unless real credentials are given), a worker, beat and the
API; creates an agency and a business; sends signed webhooks, starts a historical sync,
connects Salesforce and syncs its leads, runs a campaign over them and follows the
conversations, and queues a Bubble signup. Progress bars follow every flow until it settles;
a summary and the queues' states end it. Everything it started is stopped on the way out,
Ctrl-C included.
"""

from __future__ import annotations

from contextlib import ExitStack

from rich.console import Console

from app.demo import flows, stack, watch
from app.demo.stack import RealProviders

__all__ = ["RealProviders", "run"]

SETTLE_SECONDS = 180


def run(*, calls: int, webhook_calls: int, leads: int, real: RealProviders) -> None:
    console = Console()
    with ExitStack() as running:
        providers = stack.start_providers(running, console, real, calls=calls, leads=leads)
        api_url = stack.start_processes(running, console, providers)
        demo = flows.set_up(api_url, providers)
        console.print(
            f"[bold]agency[/bold] {demo.agency_id}, [bold]business[/bold] {demo.business_id}"
        )
        if providers.ultravox is not None:
            flows.send_webhooks(demo, providers.ultravox, webhook_calls)
        else:
            console.print(
                "real Ultravox: its own webhooks reach "
                f"/webhooks/ultravox/{demo.agency_id}; none are simulated"
            )
        job = flows.start_sync(demo, max_calls=calls)
        flows.connect_salesforce(demo, providers)
        flows.run_function(demo, "sync-salesforce-leads")
        flows.queue_signup(demo)
        params = {"agency": demo.agency_id, "business": demo.business_id, "job": job}
        live = watch.Watch(console, params)
        with live.progress:
            live.until(lambda f: f["Salesforce leads synced"].settled, timeout=SETTLE_SECONDS)
            flows.start_campaign(demo)
            # beat syncs conversations every 10 minutes; the demo asks every poll instead.
            final = live.until(
                lambda f: all(figure.settled for figure in f.values()),
                timeout=SETTLE_SECONDS,
                nudge=lambda: flows.run_function(demo, "conversation-orchestrator"),
            )
        watch.summary(console, final, flows.sync_job(demo, job))
    console.print("[bold]stopped[/bold] the worker, beat, the API and the fake providers")
