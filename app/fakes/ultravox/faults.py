"""The fake Ultravox's faults: their kinds and checks, and the answers they give."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import Response
from fastapi.responses import JSONResponse, StreamingResponse

from app.fakes.faults import Fault

FAULT_KINDS = ("429", "5xx", "slow", "trickle", "malformed")
# A bad record spoils one Call of a good page (the one at `at`, default 0); the others, the page.
BAD_RECORDS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "missing_call_id": lambda call: {k: v for k, v in call.items() if k != "callId"},
    "call_id_not_uuid": lambda call: {**call, "callId": "call-" + call["callId"][:8]},
    "created_not_timestamp": lambda call: {**call, "created": "yesterday afternoon"},
    "record_not_object": lambda call: [call["callId"]],
    # Read by the client as a Call; it is the database that cannot cast these to timestamps.
    "created_a_number": lambda call: {**call, "created": 1767225600},
    "joined_not_timestamp": lambda call: {**call, "joined": "soon after"},
}
MALFORMED_VARIANTS = ("results_not_list", "not_json", *BAD_RECORDS)
TRICKLE_INTERVAL = 0.1  # seconds between the pieces of a trickled answer


def validated(fault: Fault) -> Fault:
    if fault.kind.isdigit() and 500 <= int(fault.kind) <= 599:
        fault.params.setdefault("status", int(fault.kind))
        fault.kind = "5xx"
    if fault.kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault kind {fault.kind!r}; expected one of {FAULT_KINDS}")
    if fault.kind == "5xx" and not 500 <= int(fault.params.setdefault("status", 500)) <= 599:
        raise ValueError("a 5xx fault needs a status between 500 and 599")
    if fault.kind in ("slow", "trickle") and float(fault.params.get("seconds", -1)) < 0:
        raise ValueError(f"a {fault.kind} fault needs seconds >= 0")
    if fault.kind == "malformed":
        variant = fault.params.setdefault("variant", MALFORMED_VARIANTS[0])
        if variant not in MALFORMED_VARIANTS:
            raise ValueError(f"unknown malformed variant {variant!r}")
        if variant in BAD_RECORDS and fault.endpoint != "calls":
            raise ValueError(f"the {variant} variant spoils a Call: it is for the calls endpoint")
        if int(fault.params.get("at", 0)) < 0:
            raise ValueError("at must be a record index, 0 or more")
    if fault.times < 1:
        raise ValueError("times must be at least 1")
    if fault.endpoint not in ("calls", "messages"):
        raise ValueError(f"unknown endpoint {fault.endpoint!r}; expected calls or messages")
    return fault


def fault_response(fault: Fault) -> Response:
    if fault.kind == "429":
        seconds = int(fault.params.get("retry_after", 1))
        return JSONResponse(
            {"detail": throttled(seconds)}, status_code=429, headers={"Retry-After": str(seconds)}
        )
    retry_after = fault.params.get("retry_after")
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    status = int(fault.params["status"])
    return JSONResponse({"detail": f"Injected HTTP {status}"}, status_code=status, headers=headers)


def trickle(body: dict[str, Any], seconds: float) -> Response:
    """The page after `seconds` of a space every TRICKLE_INTERVAL (JSON may start with
    whitespace): its headers come at once and every read gets something, so only a deadline
    on the whole answer ends it early."""

    async def dribble() -> AsyncIterator[bytes]:
        for _ in range(round(seconds / TRICKLE_INTERVAL)):
            yield b" "
            await asyncio.sleep(TRICKLE_INTERVAL)
        yield json.dumps(body).encode()

    return StreamingResponse(dribble(), media_type="application/json")


def malformed(body: dict[str, Any], variant: str, at: int) -> Response:
    if variant == "not_json":
        return Response("<html><body>Bad gateway</body></html>", media_type="application/json")
    if variant in BAD_RECORDS:
        results = list(body["results"])
        if at < len(results):
            results[at] = BAD_RECORDS[variant](results[at])
        return JSONResponse({**body, "results": results})
    return JSONResponse({**body, "results": {"unexpected": body["results"][:1]}})


def throttled(seconds: int) -> str:
    return f"Request was throttled. Expected available in {seconds} second{'s' * (seconds != 1)}."
