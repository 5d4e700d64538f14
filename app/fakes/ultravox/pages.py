"""Pages of calls and messages as the real API cuts them (DRF cursors), and its refusals."""

from __future__ import annotations

import base64
import binascii
import bisect
from dataclasses import dataclass
from datetime import UTC, date, datetime
from datetime import time as dtime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode

from fastapi import HTTPException, Request, Response
from fastapi.responses import JSONResponse
from starlette.datastructures import QueryParams

if TYPE_CHECKING:
    from app.fakes.ultravox.fake import FakeUltravox


DEFAULT_PAGE_SIZE = 100  # UNCONFIRMED in api-facts §1.2; configurable per fake
MAX_PAGE_SIZE = 1000  # UNCONFIRMED; larger pageSize values are clamped, as DRF does
SORTS = ("created", "-created")
DEFAULT_SORT = "-created"  # DRF CursorPagination's default ordering; the docs' example


def calls_page(fake: FakeUltravox, request: Request) -> dict[str, Any]:
    query = request.query_params
    sort = query.get("sort", DEFAULT_SORT)
    if sort not in SORTS:
        raise Rejected.invalid("sort", f"Select a valid choice. {sort} is not one of the choices.")
    since = _parse_bound(query, "fromDate", end_of_day=False)
    until = _parse_bound(query, "toDate", end_of_day=True)
    store = fake._store
    lo = 0 if since is None else bisect.bisect_left(store.keys, (since, ""))
    hi = len(store.keys) if until is None else bisect.bisect_right(store.keys, (until, "\uffff"))
    hi = max(lo, hi)
    page = _Window(store.keys, lo, hi, page_size(fake, request), descending=sort == "-created")
    first, stop = page.bounds(_decode_position(query.get("cursor")))
    results = store.calls[first:stop]
    return {
        "next": _link(request, page.next_position(first, stop)),
        "previous": _link(request, page.previous_position(first, stop)),
        "results": results[::-1] if page.descending else results,
        "total": hi - lo,
    }


class Rejected(Exception):
    """A request the real API refuses, with the response it would give."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response

    @classmethod
    def invalid(cls, param: str, message: str) -> Rejected:
        return cls(JSONResponse({param: [message]}, status_code=400))

    @classmethod
    def bad_cursor(cls) -> Rejected:
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
            return (
                (self.lo, min(self.lo + self.size, self.hi))
                if not self.descending
                else (max(self.lo, self.hi - self.size), self.hi)
            )
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
        raise Rejected.bad_cursor() from error


def offset_page(request: Request, items: list[dict[str, Any]], size: int) -> dict[str, Any]:
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
        raise Rejected.bad_cursor() from error
    if offset < 0:
        raise Rejected.bad_cursor()
    return offset


def _link(request: Request, cursor: str | None) -> str | None:
    """An absolute URL to another page: the request's own, with only `cursor` swapped."""
    return None if cursor is None else str(request.url.include_query_params(cursor=cursor))


def page_size(fake: FakeUltravox, request: Request) -> int:
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
        raise Rejected.invalid(name, "Enter a valid date/time.") from error
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def find_call(fake: FakeUltravox, call_id: str) -> dict[str, Any]:
    call = fake._store.by_id.get(call_id)
    if call is None:
        raise HTTPException(404, "No Call matches the given query.")
    return call
