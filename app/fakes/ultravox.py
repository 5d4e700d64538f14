"""A faithful fake of the Ultravox REST API (api-facts §1) with fault injection and webhooks.

Served over loopback HTTP: `with FakeUltravox("key", generate_calls(237)).serve() as running`.
Faults apply to `GET /api/calls` or, with endpoint="messages", to `GET /api/calls/{id}/messages`,
in FIFO order; `latency` delays every `/api/` answer. Control endpoints live under `/_fake/`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import bisect
import functools
import gc
import hashlib
import hmac
import itertools
import json
import random
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from typing import Any
from urllib.parse import parse_qsl, urlencode

import requests
from fastapi import APIRouter, FastAPI, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from starlette.datastructures import QueryParams
from starlette.routing import Route

from app.fakes import server

START = datetime(2026, 1, 1, tzinfo=UTC)
DEFAULT_PAGE_SIZE = 100  # UNCONFIRMED in api-facts §1.2; configurable per fake
MAX_PAGE_SIZE = 1000  # UNCONFIRMED; larger pageSize values are clamped, as DRF does
SORTS = ("created", "-created")
DEFAULT_SORT = "-created"  # DRF CursorPagination's default ordering; the docs' example
WEBHOOK_EVENTS = ("call.started", "call.joined", "call.ended", "call.billed")
FAULT_KINDS = ("429", "5xx", "slow", "malformed")
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

_END_REASONS = ("hangup", "agent_hangup", "unjoined", "timeout", "connection_error", "system_error")
_END_WEIGHTS = (45, 80, 88, 94, 98, 100)  # cumulative
_MICROSECOND = timedelta(microseconds=1)
_UUID_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))  # the version and variant bits
_UUID_V4 = (0x4000 << 64) | (0x8000 << 48)
# Every Call field in schema order; _call fills in the varying ones (copying beats a literal).
# The nested configuration objects are shared by all generated calls: copy before mutating.
_CALL_CONSTANTS: dict[str, Any] = {
    "callId": None,
    "clientVersion": None,
    "created": None,
    "joined": None,
    "ended": None,
    "endReason": None,
    "billedDuration": None,
    "billedSideInputTokens": None,
    "billedSideOutputTokens": None,
    "billingStatus": None,
    "firstSpeaker": "FIRST_SPEAKER_AGENT",
    "firstSpeakerSettings": {"agent": {}},
    "initialOutputMedium": "MESSAGE_MEDIUM_VOICE",
    "joinTimeout": "30s",
    "maxDuration": "3600s",
    "timeExceededMessage": None,
    "inactivityMessages": [],
    "languageHint": "en",
    "model": "ultravox-v0.7",
    "recordingEnabled": False,
    "systemPrompt": None,
    "temperature": 0.0,
    "voice": "Mark",
    "externalVoice": None,
    "voiceOverrides": None,
    "transcriptOptional": True,
    "vadSettings": None,
    "shortSummary": None,
    "summary": None,
    "metadata": None,
    "agentId": None,
    "agent": None,
    "experimentalSettings": {},
    "initialState": {},
    "requestContext": {},
    "dataConnectionConfig": None,
    "callbacks": {},
    "joinUrl": None,
    "medium": {"twilio": {}},
    "retentionPolicy": None,
    "sipDetails": None,
}
_TOPICS = ("a policy renewal", "a billing question", "an appointment", "a delivery", "a refund")
_CAMPAIGNS = ("spring-renewals", "win-back", "appointment-reminders")
_USER_LINES = ("Hi, who is this?", "Sure, go ahead.", "Can you call back tomorrow?", "Thanks, bye.")
_AGENT_LINES = ("Hello! I'm calling about {topic}.", "Does now work for you?", "Great, all set.")


def generate_calls(
    count: int,
    *,
    seed: int = 0,
    start: datetime = START,
    live_every: int = 10,
    spacing: timedelta = timedelta(minutes=1),
) -> list[dict[str, Any]]:
    """`count` deterministic Call objects, one per `spacing`; every `live_every`-th is live."""
    rng = random.Random(seed)
    agents = [
        {"agentId": _uuid(rng), "name": name} for name in ("Renewals", "Reminders", "Support")
    ]
    clock = _Clock()
    # Integer microseconds, rng.random() and a shared template keep 100k calls around a second.
    origin = (start - datetime(1, 1, 1, tzinfo=UTC)) // _MICROSECOND
    step = spacing // _MICROSECOND
    jitter = max(1, step // 2)  # keeps `created` strictly increasing
    rand = rng.random
    calls = []
    with _gc_paused():
        for index in range(count):
            created = origin + index * step + int(rand() * jitter)
            live = live_every > 0 and (index + 1) % live_every == 0
            agent = agents[int(rand() * len(agents))]
            calls.append(_call(rng, clock, created, dict(agent), index, live=live))
    return calls


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC: 100k fresh nested dicts would trigger repeated full passes."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _call(
    rng: random.Random,
    clock: _Clock,
    created: int,
    agent: dict[str, str],
    index: int,
    *,
    live: bool,
) -> dict[str, Any]:
    rand = rng.random
    reason = None if live else _END_REASONS[bisect.bisect(_END_WEIGHTS, rand() * 100)]
    joined = None if reason == "unjoined" else created + int(2 + rand() * 14) * 1_000_000
    millis = int(5_000 + rand() * 895_000)
    ended = (joined or created + 30_000_000) + millis * 1000
    topic = _TOPICS[int(rand() * len(_TOPICS))]
    billed = joined is not None and reason != "system_error"
    return {
        **_CALL_CONSTANTS,
        "callId": _uuid(rng),
        "created": clock.iso(created),
        "joined": None if joined is None else clock.iso(joined),
        "ended": None if live else clock.iso(ended),
        "endReason": reason,
        "billedDuration": _duration(millis) if billed and not live else None,
        "billingStatus": _billing_status(reason, live=live),
        "systemPrompt": _prompt(topic),
        "shortSummary": None if live else _short_summary(topic),
        "summary": None if live else _summary(topic, reason),
        "metadata": {
            "lead_id": f"lead-{index:06d}",
            "campaign": _CAMPAIGNS[int(rand() * len(_CAMPAIGNS))],
        },
        "agentId": agent["agentId"],
        "agent": agent,
    }


# Cached so that 100k calls share a handful of strings instead of allocating 300k.
@functools.cache
def _prompt(topic: str) -> str:
    return f"You are a friendly agent calling about {topic}."


@functools.cache
def _short_summary(topic: str) -> str:
    return f"Call about {topic}."


@functools.cache
def _summary(topic: str, reason: str | None) -> str:
    return f"The agent called about {topic}; the call ended ({reason})."


class _Clock:
    """ISO 8601 (DRF's `Z` form) of UTC instants given as microseconds since 0001-01-01."""

    def __init__(self) -> None:
        self._days: dict[int, str] = {}
        self._times = _times_of_day()

    def iso(self, micros: int) -> str:
        seconds, fraction = divmod(micros, 1_000_000)
        day, second = divmod(seconds, 86_400)
        prefix = self._days.get(day)
        if prefix is None:
            prefix = self._days[day] = date.fromordinal(day + 1).isoformat()
        return f"{prefix}{self._times[second]}{fraction:06d}Z"


@functools.cache
def _times_of_day() -> list[str]:
    """ "THH:MM:SS." for every second of a day: a lookup is much cheaper than formatting."""
    return [f"T{h:02d}:{m:02d}:{s:02d}." for h in range(24) for m in range(60) for s in range(60)]


def _billing_status(reason: str | None, *, live: bool) -> str:
    if live:
        return "BILLING_STATUS_PENDING"
    if reason == "unjoined":
        return "BILLING_STATUS_FREE_ZERO_EFFECTIVE_DURATION"
    if reason == "system_error":
        return "BILLING_STATUS_FREE_SYSTEM_ERROR"
    return "BILLING_STATUS_BILLED"


def generate_messages(call: dict[str, Any]) -> list[dict[str, Any]]:
    """The call's transcript (`Message` objects), derived from its callId alone."""
    if call.get("joined") is None:
        return []
    rng = random.Random(uuid.UUID(call["callId"]).int)
    stage_id, topic = _uuid(rng), rng.choice(_TOPICS)
    messages: list[dict[str, Any]] = []
    offset = rng.randint(500, 2000)
    for index in range(rng.randint(2, 8)):
        agent = index % 2 == 0
        lines = _AGENT_LINES if agent else _USER_LINES
        length = rng.randint(800, 6000)
        messages.append(
            {
                "role": "MESSAGE_ROLE_AGENT" if agent else "MESSAGE_ROLE_USER",
                "text": rng.choice(lines).format(topic=topic),
                "medium": "MESSAGE_MEDIUM_VOICE",
                "callStageId": stage_id,
                "callStageMessageIndex": index,
                "timespan": {"start": _duration(offset), "end": _duration(offset + length)},
            }
        )
        offset += length + rng.randint(200, 1500)
    return messages


def sign(body: bytes, timestamp: str, secret: str) -> str:
    """Ultravox's webhook signature: hex HMAC-SHA256 of the body then the timestamp, no separator."""
    return hmac.new(secret.encode(), body + timestamp.encode(), hashlib.sha256).hexdigest()


# What each webhook's call object lacks, because it had not happened yet (api-facts §1.5).
_NOT_YET = {
    "call.started": ("joined", "ended", "endReason", "billedDuration", "shortSummary", "summary"),
    "call.joined": ("ended", "endReason", "billedDuration", "shortSummary", "summary"),
    "call.ended": ("billedDuration",),
    "call.billed": (),
}


def call_at(call: dict[str, Any], event: str) -> dict[str, Any]:
    """The call object as `event`'s webhook carries it: fields of later stages still empty."""
    earlier = dict(call) | dict.fromkeys(_NOT_YET[event])
    if event in ("call.started", "call.joined"):
        earlier["billingStatus"] = "BILLING_STATUS_PENDING"
    return earlier


def send_webhook(
    url: str,
    event: str,
    call: dict[str, Any],
    secret: str | Sequence[str],
    *,
    timestamp: datetime | None = None,
    timeout: float = 10.0,
) -> requests.Response:
    """POST `{"event", "call"}` signed as Ultravox does; several secrets mimic a rotation."""
    body = json.dumps({"event": event, "call": call}).encode()
    stamp = (timestamp or datetime.now(UTC)).isoformat(timespec="microseconds")
    secrets = [secret] if isinstance(secret, str) else list(secret)
    headers = {
        "Content-Type": "application/json",
        "X-Ultravox-Webhook-Timestamp": stamp,
        "X-Ultravox-Webhook-Signature": ",".join(sign(body, stamp, s) for s in secrets),
    }
    return requests.post(url, data=body, headers=headers, timeout=timeout)


@dataclass
class Fault:
    """One injected misbehaviour, consumed by the next `times` matching list requests."""

    kind: str
    times: int = 1
    params: dict[str, Any] = field(default_factory=dict)
    on_cursor: str | None = None  # None: any request; "": only the first page (no cursor)
    endpoint: str = "calls"  # or "messages"


class FakeUltravox:
    """The calls of one Ultravox account, served by `.app` (FastAPI); safe to hit concurrently."""

    def __init__(
        self,
        api_key: str,
        calls: Iterable[dict[str, Any]] = (),
        *,
        default_page_size: int = DEFAULT_PAGE_SIZE,
        max_page_size: int = MAX_PAGE_SIZE,
        rate_limit: int | None = None,
        latency: float = 0.0,
    ) -> None:
        self.api_key = api_key
        self.latency = self._initial_latency = latency  # seconds before every /api/ answer
        self.default_page_size = default_page_size
        self.max_page_size = max_page_size
        self.rate_limit = rate_limit  # requests per second; api-facts says 200 per API key
        self._lock = threading.Lock()
        self._initial = _Store.build(calls)
        self._store = self._initial
        self._faults: list[Fault] = []
        self._random_faults: dict[str, tuple[float, tuple[Fault, ...]]] = {}
        self._rng = random.Random(0)
        self.injected: Counter[tuple[str, str]] = Counter()  # (endpoint, kind) served so far
        self._messages: dict[str, list[dict[str, Any]]] = {}
        self._seen: list[tuple[str, str, dict[str, str]]] = []
        self._window = (0, 0)  # (second, requests in it) for the rate limit
        self.app = _build_app(self)

    @property
    def calls(self) -> list[dict[str, Any]]:
        """Every call, oldest first."""
        return list(self._store.calls)

    @property
    def requests_seen(self) -> list[tuple[str, str, dict[str, str]]]:
        """(method, path, query params) of every `/api/` request so far, in order."""
        with self._lock:
            return list(self._seen)

    @contextmanager
    def serve(self, *, port: int = 0) -> Iterator[server.RunningServer]:
        with server.serve(self.app, port=port) as running:
            yield running

    def add_calls(self, calls: Iterable[dict[str, Any]]) -> None:
        """Add calls, or replace those with the same callId (a live call that has now ended)."""
        with self._lock:
            merged = {call["callId"]: call for call in self._store.calls}
            merged.update((call["callId"], call) for call in calls)
            self._store = _Store.build(merged.values())

    def set_messages(self, call_id: str, messages: list[dict[str, Any]]) -> None:
        """Serve these messages for the call instead of its generated transcript."""
        with self._lock:
            self._messages[call_id] = messages

    def messages(self, call: dict[str, Any]) -> list[dict[str, Any]]:
        """The call's transcript as `GET /api/calls/{id}/messages` serves it."""
        chosen = self._messages.get(call["callId"])
        return generate_messages(call) if chosen is None else chosen

    def inject(
        self,
        kind: str,
        times: int = 1,
        *,
        on_cursor: str | None = None,
        endpoint: str = "calls",
        **params: Any,
    ) -> Fault:
        """Queue a fault for the next `times` requests to `endpoint` ("calls" or "messages"),
        those on `on_cursor` if given.

        Kinds: "429" (retry_after: int seconds, default 1); "5xx" or "500".."599" (status,
        optional retry_after); "slow" (seconds, then a normal answer); "malformed" (variant,
        one of MALFORMED_VARIANTS; a BAD_RECORDS one spoils the record at index `at`).
        """
        fault = _validated(Fault(kind, times, params, on_cursor, endpoint))
        with self._lock:
            self._faults.append(fault)
        return fault

    def inject_at_random(
        self, rate: float, kinds: Sequence[Fault], *, endpoint: str = "calls", seed: int = 0
    ) -> None:
        """From now on, answer each request to `endpoint` with one of `kinds` (chosen at
        random, their `times` ignored) with probability `rate`, after any queued fault."""
        faults = tuple(_validated(Fault(f.kind, 1, dict(f.params), None, endpoint)) for f in kinds)
        with self._lock:
            self._random_faults[endpoint] = (rate, faults)
            self._rng = random.Random(seed)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._random_faults.clear()

    def faults(self) -> list[Fault]:
        with self._lock:
            return [
                Fault(f.kind, f.times, dict(f.params), f.on_cursor, f.endpoint)
                for f in self._faults
            ]

    def reset(self) -> None:
        """Forget faults, the request log, added calls, set messages and a changed latency."""
        with self._lock:
            self.latency = self._initial_latency
            self._faults.clear()
            self._random_faults.clear()
            self.injected.clear()
            self._messages.clear()
            self._seen.clear()
            self._window = (0, 0)
            self._store = self._initial

    def _record(self, method: str, path: str, query: dict[str, str]) -> None:
        with self._lock:
            self._seen.append((method, path, query))

    def _over_rate_limit(self) -> bool:
        if self.rate_limit is None:
            return False
        second = int(time.monotonic())
        with self._lock:
            used = self._window[1] + 1 if self._window[0] == second else 1
            self._window = (second, used)
        return used > self.rate_limit

    def _take_fault(self, endpoint: str, cursor: str) -> Fault | None:
        with self._lock:
            taken = next((f for f in self._faults
                          if f.endpoint == endpoint and f.on_cursor in (None, cursor)), None)  # fmt: skip
            if taken is not None:
                taken.times -= 1
                if taken.times <= 0:
                    self._faults.remove(taken)
            elif endpoint in self._random_faults:
                rate, kinds = self._random_faults[endpoint]
                if self._rng.random() < rate:
                    taken = self._rng.choice(kinds)
            if taken is not None:
                self.injected[endpoint, taken.kind] += 1
            return taken


@dataclass(frozen=True)
class _Store:
    """An immutable snapshot of the calls, so readers never need the lock for long."""

    calls: list[dict[str, Any]]
    keys: list[tuple[datetime, str]]
    by_id: dict[str, dict[str, Any]]

    @classmethod
    def build(cls, calls: Iterable[dict[str, Any]]) -> _Store:
        with _gc_paused():
            ordered = list(calls)
            keys = [(datetime.fromisoformat(c["created"]), c["callId"]) for c in ordered]
            if any(a > b for a, b in itertools.pairwise(keys)):
                order = sorted(range(len(keys)), key=keys.__getitem__)
                ordered, keys = [ordered[i] for i in order], [keys[i] for i in order]
            return cls(ordered, keys, {c["callId"]: c for c in ordered})


def _validated(fault: Fault) -> Fault:
    if fault.kind.isdigit() and 500 <= int(fault.kind) <= 599:
        fault.params.setdefault("status", int(fault.kind))
        fault.kind = "5xx"
    if fault.kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault kind {fault.kind!r}; expected one of {FAULT_KINDS}")
    if fault.kind == "5xx" and not 500 <= int(fault.params.setdefault("status", 500)) <= 599:
        raise ValueError("a 5xx fault needs a status between 500 and 599")
    if fault.kind == "slow" and float(fault.params.get("seconds", -1)) < 0:
        raise ValueError("a slow fault needs seconds >= 0")
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


def _build_app(fake: FakeUltravox) -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.router.routes.extend(_api_routes(fake))
    app.include_router(_control_router(fake))
    app.add_exception_handler(_Rejected, _rejected)
    return app


async def _rejected(_request: Request, error: Exception) -> Response:
    if isinstance(error, _Rejected):
        return error.response
    raise error


def _api_routes(fake: FakeUltravox) -> list[Route]:
    """The API's paths as plain Starlette routes: a busy benchmark's CPU goes to callsync,
    not to the fake's framework."""

    async def authorize(request: Request) -> None:
        fake._record(request.method, request.url.path, dict(request.query_params))
        key = request.headers.get("X-API-Key") or request.headers.get("X-Unsafe-API-Key")
        if not key:
            raise HTTPException(401, "Authentication credentials were not provided.")
        if not hmac.compare_digest(key.encode(), fake.api_key.encode()):
            raise HTTPException(401, "Incorrect authentication credentials.")
        if fake._over_rate_limit():
            raise HTTPException(429, _throttled(1), headers={"Retry-After": "1"})
        if fake.latency:
            await asyncio.sleep(fake.latency)

    async def list_calls(request: Request) -> Response:
        await authorize(request)
        return await _answer(fake, "calls", request, lambda: _calls_page(fake, request))

    async def get_call(request: Request) -> Response:
        await authorize(request)
        return JSONResponse(_find_call(fake, request.path_params["call_id"]))

    async def list_messages(request: Request) -> Response:
        await authorize(request)

        def page() -> dict[str, Any]:
            messages = fake.messages(_find_call(fake, request.path_params["call_id"]))
            if request.query_params.get("mode", "last_stage") not in ("last_stage", "in_call"):
                raise _Rejected.invalid("mode", "Select a valid choice.")
            return _offset_page(request, messages, _page_size(fake, request))

        return await _answer(fake, "messages", request, page)

    return [
        Route("/api/calls", list_calls),
        Route("/api/calls/{call_id}", get_call),
        Route("/api/calls/{call_id}/messages", list_messages),
    ]


async def _answer(
    fake: FakeUltravox, endpoint: str, request: Request, page: Callable[[], dict[str, Any]]
) -> Response:
    """The page, or the next fault queued for this endpoint instead."""
    fault = fake._take_fault(endpoint, request.query_params.get("cursor", ""))
    if fault is not None and fault.kind in ("429", "5xx"):
        return _fault_response(fault)
    if fault is not None and fault.kind == "slow":
        await asyncio.sleep(float(fault.params["seconds"]))
    body = page()
    if fault is not None and fault.kind == "malformed":
        return _malformed(body, fault.params["variant"], int(fault.params.get("at", 0)))
    return JSONResponse(body)


def _control_router(fake: FakeUltravox) -> APIRouter:
    router = APIRouter(prefix="/_fake")

    @router.post("/faults", status_code=201)
    def add_fault(spec: dict[str, Any]) -> dict[str, Any]:
        try:
            fake.inject(**spec)
        except (TypeError, ValueError) as error:
            raise HTTPException(400, str(error)) from error
        return {"faults": [asdict(f) for f in fake.faults()]}

    @router.get("/faults")
    def list_faults() -> dict[str, Any]:
        return {"faults": [asdict(f) for f in fake.faults()]}

    @router.delete("/faults", status_code=204)
    def clear_faults() -> None:
        fake.clear_faults()

    @router.get("/requests")
    def list_requests() -> dict[str, Any]:
        seen = fake.requests_seen
        return {"requests": [{"method": m, "path": p, "query": q} for m, p, q in seen]}

    @router.post("/reset", status_code=204)
    def reset() -> None:
        fake.reset()

    @router.post("/calls", status_code=201)
    def add_calls(calls: list[dict[str, Any]]) -> dict[str, Any]:
        fake.add_calls(calls)
        return {"total": len(fake.calls)}

    return router


def _calls_page(fake: FakeUltravox, request: Request) -> dict[str, Any]:
    query = request.query_params
    sort = query.get("sort", DEFAULT_SORT)
    if sort not in SORTS:
        raise _Rejected.invalid("sort", f"Select a valid choice. {sort} is not one of the choices.")
    since = _parse_bound(query, "fromDate", end_of_day=False)
    until = _parse_bound(query, "toDate", end_of_day=True)
    store = fake._store
    lo = 0 if since is None else bisect.bisect_left(store.keys, (since, ""))
    hi = len(store.keys) if until is None else bisect.bisect_right(store.keys, (until, "\uffff"))
    hi = max(lo, hi)
    page = _Window(store.keys, lo, hi, _page_size(fake, request), descending=sort == "-created")
    first, stop = page.bounds(_decode_position(query.get("cursor")))
    results = store.calls[first:stop]
    return {
        "next": _link(request, page.next_position(first, stop)),
        "previous": _link(request, page.previous_position(first, stop)),
        "results": results[::-1] if page.descending else results,
        "total": hi - lo,
    }


class _Rejected(Exception):
    """A request the real API refuses, with the response it would give."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response

    @classmethod
    def invalid(cls, param: str, message: str) -> _Rejected:
        return cls(JSONResponse({param: [message]}, status_code=400))

    @classmethod
    def bad_cursor(cls) -> _Rejected:
        return cls(JSONResponse({"detail": "Invalid cursor"}, status_code=404))


@dataclass(frozen=True)
class _Window:
    """Keyset pagination over keys[lo:hi] in either direction, the way DRF's cursors work."""

    keys: list[tuple[datetime, str]]
    lo: int
    hi: int
    size: int
    descending: bool

    def bounds(self, position: tuple[tuple[datetime, str], bool] | None) -> tuple[int, int]:
        """[first, stop) of the page; a position is (a key, whether we page backwards)."""
        if position is None:
            return (self.lo, min(self.lo + self.size, self.hi)) if not self.descending else (
                max(self.lo, self.hi - self.size), self.hi)  # fmt: skip
        key, backwards = position
        if backwards == self.descending:  # towards larger keys
            first = bisect.bisect_right(self.keys, key, self.lo, self.hi)
            return first, min(first + self.size, self.hi)
        stop = bisect.bisect_left(self.keys, key, self.lo, self.hi)
        return max(self.lo, stop - self.size), stop

    def next_position(self, first: int, stop: int) -> str | None:
        if first == stop:
            return None
        if self.descending:
            return _encode_position(self.keys[first], backwards=False) if first > self.lo else None
        return _encode_position(self.keys[stop - 1], backwards=False) if stop < self.hi else None

    def previous_position(self, first: int, stop: int) -> str | None:
        if first == stop:
            return None
        if self.descending:
            return _encode_position(self.keys[stop - 1], backwards=True) if stop < self.hi else None
        return _encode_position(self.keys[first], backwards=True) if first > self.lo else None


def _encode_position(key: tuple[datetime, str], *, backwards: bool) -> str:
    raw = urlencode({"p": f"{key[0].isoformat()}|{key[1]}", "r": int(backwards)})
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _decode_position(cursor: str | None) -> tuple[tuple[datetime, str], bool] | None:
    if not cursor:
        return None
    try:
        fields = dict(parse_qsl(base64.urlsafe_b64decode(cursor.encode()).decode()))
        created, call_id = fields["p"].split("|", 1)
        return (datetime.fromisoformat(created), call_id), fields.get("r") == "1"
    except (binascii.Error, UnicodeDecodeError, KeyError, ValueError) as error:
        raise _Rejected.bad_cursor() from error


def _offset_page(request: Request, items: list[dict[str, Any]], size: int) -> dict[str, Any]:
    offset = _decode_offset(request.query_params.get("cursor"))
    following = offset + size < len(items)
    return {
        "next": _link(request, _encode_offset(offset + size) if following else None),
        "previous": _link(request, _encode_offset(max(0, offset - size)) if offset else None),
        "results": items[offset : offset + size],
        "total": len(items),
    }


def _encode_offset(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o={offset}".encode()).decode()


def _decode_offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        offset = int(dict(parse_qsl(base64.urlsafe_b64decode(cursor.encode()).decode()))["o"])
    except (binascii.Error, UnicodeDecodeError, KeyError, ValueError) as error:
        raise _Rejected.bad_cursor() from error
    if offset < 0:
        raise _Rejected.bad_cursor()
    return offset


def _link(request: Request, cursor: str | None) -> str | None:
    """An absolute URL to another page: the request's own, with only `cursor` swapped."""
    return None if cursor is None else str(request.url.include_query_params(cursor=cursor))


def _page_size(fake: FakeUltravox, request: Request) -> int:
    """DRF's rule: a missing, non-numeric or non-positive pageSize means the default."""
    try:
        size = int(request.query_params.get("pageSize", ""))
    except ValueError:
        return fake.default_page_size
    return min(size, fake.max_page_size) if size > 0 else fake.default_page_size


def _parse_bound(query: QueryParams, name: str, *, end_of_day: bool) -> datetime | None:
    """An inclusive bound: a bare date means the start (fromDate) or end (toDate) of that day."""
    value = query.get(name)
    if value is None:
        return None
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime.combine(day, dtime.max if end_of_day else dtime.min, tzinfo=UTC)
        parsed = datetime.fromisoformat(value)
    except ValueError as error:
        raise _Rejected.invalid(name, "Enter a valid date/time.") from error
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _find_call(fake: FakeUltravox, call_id: str) -> dict[str, Any]:
    call = fake._store.by_id.get(call_id)
    if call is None:
        raise HTTPException(404, "No Call matches the given query.")
    return call


def _fault_response(fault: Fault) -> Response:
    if fault.kind == "429":
        seconds = int(fault.params.get("retry_after", 1))
        return JSONResponse(
            {"detail": _throttled(seconds)}, status_code=429, headers={"Retry-After": str(seconds)}
        )
    retry_after = fault.params.get("retry_after")
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    status = int(fault.params["status"])
    return JSONResponse({"detail": f"Injected HTTP {status}"}, status_code=status, headers=headers)


def _malformed(body: dict[str, Any], variant: str, at: int) -> Response:
    if variant == "not_json":
        return Response("<html><body>Bad gateway</body></html>", media_type="application/json")
    if variant in BAD_RECORDS:
        results = list(body["results"])
        if at < len(results):
            results[at] = BAD_RECORDS[variant](results[at])
        return JSONResponse({**body, "results": results})
    return JSONResponse({**body, "results": {"unexpected": body["results"][:1]}})


def _throttled(seconds: int) -> str:
    return f"Request was throttled. Expected available in {seconds} second{'s' * (seconds != 1)}."


def _uuid(rng: random.Random) -> str:
    """A random version-4 UUID string (the same as uuid.UUID(int=..., version=4), faster)."""
    bits = rng.getrandbits(128) & _UUID_CLEAR | _UUID_V4
    text = f"{bits:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def _duration(millis: int) -> str:
    """A protobuf JSON duration: "12s" or "12.345s"."""
    seconds, rest = divmod(millis, 1000)
    return f"{seconds}.{rest:03d}s" if rest else f"{seconds}s"


def run(
    port: int,
    *,
    api_key: str,
    calls: int,
    seed: int = 0,
    live_every: int = 10,
    latency: float = 0.0,
) -> None:
    """Serve a fake with `calls` generated calls on 127.0.0.1:`port` until interrupted."""
    calls_made = generate_calls(calls, seed=seed, live_every=live_every)
    fake = FakeUltravox(api_key, calls_made, latency=latency)
    sock = server.bind(port)
    url = f"http://{server.HOST}:{sock.getsockname()[1]}"
    sys.stdout.write(f"fake Ultravox serving {calls} calls on {url} (Ctrl-C to stop)\n")
    sys.stdout.flush()
    server.run_forever(fake.app, sock)
