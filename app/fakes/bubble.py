"""A fake Bubble.io Data API (api-facts §4) under `/api/1.1/obj/<type>`: get, search (equals
constraints), create, modify, replace, delete and bulk create, with the Bearer admin token,
errors in Bubble's shape and a 429 throttle.

`fail_nth(n, status=...)` makes the n-th request from now fail, for compensation tests;
`requests` records every request (time, method, path) for rate checks.
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
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from app.fakes import server

BULK_MAX_LINES = 1000


def _error(status: int, kind: str, message: str) -> Response:
    return JSONResponse(
        {"statusCode": status, "body": {"status": kind, "message": message}}, status_code=status
    )


class FakeBubble:
    def __init__(self, token: str) -> None:
        self.token = token
        self._lock = threading.Lock()
        self.objects: dict[str, dict[str, dict[str, Any]]] = {}
        self.requests: list[tuple[float, str, str]] = []
        self._fail_at: dict[int, int] = {}
        self._delay_at: dict[int, float] = {}
        self._throttle = 0
        self._ids = itertools.count(1)
        self.app = _build_app(self)

    @contextmanager
    def serve(self, *, port: int = 0) -> Iterator[server.RunningServer]:
        with server.serve(self.app, port=port) as running:
            yield running

    def fail_nth(self, n: int, *, status: int = 500) -> None:
        """The n-th request from now (1 is the next one) fails with `status`."""
        with self._lock:
            self._fail_at[len(self.requests) + n] = status

    def delay_nth(self, n: int, seconds: float) -> None:
        """The n-th request from now waits `seconds`, then is carried out and answered."""
        with self._lock:
            self._delay_at[len(self.requests) + n] = seconds

    def throttle(self, times: int = 1) -> None:
        """The next `times` requests are answered 429."""
        with self._lock:
            self._throttle += times

    def all(self, type_name: str) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(record) for record in self.objects.get(type_name, {}).values()]

    def reset(self) -> None:
        with self._lock:
            self.objects.clear()
            self.requests.clear()
            self._fail_at.clear()
            self._delay_at.clear()
            self._throttle = 0

    async def _enter(self, request: Request) -> Response | None:
        """Record the request; answer it with an error if one is due."""
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        with self._lock:
            self.requests.append((time.time(), request.method, request.url.path))
            number = len(self.requests)
            failing = self._fail_at.pop(number, None)
            delay = self._delay_at.pop(number, 0.0)
            throttled = self._throttle > 0
            self._throttle -= throttled
        if delay:
            await request.body()  # received in full: the work happens even if the caller leaves
            await asyncio.sleep(delay)
        if not hmac.compare_digest(token.encode(), self.token.encode()):
            return _error(401, "UNAUTHORIZED", "Invalid or missing API token")
        if throttled:
            return _error(429, "TOO_MANY_REQUESTS", "Rate limit exceeded")
        if failing:
            kind = "ERROR" if failing >= 500 else "INVALID_DATA"
            return _error(failing, kind, f"Injected failure of request {number}")
        return None

    def _create(self, type_name: str, fields: dict[str, Any]) -> str:
        with self._lock:
            record_id = f"{int(time.time() * 1000)}x{next(self._ids):018d}"
            now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            self.objects.setdefault(type_name, {})[record_id] = {
                **fields, "_id": record_id, "Created Date": now, "Modified Date": now,
            }  # fmt: skip
            return record_id


def _missing(type_name: str, record_id: str) -> Response:
    return _error(404, "MISSING_DATA", f"Missing object of type {type_name}: object with id "
                  f"{record_id} does not exist")  # fmt: skip


def _matches(record: dict[str, Any], constraints: list[dict[str, Any]]) -> bool:
    return all(record.get(c["key"]) == c.get("value") for c in constraints
               if c.get("constraint_type") == "equals")  # fmt: skip


def _build_app(fake: FakeBubble) -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    prefix = "/api/1.1/obj"

    @app.post(prefix + "/{type_name}/bulk")
    async def bulk(type_name: str, request: Request) -> Response:
        if (answer := await fake._enter(request)) is not None:
            return answer
        lines = [line for line in (await request.body()).decode().splitlines() if line.strip()]
        if len(lines) > BULK_MAX_LINES:
            return _error(400, "ERROR", f"at most {BULK_MAX_LINES} lines per bulk request")
        out = []
        for line in lines:
            try:
                fields = json.loads(line)
                out.append({"status": "success", "id": fake._create(type_name, dict(fields))})
            except (ValueError, TypeError) as error:
                out.append({"status": "error", "message": f"invalid JSON line: {error}"})
        return PlainTextResponse("\n".join(json.dumps(o) for o in out))

    @app.post(prefix + "/{type_name}")
    async def create(type_name: str, request: Request) -> Response:
        if (answer := await fake._enter(request)) is not None:
            return answer
        try:
            fields = await request.json()
        except ValueError:
            return _error(400, "ERROR", "body is not JSON")
        if not isinstance(fields, dict):
            return _error(400, "ERROR", "body must be a JSON object")
        return JSONResponse({"status": "success", "id": fake._create(type_name, fields)}, 201)

    @app.get(prefix + "/{type_name}")
    async def search(type_name: str, request: Request) -> Response:
        if (answer := await fake._enter(request)) is not None:
            return answer
        constraints = json.loads(request.query_params.get("constraints") or "[]")
        found = [r for r in fake.all(type_name) if _matches(r, constraints)]
        cursor = int(request.query_params.get("cursor", 0))
        limit = min(100, int(request.query_params.get("limit", 100)))
        page = found[cursor : cursor + limit]
        return JSONResponse({"response": {"cursor": cursor, "results": page, "count": len(page),
                                          "remaining": max(0, len(found) - cursor - len(page))}})  # fmt: skip

    @app.get(prefix + "/{type_name}/{record_id}")
    async def get(type_name: str, record_id: str, request: Request) -> Response:
        if (answer := await fake._enter(request)) is not None:
            return answer
        record = fake.objects.get(type_name, {}).get(record_id)
        return (
            _missing(type_name, record_id) if record is None else JSONResponse({"response": record})
        )

    @app.api_route(prefix + "/{type_name}/{record_id}", methods=["PATCH", "PUT"])
    async def change(type_name: str, record_id: str, request: Request) -> Response:
        if (answer := await fake._enter(request)) is not None:
            return answer
        fields = await request.json()
        with fake._lock:
            record = fake.objects.get(type_name, {}).get(record_id)
            if record is None:
                return _missing(type_name, record_id)
            kept = {k: record[k] for k in ("_id", "Created Date")}
            base = record if request.method == "PATCH" else kept  # PUT clears what it omits
            fake.objects[type_name][record_id] = {**base, **fields, **kept}
        return Response(status_code=204)

    @app.delete(prefix + "/{type_name}/{record_id}")
    async def delete(type_name: str, record_id: str, request: Request) -> Response:
        if (answer := await fake._enter(request)) is not None:
            return answer
        with fake._lock:
            if fake.objects.get(type_name, {}).pop(record_id, None) is None:
                return _missing(type_name, record_id)
        return Response(status_code=204)

    return app


def run(port: int, *, token: str) -> None:
    """Serve the fake on 127.0.0.1:`port` until interrupted."""
    server.run_announced(FakeBubble(token).app, port, "Bubble", path="/api/1.1")
