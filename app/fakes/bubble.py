"""A fake Bubble.io Data API (api-facts §4) under `/api/1.1/obj/<type>`: get, search (equals
constraints), create, modify, replace, delete and bulk create, with the Bearer admin token,
errors in Bubble's shape and a 429 throttle.

Like a real app it has data types, each with its fields: `FakeBubble(token, {"user": {"email":
"text", "age": "number"}})`. A field's type is "text", "number", "yes / no", "date", another data
type (a reference: a record's id) or "list of <one of those>". A create or modify naming a field
the type lacks, or a value of the wrong type, or the same field twice, is answered 400; a type
the app does not have (or has not enabled in the Data API) is answered 404 (§4.3). Bubble's
`body.status` keywords other than MISSING_DATA, and its exact 400 wording, are unconfirmed.

At most `rate_limit` requests a minute are served (1,000, api-facts §4.4; None: no limit);
one more is answered 429 with Retry-After. `throttle(times)` answers the next requests 429.
`fail_nth(n, status=...)` makes the n-th request from now fail, for compensation tests;
`requests` records every request (time, method, path) for rate checks.
"""

from __future__ import annotations

import asyncio
import copy
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

from app.fakes import limits, server
from app.fakes.faults import Fault, FaultQueue, kinds

BULK_MAX_LINES = 1000
RATE_LIMIT_PER_MINUTE = 1000  # "starts at 1,000 requests/minute" per app (api-facts §4.4)
BUILT_IN_FIELDS = ("_id", "Created Date", "Modified Date", "Created By", "Slug")
DataTypes = dict[str, dict[str, str]]  # data type -> field -> field type


def _error(status: int, kind: str, message: str) -> Response:
    return JSONResponse(
        {"statusCode": status, "body": {"status": kind, "message": message}}, status_code=status
    )


class Refused(Exception):
    """A request the real app would refuse; `answer` is its error response."""

    def __init__(self, answer: Response, message: str = "") -> None:
        super().__init__(message)
        self.answer = answer


def _refusal(status: int, kind: str, message: str) -> Refused:
    return Refused(_error(status, kind, message), message)


class FakeBubble:
    def __init__(
        self, token: str, types: DataTypes, *, rate_limit: int | None = RATE_LIMIT_PER_MINUTE
    ) -> None:
        self.token = token
        self.rate = limits.SlidingWindow(rate_limit, seconds=60.0)
        self._declared = copy.deepcopy(types)
        self.types = copy.deepcopy(types)
        self._lock = threading.Lock()
        self.objects: dict[str, dict[str, dict[str, Any]]] = {}
        self.requests: list[tuple[float, str, str]] = []
        self._fail_at: dict[int, int] = {}
        self._delay_at: dict[int, float] = {}
        self._faults = FaultQueue(kinds("429"))
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
        self._faults.add(Fault("429", times))

    def all(self, type_name: str) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(record) for record in self.objects.get(type_name, {}).values()]

    def declare(self, type_name: str, fields: dict[str, str]) -> None:
        """Add a data type, or fields to one, until the next reset."""
        with self._lock:
            self.types.setdefault(type_name, {}).update(fields)

    def reset(self) -> None:
        with self._lock:
            self.types = copy.deepcopy(self._declared)
            self.objects.clear()
            self.requests.clear()
            self._fail_at.clear()
            self._delay_at.clear()
        self._faults.reset()
        self.rate.reset()

    async def _enter(self, request: Request) -> Response | None:
        """Record the request; answer it with an error if one is due."""
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        with self._lock:
            self.requests.append((time.time(), request.method, request.url.path))
            number = len(self.requests)
            failing = self._fail_at.pop(number, None)
            delay = self._delay_at.pop(number, 0.0)
        throttled = self._faults.take() is not None
        if delay:
            await request.body()  # received in full: the work happens even if the caller leaves
            await asyncio.sleep(delay)
        if not hmac.compare_digest(token.encode(), self.token.encode()):
            return _error(401, "UNAUTHORIZED", "Invalid or missing API token")
        if throttled:
            return _error(429, "TOO_MANY_REQUESTS", "Rate limit exceeded")
        if (wait := limits.admit([(self.rate, "app")])) is not None:
            answer = _error(429, "TOO_MANY_REQUESTS", "Rate limit exceeded")
            answer.headers["Retry-After"] = str(wait)
            return answer
        if failing:
            kind = "ERROR" if failing >= 500 else "INVALID_DATA"
            return _error(failing, kind, f"Injected failure of request {number}")
        return None

    def check(self, type_name: str, fields: dict[str, Any]) -> None:
        """Refuse fields the type lacks and values of the wrong type, as Bubble does."""
        declared = self.types[type_name]
        for name, value in fields.items():
            if name not in declared:
                raise _refusal(400, "INVALID_DATA", f"Unrecognized field: {name}")
            if value is not None and not self._fits(declared[name], value):
                wrong = f"{json.dumps(value)} is not a valid {declared[name]}"
                raise _refusal(400, "INVALID_DATA", f"Invalid data for field {name}: {wrong}")

    def _fits(self, field_type: str, value: Any) -> bool:
        if field_type.startswith("list of "):
            return isinstance(value, list) and all(self._fits(field_type[8:], v) for v in value)
        if field_type == "number":
            return isinstance(value, int | float) and not isinstance(value, bool)
        if field_type == "yes / no":
            return isinstance(value, bool)
        if field_type == "date":
            return isinstance(value, str) and _is_date(value)
        return isinstance(value, str)  # text, or a reference to a record of another type

    def _create(self, type_name: str, fields: dict[str, Any]) -> str:
        self.check(type_name, fields)
        with self._lock:
            record_id = f"{int(time.time() * 1000)}x{next(self._ids):018d}"
            now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            self.objects.setdefault(type_name, {})[record_id] = {
                **fields,
                "_id": record_id,
                "Created Date": now,
                "Modified Date": now,
            }
            return record_id


