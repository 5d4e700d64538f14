"""A fake of ElevenLabs Conversational AI (api-facts §2): Twilio outbound calls and
conversations, with the failures a dialler must handle.

Every outbound-call request is recorded (`fake.dials`), so tests can count dials per number.
A placed call starts a conversation whose status moves one step per read:
initiated → in-progress → processing → done, its transcript growing as it goes; its metadata
has the termination reason once it ended, and the analysis (success, summary, data collection,
evaluation criteria; `set_analysis`) comes with done.
Faults for the next outbound calls, in FIFO order: "success_false", "422", "429" (detail
status too_many_concurrent_requests), "system_busy" (429 with detail status system_busy, the
platform overloaded), "500" and "slow" (`seconds` before a normal answer); a 429 fault sends
Retry-After when given `retry_after`. At most `concurrency` requests are served at once (None:
no limit); one more is answered 429 too_many_concurrent_requests, as the real API answers a
plan's concurrency exceeded. `throttled` counts the 429s by their detail status.
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.middleware.base import RequestResponseEndpoint

from app.fakes import limits, server
from app.fakes.faults import Fault, FaultQueue, kinds

FAULT_KINDS = ("success_false", "422", "429", "system_busy", "500", "slow")
# api-facts §2: general API concurrency is 10 requests at once on the Pro plan (2 on Free, 15
# on Scale); the Conversational AI's own numbers are unconfirmed.
CONCURRENCY_LIMIT = 10
STATUSES = ("initiated", "in-progress", "processing", "done")
REQUIRED = ("agent_id", "agent_phone_number_id", "to_number")
# What the called person says, turn by turn; the agent answers in between.
SCRIPT = (
    ("agent", "Hello! I'm calling from the food bank about our winter appeal."),
    ("user", "Oh hi. What is it about?"),
    ("agent", "Would you consider a gift this year?"),
    ("user", "Yes, count me in, I will pledge fifty dollars."),
)
# What the analysis of a done call collects from SCRIPT, and how its criteria came out.
DATA_COLLECTION = {"pledge_amount": 50}
EVALUATION = {"asked_for_gift": "success"}
ENDED = "end_call tool was called."  # the metadata's termination_reason once the call ended


@dataclass
class Dial:
    to_number: str
    agent_id: str
    agent_phone_number_id: str
    dynamic_variables: dict[str, Any]
    placed: bool
    conversation_id: str | None = None


@dataclass
class _Conversation:
    conversation_id: str
    agent_id: str
    to_number: str
    started: int
    reads: int = 0
    script: tuple[tuple[str, str], ...] = SCRIPT
    call_successful: str = "success"
    data_collection: dict[str, Any] = field(default_factory=lambda: dict(DATA_COLLECTION))
    evaluation: dict[str, str] = field(default_factory=lambda: dict(EVALUATION))

    @property
    def call_sid(self) -> str:
        return f"CA{self.conversation_id[-8:]:0>32}"


class FakeElevenLabs:
    def __init__(
        self,
        api_key: str,
        *,
        conversation_prefix: str = "conv_fake",
        concurrency: int | None = CONCURRENCY_LIMIT,
    ) -> None:
        self.api_key = api_key
        self.concurrency = limits.Concurrency(concurrency)
        self.conversation_prefix = conversation_prefix  # ids stay unique across fakes with another
        self._lock = threading.Lock()
        self._faults = FaultQueue(kinds(*FAULT_KINDS))
        self._dials: list[Dial] = []
        self._conversations: dict[str, _Conversation] = {}
        self._ids = itertools.count(1)
        self.available = True  # False: every request answers 503, as during an outage
        self.throttled: Counter[str] = Counter()  # 429s answered, by their detail status
        self.app = _build_app(self)

    @contextmanager
    def serve(self, *, port: int = 0) -> Iterator[server.RunningServer]:
        with server.serve(self.app, port=port) as running:
            yield running

    @property
    def dials(self) -> list[Dial]:
        with self._lock:
            return list(self._dials)

    def dials_to(self, number: str) -> int:
        """How many calls were placed to `number`."""
        return sum(1 for dial in self.dials if dial.placed and dial.to_number == number)

    def inject(self, kind: str, times: int = 1, **params: Any) -> None:
        self._faults.add(Fault(kind, times, params))

    def clear_faults(self) -> None:
        self._faults.clear()

    def set_script(self, conversation_id: str, script: tuple[tuple[str, str], ...]) -> None:
        """What the conversation's transcript will say."""
        with self._lock:
            self._conversations[conversation_id].script = script

    def set_analysis(
        self,
        conversation_id: str,
        *,
        call_successful: str = "success",
        data_collection: dict[str, Any] | None = None,
        evaluation: dict[str, str] | None = None,
    ) -> None:
        """What the conversation's analysis will say once it is done."""
        with self._lock:
            conversation = self._conversations[conversation_id]
            conversation.call_successful = call_successful
            conversation.data_collection = dict(data_collection or {})
            conversation.evaluation = dict(evaluation or {})

    def reset(self) -> None:
        self._faults.reset()
        with self._lock:
            self._dials.clear()
            self._conversations.clear()
            self._ids = itertools.count(1)
            self.available = True
            self.throttled.clear()
        self.concurrency.peak = 0

    def _take_fault(self) -> tuple[str, dict[str, Any]] | None:
        fault = self._faults.take()
        return None if fault is None else (fault.kind, fault.params)

    def _place(self, body: dict[str, Any]) -> _Conversation:
        with self._lock:
            number = next(self._ids)
            conversation = _Conversation(
                f"{self.conversation_prefix}{number:08d}",
                body["agent_id"],
                body["to_number"],
                int(time.time()),
            )
            self._conversations[conversation.conversation_id] = conversation
            return conversation

    def _record(self, body: dict[str, Any], conversation: _Conversation | None) -> None:
        data = body.get("conversation_initiation_client_data") or {}
        with self._lock:
            self._dials.append(
                Dial(
                    to_number=str(body.get("to_number")),
                    agent_id=str(body.get("agent_id")),
                    agent_phone_number_id=str(body.get("agent_phone_number_id")),
                    dynamic_variables=dict(data.get("dynamic_variables") or {}),
                    placed=conversation is not None,
                    conversation_id=conversation.conversation_id if conversation else None,
                )
            )

    def _read(self, conversation_id: str) -> dict[str, Any] | None:
        with self._lock:
            conversation = self._conversations.get(conversation_id)
            if conversation is None:
                return None
            step = min(conversation.reads, len(STATUSES) - 1)
            conversation.reads += 1
            return _details(conversation, STATUSES[step])


