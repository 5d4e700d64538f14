"""Deterministic Ultravox Call and Message objects (api-facts §1), generated fast."""

from __future__ import annotations

import bisect
import functools
import gc
import random
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

START = datetime(2026, 1, 1, tzinfo=UTC)
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
    with gc_paused():
        for index in range(count):
            created = origin + index * step + int(rand() * jitter)
            live = live_every > 0 and (index + 1) % live_every == 0
            agent = agents[int(rand() * len(agents))]
            calls.append(_call(rng, clock, created, dict(agent), index, live=live))
    return calls


@contextmanager
def gc_paused() -> Iterator[None]:
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


def _uuid(rng: random.Random) -> str:
    """A random version-4 UUID string (the same as uuid.UUID(int=..., version=4), faster)."""
    bits = rng.getrandbits(128) & _UUID_CLEAR | _UUID_V4
    text = f"{bits:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def _duration(millis: int) -> str:
    """A protobuf JSON duration: "12s" or "12.345s"."""
    seconds, rest = divmod(millis, 1000)
    return f"{seconds}.{rest:03d}s" if rest else f"{seconds}s"
