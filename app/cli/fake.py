"""`callsync fake`: the fake providers on loopback, for the demo and tests."""

from __future__ import annotations

from typing import Annotated

import typer

from app.config import fail

group = typer.Typer(
    help="Fake providers on loopback, for the demo and tests.", no_args_is_help=True
)


@group.command("ultravox")
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


@group.command("salesforce")
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


@group.command("bubble")
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


@group.command("llm")
def fake_llm(
    port: Annotated[int, typer.Option(min=0, max=65535)],
    api_key: Annotated[str, typer.Option(help="The Bearer token it accepts.")] = "llm-demo-key",
) -> None:
    """Serve a fake OpenAI-compatible chat completions API on loopback (LLM_BASE_URL)."""
    from app.fakes import llm

    llm.run(port, api_key=api_key)


@group.command("elevenlabs")
def fake_elevenlabs(
    port: Annotated[int, typer.Option(min=0, max=65535)],
    api_key: Annotated[str, typer.Option(help="The xi-api-key it accepts.")] = "xi-demo-key",
    concurrency: Annotated[int, typer.Option(min=1, help="Requests it serves at once.")] = 10,
    no_limits: Annotated[bool, typer.Option(help="Serve any number at once.")] = False,
) -> None:
    """Serve a fake ElevenLabs Conversational AI API on loopback (ELEVENLABS_API_BASE_URL)."""
    from app.fakes import elevenlabs

    elevenlabs.run(port, api_key=api_key, concurrency=None if no_limits else concurrency)
