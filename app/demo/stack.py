"""What the demo starts, and stops on the way out (Ctrl-C included): the providers it talks to,
then a worker, beat and the API.

Ultravox and Salesforce are the real ones when their credentials are given; they are only read
from. ElevenLabs and Bubble are always fakes here: the demo's leads must never be dialled, and
its signup must not land in a live Bubble app.
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import requests
from rich.console import Console

from app import processes
from app.celery import ALL_QUEUES
from app.fakes import server
from app.fakes.bubble import FakeBubble
from app.fakes.elevenlabs import FakeElevenLabs
from app.fakes.salesforce import FakeSalesforce
from app.fakes.ultravox import FakeUltravox, generate_calls

LOG_DIR = processes.ROOT / "var" / "demo"


@dataclass(frozen=True)
class RealProviders:
    """Credentials of real providers; a provider left empty is faked."""

    ultravox_api_key: str | None = None
    salesforce_instance_url: str | None = None
    salesforce_refresh_token: str | None = None


# The fake Bubble app's data types: those of the signup the demo queues (flows.SIGNUP).
BUBBLE_TYPES = {
    "user": {"email": "text", "name": "text"},
    "account": {"owner": "user", "plan": "text"},
}


@dataclass(frozen=True)
class Providers:
    ultravox_api_key: str
    ultravox: FakeUltravox | None  # None: the real Ultravox
    salesforce_instance_url: str
    salesforce_refresh_token: str
    salesforce: FakeSalesforce | None  # None: the real org
    elevenlabs: FakeElevenLabs
    bubble: FakeBubble
    env: dict[str, str]  # what the worker, beat and API read to reach them


def start_providers(
    stack: ExitStack, console: Console, real: RealProviders, *, calls: int, leads: int
) -> Providers:
    env: dict[str, str] = {}

    def serve(name: str, fake: FakeUltravox | FakeSalesforce | FakeElevenLabs | FakeBubble) -> str:
        url = stack.enter_context(fake.serve()).url
        console.print(f"[bold]fake {name}[/bold] at {url}")
        return url

    ultravox, ultravox_key = None, real.ultravox_api_key
    if ultravox_key is None:
        ultravox, ultravox_key = _fake_ultravox(calls)
        env["ULTRAVOX_API_BASE_URL"] = serve("Ultravox", ultravox)
    salesforce = None
    instance_url, refresh_token = real.salesforce_instance_url, real.salesforce_refresh_token
    if not (instance_url and refresh_token):
        salesforce = _fake_salesforce(leads)
        instance_url, refresh_token = serve("Salesforce", salesforce), salesforce.refresh_token
        env.update(
            SALESFORCE_LOGIN_URL=instance_url,
            SALESFORCE_CLIENT_ID=salesforce.client_id,
            SALESFORCE_CLIENT_SECRET=salesforce.client_secret,
        )
    # A prefix of its own: the demo's database keeps the conversations of earlier runs.
    elevenlabs = FakeElevenLabs(
        secrets.token_urlsafe(16), conversation_prefix=f"conv_demo{secrets.token_hex(4)}_"
    )
    env.update(
        ELEVENLABS_API_BASE_URL=serve("ElevenLabs", elevenlabs),
        ELEVENLABS_API_KEY=elevenlabs.api_key,
    )
    bubble = FakeBubble(secrets.token_urlsafe(16), BUBBLE_TYPES)
    env.update(
        BUBBLE_API_BASE_URL=serve("Bubble", bubble) + "/api/1.1", BUBBLE_API_TOKEN=bubble.token
    )
    return Providers(
        ultravox_key, ultravox, instance_url, refresh_token, salesforce, elevenlabs, bubble, env
    )


def _fake_ultravox(calls: int) -> tuple[FakeUltravox, str]:
    """An account holding `calls` calls of the last month, and its API key."""
    key = secrets.token_urlsafe(16)
    return FakeUltravox(
        key, generate_calls(calls, start=datetime.now(UTC) - timedelta(days=30))
    ), key


def _fake_salesforce(leads: int) -> FakeSalesforce:
    """An org holding `leads` contacts with US phone numbers."""
    org = FakeSalesforce("demo-client", secrets.token_urlsafe(16), secrets.token_urlsafe(16))
    for n in range(1, leads + 1):
        org.add(
            "Contact",
            FirstName="Donor",
            LastName=f"No. {n}",
            Phone=f"(202) 555-{n % 10000:04d}",
            Email=f"donor{n}@example.org",
        )
    return org


def start_processes(stack: ExitStack, console: Console, providers: Providers) -> str:
    """A worker on every queue, beat and the API; returns the API's URL."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    # The children read their settings from the environment; only the providers' URLs differ.
    env = {**os.environ, **providers.env}  # noqa: TID251
    api_port = server.free_port()
    api_url = f"http://127.0.0.1:{api_port}"
    for name, command, ready in _processes(api_port, api_url):
        process = stack.enter_context(
            processes.child(name, command, log_dir=LOG_DIR, ready=ready, env=env)
        )
        console.print(f"[bold]{name}[/bold] running (pid {process.pid}, log {LOG_DIR / name}.log)")
    return api_url


def _processes(
    api_port: int, api_url: str
) -> Iterator[tuple[str, list[str], Callable[[str], bool]]]:
    celery = [sys.executable, "-m", "celery", "-A", "app"]
    yield (
        "worker",
        [*celery, "worker", "-Q", ALL_QUEUES, "-c", "2", "-l", "INFO"],
        lambda log: " ready." in log,
    )
    yield "beat", [*celery, "beat", "-l", "INFO"], lambda log: "beat: Starting" in log
    yield (
        "api",
        [
            sys.executable,
            "-m",
            "uvicorn",
            "app.api.main:create_app",
            "--factory",
            "--port",
            str(api_port),
            "--log-level",
            "warning",
        ],
        lambda _: _answers(f"{api_url}/readyz"),
    )


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.ConnectionError:
        return False