def _details(conversation: _Conversation, status: str) -> dict[str, Any]:
    # The transcript grows with the call: half of it while in progress, all of it after.
    shown = {"initiated": 0, "in-progress": len(conversation.script) // 2}.get(
        status, len(conversation.script)
    )
    turns = [
        {"role": role, "message": message, "time_in_call_secs": 5 * index}
        for index, (role, message) in enumerate(conversation.script[:shown])
    ]
    ended = status in ("processing", "done")
    return {
        "agent_id": conversation.agent_id,
        "conversation_id": conversation.conversation_id,
        "status": status,
        "transcript": turns,
        "metadata": _metadata(conversation, duration=5 * len(turns), ended=ended),
        "analysis": _analysis(conversation) if status == "done" else None,
        "has_audio": status == "done",
        "has_user_audio": status == "done",
        "has_response_audio": status == "done",
        "has_auxiliary_audio": False,
    }


def _metadata(conversation: _Conversation, *, duration: int, ended: bool) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "start_time_unix_secs": conversation.started,
        "call_duration_secs": duration,
        "cost": 10 * duration,
        "main_language": "en",
        "conversation_initiation_source": "twilio",
        "phone_call": {
            "type": "twilio",
            "direction": "outbound",
            "phone_number_id": "phnum_fake",
            "agent_number": "+12025550199",
            "external_number": conversation.to_number,
            "stream_sid": f"MZ{conversation.call_sid[2:]}",
            "call_sid": conversation.call_sid,
        },
    }
    if duration:
        metadata["accepted_time_unix_secs"] = conversation.started + 2
    if ended:
        metadata["termination_reason"] = ENDED
    return metadata


def _analysis(conversation: _Conversation) -> dict[str, Any]:
    said = [message for role, message in conversation.script if role == "user"] or ["nothing"]
    return {
        "call_successful": conversation.call_successful,
        "transcript_summary": f"The agent called about the appeal; the caller said: {said[-1]}",
        "call_summary_title": "Winter appeal call",
        "evaluation_criteria_results": {
            key: {"criteria_id": key, "result": result, "rationale": "From the transcript."}
            for key, result in conversation.evaluation.items()
        },
        "data_collection_results": {
            key: {"data_collection_id": key, "value": value, "rationale": "The caller said so."}
            for key, value in conversation.data_collection.items()
        },
    }


