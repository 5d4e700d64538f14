"""A fake Salesforce org (api-facts §3): the OAuth refresh-token grant, SOQL queries of
Contacts and Leads with nextRecordsUrl pagination, expiring access tokens, the daily request
limit with its Sforce-Limit-Info header, and errors in Salesforce's shape.

The SOQL understood is what a lead sync sends: `SELECT <fields> FROM Contact|Lead
[WHERE <cond> [AND <cond>]...] [ORDER BY SystemModstamp, Id] [LIMIT n]`, with conditions on
SystemModstamp (=, >, >=, <, <=, datetime literals) and IsConverted (= true|false).
Faults for the next API requests, in FIFO order: "403" (REQUEST_LIMIT_EXCEEDED), "429", "503".
"""

from __future__ import annotations

import itertools
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from app.fakes import limits, server
from app.fakes.faults import Fault, FaultQueue, kinds

API_VERSION = "v60.0"
FAULT_KINDS = ("403", "429", "503")
DEFAULT_BATCH, MIN_BATCH, MAX_BATCH = 2000, 200, 2000
_QUERY = re.compile(
    r"^SELECT\s+(?P<fields>.+?)\s+FROM\s+(?P<object>\w+)"
    r"(?:\s+WHERE\s+(?P<where>.+?))?(?:\s+ORDER\s+BY\s+(?P<order>.+?))?"
    r"(?:\s+LIMIT\s+(?P<limit>\d+))?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_CONDITION = re.compile(r"^(?P<field>\w+)\s*(?P<op>>=|<=|=|>|<)\s*(?P<value>\S+)$")


def stamp(moment: datetime) -> str:
    """Salesforce's datetime rendering: `2013-05-20T20:49:32.000+0000`."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.")
        + f"{moment.microsecond // 1000:03d}+0000"
    )


def parse_stamp(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z")


@dataclass
class _Token:
    expires_at: float
    requests_left: int | None


@dataclass
class _Cursor:
    records: list[dict[str, Any]]
    batch: int


@dataclass
class FakeSalesforce:
    client_id: str
    client_secret: str
    refresh_token: str
    rotate_refresh_tokens: bool = False
    token_seconds: float = 7200.0
    daily_limit: int = 100_000  # the org's daily API allocation; every request counts
    records: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {"Contact": [], "Lead": []}
    )
    refreshes: int = 0
    expire_tokens_after: int | None = None  # API requests each new access token may serve
    batch_limit: int | None = None  # the server may answer smaller batches than asked for
    on_page: Callable[[int], None] | None = None  # called with each page's offset, for tests
    _tokens: dict[str, _Token] = field(default_factory=dict)
    _cursors: dict[str, _Cursor] = field(default_factory=dict)
    _faults: FaultQueue = field(default_factory=lambda: FaultQueue(kinds(*FAULT_KINDS)))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _latest: datetime = datetime(2000, 1, 1, tzinfo=UTC)

    def __post_init__(self) -> None:
        self.allocation = limits.DailyAllocation(self.daily_limit)
        self.app = _build_app(self)

    @property
    def used(self) -> int:
        """API requests made today."""
        return self.allocation.used

    @contextmanager
    def serve(self, *, port: int = 0) -> Iterator[server.RunningServer]:
        with server.serve(self.app, port=port) as running:
            yield running

    def issue_token(self) -> str:
        """A fresh access token (what an OAuth connection would have stored)."""
        token = f"00Dfake!{secrets.token_urlsafe(24)}"
        with self._lock:
            self._tokens[token] = _Token(time.time() + self.token_seconds, self.expire_tokens_after)
        return token

    def expire_all_tokens(self) -> None:
        with self._lock:
            self._tokens.clear()

    def inject(self, kind: str, times: int = 1) -> None:
        self._faults.add(Fault(kind, times))

    def add(self, sobject: str, **fields: Any) -> dict[str, Any]:
        """Create or modify a record: it gets a fresh SystemModstamp, as any save does."""
        with self._lock:
            found = next((r for r in self.records[sobject] if r["Id"] == fields.get("Id")), None)
            record = found if found is not None else {"Id": self._new_id(sobject)}
            if found is None:
                self.records[sobject].append(record)
            record.update(fields)
            record["SystemModstamp"] = stamp(self._clock())
            return dict(record)

    def _new_id(self, sobject: str) -> str:
        prefix = {"Contact": "003", "Lead": "00Q"}[sobject]
        return f"{prefix}fake{next(self._ids):011d}"

    def add_many(self, sobject: str, records: list[dict[str, Any]]) -> None:
        """Create many records at once, each saved a millisecond after the one before."""
        with self._lock:
            for fields in records:
                record = {"Id": self._new_id(sobject), **fields}
                record["SystemModstamp"] = stamp(self._clock())
                self.records[sobject].append(record)

    def _clock(self) -> datetime:
        """Now to the millisecond, but strictly after every stamp already given."""
        now = datetime.now(UTC)
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        self._latest = max(now, self._latest + timedelta(milliseconds=1))
        return self._latest


def _errors(status: int, code: str, message: str) -> Response:
    return JSONResponse([{"message": message, "errorCode": code}], status_code=status)


def _build_app(fake: FakeSalesforce) -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.post("/services/oauth2/token")
    async def token(request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        if form.get("grant_type") != "refresh_token":
            return JSONResponse(
                {
                    "error": "unsupported_grant_type",
                    "error_description": "grant type not supported",
                },
                400,
            )
        if (form.get("client_id"), form.get("client_secret")) != (
            fake.client_id,
            fake.client_secret,
        ):
            return JSONResponse(
                {"error": "invalid_client_id", "error_description": "client identifier invalid"},
                400,
            )
        if form.get("refresh_token") != fake.refresh_token:
            return JSONResponse(
                {"error": "invalid_grant", "error_description": "expired access/refresh token"}, 400
            )
        fake.refreshes += 1
        body: dict[str, Any] = {
            "access_token": fake.issue_token(),
            "instance_url": str(request.base_url).rstrip("/"),
            "id": "https://login.salesforce.com/id/00Dfake/005fake",
            "token_type": "Bearer",
            "issued_at": str(int(time.time() * 1000)),
            "signature": "ZmFrZQ==",
            "scope": "api refresh_token",
        }
        if fake.rotate_refresh_tokens:
            fake.refresh_token = body["refresh_token"] = f"5Aep{secrets.token_urlsafe(24)}"
        return JSONResponse(body)

    def refused(request: Request) -> Response | None:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        with fake._lock:
            held = fake._tokens.get(token)
            if held is None or held.expires_at < time.time() or held.requests_left == 0:
                fake._tokens.pop(token, None)
                return _errors(401, "INVALID_SESSION_ID", "Session expired or invalid")
            if held.requests_left is not None:
                held.requests_left -= 1
        taken = fake._faults.take()
        fault = None if taken is None else taken.kind
        over = not fake.allocation.use()
        if fault == "429":
            return _errors(429, "REQUEST_LIMIT_EXCEEDED", "Too many requests")
        if fault == "503":
            return _errors(503, "SERVER_UNAVAILABLE", "Server unavailable")
        if fault == "403" or over:
            return _errors(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
        return None

    def limited(response: Response) -> Response:
        allocation = fake.allocation
        response.headers["Sforce-Limit-Info"] = f"api-usage={allocation.used}/{allocation.limit}"
        return response

    @app.get("/services/data/{version}/query")
    async def query(version: str, request: Request) -> Response:
        if (answer := refused(request)) is not None:
            return limited(answer)
        try:
            records = _run(fake, request.query_params.get("q", ""))
        except ValueError as error:
            return limited(_errors(400, "MALFORMED_QUERY", str(error)))
        options = request.headers.get("Sforce-Query-Options", "")
        match = re.search(r"batchSize=(\d+)", options)
        batch = min(MAX_BATCH, max(MIN_BATCH, int(match.group(1)))) if match else DEFAULT_BATCH
        batch = min(batch, fake.batch_limit or batch)
        locator = f"01gfake{secrets.token_hex(6)}"
        with fake._lock:
            fake._cursors[locator] = _Cursor(records, batch)
        return limited(JSONResponse(_served(fake, version, locator, 0)))

    @app.get("/services/data/{version}/query/{locator}-{offset}")
    async def query_more(version: str, locator: str, offset: int, request: Request) -> Response:
        if (answer := refused(request)) is not None:
            return limited(answer)
        if locator not in fake._cursors:
            return limited(_errors(400, "INVALID_QUERY_LOCATOR", "invalid query locator"))
        return limited(JSONResponse(_served(fake, version, locator, offset)))

    return app


def _served(fake: FakeSalesforce, version: str, locator: str, offset: int) -> dict[str, Any]:
    page = _page(version, locator, fake._cursors[locator], offset)
    if fake.on_page is not None:
        fake.on_page(offset)
    return page


def _page(version: str, locator: str, cursor: _Cursor, offset: int) -> dict[str, Any]:
    """One batch of a query's result, which was fixed when the query ran."""
    records = cursor.records[offset : offset + cursor.batch]
    done = offset + cursor.batch >= len(cursor.records)
    page: dict[str, Any] = {"totalSize": len(cursor.records), "done": done, "records": records}
    if not done:
        page["nextRecordsUrl"] = f"/services/data/{version}/query/{locator}-{offset + cursor.batch}"
    return page


def _run(fake: FakeSalesforce, soql: str) -> list[dict[str, Any]]:
    """The query's records, shaped as the REST API returns them."""
    match = _QUERY.match(soql.strip())
    if match is None:
        raise ValueError(f"unexpected token in query: {soql[:80]}")
    sobject = match["object"]
    if sobject not in fake.records:
        raise ValueError(f"sObject type '{sobject}' is not supported.")
    fields = [f.strip() for f in match["fields"].split(",")]
    conditions = [
        _condition(c) for c in re.split(r"\s+AND\s+", match["where"] or "", flags=re.I) if c
    ]
    with fake._lock:
        rows = [dict(r) for r in fake.records[sobject]]
    rows = [r for r in rows if all(test(r) for test in conditions)]
    if match["order"]:
        keys = [k.split()[0] for k in match["order"].split(",")]
        rows.sort(key=lambda r: tuple(_sortable(r.get(k)) for k in keys))
    if match["limit"]:
        rows = rows[: int(match["limit"])]
    return [_shape(sobject, r, fields) for r in rows]


def _condition(text: str) -> Any:
    match = _CONDITION.match(text.strip())
    if match is None:
        raise ValueError(f"unexpected condition: {text}")
    name, op, raw = match["field"], match["op"], match["value"]
    if raw.lower() in ("true", "false"):
        value: Any = raw.lower() == "true"
    else:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))

    def test(record: dict[str, Any]) -> bool:
        have = record.get(name, False)
        if isinstance(value, datetime):
            have = parse_stamp(have)
        return bool(
            {
                "=": have == value,
                ">": have > value,
                ">=": have >= value,
                "<": have < value,
                "<=": have <= value,
            }[op]
        )

    return test


def _sortable(value: Any) -> Any:
    return "" if value is None else value


def _shape(sobject: str, record: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "attributes": {
            "type": sobject,
            "url": f"/services/data/{API_VERSION}/sobjects/{sobject}/{record['Id']}",
        }
    }
    for name in fields:
        if name == "Account.Name":
            account = record.get("AccountName")
            out["Account"] = (
                None
                if account is None
                else {
                    "attributes": {
                        "type": "Account",
                        "url": "/services/data/v60.0/sobjects/Account/001fake",
                    },
                    "Name": account,
                }
            )
        else:
            out[name] = record.get(name, False if name in ("DoNotCall", "IsConverted") else None)
    return out


def run(
    port: int, *, client_id: str, client_secret: str, refresh_token: str, daily_limit: int = 100_000
) -> None:
    """Serve the fake on 127.0.0.1:`port` until interrupted."""
    fake = FakeSalesforce(client_id, client_secret, refresh_token, daily_limit=daily_limit)
    server.run_announced(fake.app, port, "Salesforce")
