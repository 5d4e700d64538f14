"""A fake OpenAI-compatible chat completions API for the analyzer, with injectable faults.

`POST /v1/chat/completions` with `Authorization: Bearer <key>` answers an OpenAI-shaped
completion whose message content is a JSON analysis of the transcript in the user message.
Faults, consumed in FIFO order: "timeout" (sleep `seconds` first), "429" (Retry-After
`retry_after`), "500", "malformed_json" (content that is not JSON) and "invalid" (JSON that
is not a valid analysis).
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from app.fakes import server

FAULT_KINDS = ("timeout", "429", "500", "malformed_json", "invalid")


class FakeLLM:
    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self._lock = threading.Lock()
        self._faults: list[tuple[str, dict[str, Any]]] = []
        self._ids = itertools.count(1)
        self.requests: list[dict[str, Any]] = []  # every accepted request body, in order
        self.app = _build_app(self)

    @contextmanager
    def serve(self, *, port: int = 0) -> Iterator[server.RunningServer]:
        with server.serve(self.app, port=port) as running:
            yield running

    def inject(self, kind: str, times: int = 1, **params: Any) -> None:
        """Answer the next `times` requests with fault `kind` (FAULT_KINDS)."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {FAULT_KINDS}")
        with self._lock:
            self._faults.extend([(kind, params)] * times)

    def reset(self) -> None:
        with self._lock:
            self._faults.clear()
            self.requests.clear()

    def _take(self, body: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        with self._lock:
            self.requests.append(body)
            return self._faults.pop(0) if self._faults else None


def _build_app(fake: FakeLLM) -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.post("/v1/chat/completions")
    async def complete(request: Request) -> Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if not hmac.compare_digest(token.encode(), fake.api_key.encode()):
            return _error(401, "Incorrect API key provided.", "invalid_api_key")
        try:
            body = await request.json()
            transcript = next(m["content"] for m in body["messages"] if m["role"] == "user")
            model = str(body["model"])
        except (ValueError, KeyError, TypeError, StopIteration):
            return _error(400, "Invalid request: model and a user message are required.", None)
        fault = fake._take(body)
        kind, params = fault if fault else ("", {})
        if kind == "timeout":
            await asyncio.sleep(float(params.get("seconds", 5)))
        if kind == "429":
            retry_after = str(params.get("retry_after", 1))
            return _error(429, "Rate limit reached.", "rate_limit_exceeded", retry_after)
        if kind == "500":
            return _error(500, "The server had an error while processing your request.", None)
        content = json.dumps(_analysis(transcript))
        if kind == "malformed_json":
            content = "Sure! Here is the analysis: " + content[:20]
        if kind == "invalid":
            content = json.dumps({"summary": "", "sentiment": 7, "outcome": "maybe"})
        return JSONResponse(_completion(next(fake._ids), model, content))

    return app


def _analysis(transcript: str) -> dict[str, Any]:
    """A plausible analysis, derived from the transcript alone."""
    lines = [line for line in transcript.splitlines() if line.strip()]
    caller = [line.removeprefix("caller: ") for line in lines if line.startswith("caller: ")]
    said = " ".join(caller).lower()
    return {
        "summary": f"The agent and the caller exchanged {len(lines)} messages.",
        "sentiment": 0.5 if "thank" in said else 0.0,
        "outcome": "callback_requested" if "call back" in said else "completed",
        "key_points": caller[:3],
        "topics": [],
    }


def _completion(number: int, model: str, content: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-fake{number:06d}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    }


def _error(status: int, message: str, code: str | None, retry_after: str | None = None) -> Response:
    """An error in OpenAI's shape: {"error": {"message", "type", "param", "code"}}."""
    kind = (
        "requests" if status == 429 else "invalid_request_error" if status < 500 else "server_error"
    )
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    headers = {"Retry-After": retry_after} if retry_after else None
    return JSONResponse(body, status_code=status, headers=headers)


def run(port: int, *, api_key: str) -> None:
    """Serve the fake on 127.0.0.1:`port` until interrupted."""
    server.run_announced(FakeLLM(api_key).app, port, "LLM", path="/v1")