def _is_date(value: str) -> bool:
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _no_type(type_name: str) -> Response:
    return _error(404, "NOT_FOUND", f"Type not found: {type_name}")


def _fields(raw: bytes) -> dict[str, Any]:
    """A request body's fields; a body that is no JSON object, or names a field twice, is
    refused."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        names = [name for name, _ in items]
        if twice := sorted({name for name in names if names.count(name) > 1}):
            raise _refusal(400, "INVALID_DATA", f"Duplicate field names: {twice[0]}")
        return dict(items)

    try:
        fields = json.loads(raw, object_pairs_hook=pairs)
    except ValueError:
        raise _refusal(400, "ERROR", "body is not JSON") from None
    if not isinstance(fields, dict):
        raise _refusal(400, "ERROR", "body must be a JSON object")
    return fields


def _missing(type_name: str, record_id: str) -> Response:
    return _error(
        404,
        "MISSING_DATA",
        f"Missing object of type {type_name}: object with id {record_id} does not exist",
    )


def _matches(record: dict[str, Any], constraints: list[dict[str, Any]]) -> bool:
    return all(
        record.get(c["key"]) == c.get("value")
        for c in constraints
        if c.get("constraint_type") == "equals"
    )


def _build_app(fake: FakeBubble) -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    prefix = "/api/1.1/obj"

    @app.exception_handler(Refused)
    async def refused(_request: Request, refusal: Refused) -> Response:
        return refusal.answer

    async def begin(request: Request, type_name: str) -> None:
        """Record the request; refuse it if an error is due or the type is not the app's."""
        if (answer := await fake._enter(request)) is not None:
            raise Refused(answer)
        if type_name not in fake.types:
            raise Refused(_no_type(type_name))

    @app.post(prefix + "/{type_name}/bulk")
    async def bulk(type_name: str, request: Request) -> Response:
        await begin(request, type_name)
        lines = [line for line in (await request.body()).decode().splitlines() if line.strip()]
        if len(lines) > BULK_MAX_LINES:
            return _error(400, "ERROR", f"at most {BULK_MAX_LINES} lines per bulk request")
        out = []
        for line in lines:
            try:
                out.append(
                    {"status": "success", "id": fake._create(type_name, _fields(line.encode()))}
                )
            except Refused as refusal:
                out.append(
                    {
                        "status": "error",
                        "message": str(refusal),
                    }
                )
        return PlainTextResponse("\n".join(json.dumps(o) for o in out))

    @app.post(prefix + "/{type_name}")
    async def create(type_name: str, request: Request) -> Response:
        await begin(request, type_name)
        record_id = fake._create(type_name, _fields(await request.body()))
        return JSONResponse({"status": "success", "id": record_id}, 201)

    @app.get(prefix + "/{type_name}")
    async def search(type_name: str, request: Request) -> Response:
        await begin(request, type_name)
        constraints = json.loads(request.query_params.get("constraints") or "[]")
        known = (*fake.types[type_name], *BUILT_IN_FIELDS)
        if unknown := [c.get("key") for c in constraints if c.get("key") not in known]:
            return _error(400, "INVALID_DATA", f"Unrecognized field: {unknown[0]}")
        found = [r for r in fake.all(type_name) if _matches(r, constraints)]
        cursor = int(request.query_params.get("cursor", 0))
        limit = min(100, int(request.query_params.get("limit", 100)))
        page = found[cursor : cursor + limit]
        return JSONResponse(
            {
                "response": {
                    "cursor": cursor,
                    "results": page,
                    "count": len(page),
                    "remaining": max(0, len(found) - cursor - len(page)),
                }
            }
        )

    @app.get(prefix + "/{type_name}/{record_id}")
    async def get(type_name: str, record_id: str, request: Request) -> Response:
        await begin(request, type_name)
        record = fake.objects.get(type_name, {}).get(record_id)
        return (
            _missing(type_name, record_id) if record is None else JSONResponse({"response": record})
        )

    @app.api_route(prefix + "/{type_name}/{record_id}", methods=["PATCH", "PUT"])
    async def change(type_name: str, record_id: str, request: Request) -> Response:
        await begin(request, type_name)
        fields = _fields(await request.body())
        fake.check(type_name, fields)
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
        await begin(request, type_name)
        with fake._lock:
            if fake.objects.get(type_name, {}).pop(record_id, None) is None:
                return _missing(type_name, record_id)
        return Response(status_code=204)

    return app


def run(
    port: int, *, token: str, types: DataTypes, rate_limit: int | None = RATE_LIMIT_PER_MINUTE
) -> None:
    """Serve a fake app with these data types on 127.0.0.1:`port` until interrupted."""
    fake = FakeBubble(token, types, rate_limit=rate_limit)
    server.run_announced(fake.app, port, "Bubble", path="/api/1.1")