def _error(status: int, code: str, message: str) -> Response:
    return JSONResponse({"detail": {"status": code, "message": message}}, status_code=status)


def _throttled(fake: FakeElevenLabs, code: str, retry_after: Any = None) -> Response:
    """A 429 as ElevenLabs answers it, counted by its detail status."""
    with fake._lock:
        fake.throttled[code] += 1
    messages = {
        "too_many_concurrent_requests": "Too many concurrent requests",
        "system_busy": "The system is experiencing heavy traffic, please try again later",
    }
    response = _error(429, code, messages[code])
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def _build_app(fake: FakeElevenLabs) -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.middleware("http")
    async def refuse(request: Request, call_next: RequestResponseEndpoint) -> Response:
        key = request.headers.get("xi-api-key", "")
        if not hmac.compare_digest(key.encode(), fake.api_key.encode()):
            return _error(401, "invalid_api_key", "Invalid API key")
        if not fake.available:
            return _error(503, "service_unavailable", "The service is temporarily unavailable")
        if not fake.concurrency.enter():
            return _throttled(fake, "too_many_concurrent_requests")
        try:
            return await call_next(request)
        finally:
            fake.concurrency.leave()

    @app.post("/v1/convai/twilio/outbound-call")
    async def outbound_call(request: Request) -> Response:
        body = await request.json()
        missing = [name for name in REQUIRED if not body.get(name)]
        if missing:
            detail = [
                {"loc": ["body", name], "msg": "Field required", "type": "missing"}
                for name in missing
            ]
            return JSONResponse({"detail": detail}, status_code=422)
        kind, params = fake._take_fault() or ("", {})
        if kind == "slow":
            await asyncio.sleep(float(params.get("seconds", 1)))
        if kind == "422":
            fake._record(body, None)
            detail = [
                {"loc": ["body", "to_number"], "msg": "Invalid phone number", "type": "value_error"}
            ]
            return JSONResponse({"detail": detail}, status_code=422)
        if kind in ("429", "system_busy"):
            fake._record(body, None)
            code = "system_busy" if kind == "system_busy" else "too_many_concurrent_requests"
            return _throttled(fake, code, params.get("retry_after"))
        if kind == "500":
            fake._record(body, None)
            return _error(500, "internal_error", "An internal error occurred")
        if kind == "success_false":
            fake._record(body, None)
            return JSONResponse(
                {
                    "success": False,
                    "message": "Failed to initiate the call",
                    "conversation_id": None,
                    "callSid": None,
                }
            )
        conversation = fake._place(body)
        fake._record(body, conversation)
        return JSONResponse(
            {
                "success": True,
                "message": "Success",
                "conversation_id": conversation.conversation_id,
                "callSid": conversation.call_sid,
            }
        )

    @app.get("/v1/convai/conversations")
    async def list_conversations(request: Request) -> Response:
        size = min(100, int(request.query_params.get("page_size", 30)))
        start = int(request.query_params.get("cursor") or 0)
        with fake._lock:
            chosen = list(fake._conversations.values())[start : start + size + 1]
        summaries = [
            {
                "agent_id": c.agent_id,
                "conversation_id": c.conversation_id,
                "start_time_unix_secs": c.started,
                "call_duration_secs": 0,
                "message_count": 0,
                "status": STATUSES[min(c.reads, len(STATUSES) - 1)],
                "call_successful": "unknown",
                "direction": "outbound",
            }
            for c in chosen[:size]
        ]
        more = len(chosen) > size
        return JSONResponse(
            {
                "conversations": summaries,
                "has_more": more,
                "next_cursor": str(start + size) if more else None,
            }
        )

    @app.get("/v1/convai/conversations/{conversation_id}")
    async def get_conversation(conversation_id: str) -> Response:
        details = fake._read(conversation_id)
        if details is None:
            return _error(404, "conversation_not_found", "Conversation not found")
        return JSONResponse(details)

    return app


def run(port: int, *, api_key: str, concurrency: int | None = CONCURRENCY_LIMIT) -> None:
    """Serve the fake on 127.0.0.1:`port` until interrupted."""
    server.run_announced(FakeElevenLabs(api_key, concurrency=concurrency).app, port, "ElevenLabs")
