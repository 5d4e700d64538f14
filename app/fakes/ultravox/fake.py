"""The fake Ultravox account: its calls, keys, faults, rate limits and request log."""

from __future__ import annotations

import hmac
import itertools
import sys
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.fakes import limits, server
from app.fakes.faults import Fault, FaultQueue
from app.fakes.ultravox.api import build_app
from app.fakes.ultravox.data import gc_paused, generate_calls, generate_messages
from app.fakes.ultravox.faults import validated
from app.fakes.ultravox.pages import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE

# "API Limits" (api-facts §1.1): 200 requests/s per API key, 500/s per account, over /api/.
KEY_RATE_LIMIT = 200
ACCOUNT_RATE_LIMIT = 500


class FakeUltravox:
    """The calls of one Ultravox account, served by `.app`; safe to hit concurrently.

    `api_key` and any `other_keys` are the account's keys; each may make `rate_limit`
    requests a second and all of them together `account_rate_limit` (None: no limit), and a
    request above either is answered 429 with Retry-After, as the real API does.
    """

    def __init__(
        self,
        api_key: str,
        calls: Iterable[dict[str, Any]] = (),
        *,
        other_keys: Sequence[str] = (),
        default_page_size: int = DEFAULT_PAGE_SIZE,
        max_page_size: int = MAX_PAGE_SIZE,
        rate_limit: int | None = KEY_RATE_LIMIT,
        account_rate_limit: int | None = ACCOUNT_RATE_LIMIT,
        latency: float = 0.0,
    ) -> None:
        self.api_key = api_key
        self.keys = (api_key, *other_keys)
        self.latency = self._initial_latency = latency  # seconds before every /api/ answer
        self.default_page_size = default_page_size
        self.max_page_size = max_page_size
        self.key_rate = limits.SlidingWindow(rate_limit)
        self.account_rate = limits.SlidingWindow(account_rate_limit)
        self.throttled: Counter[str] = Counter()  # 429s for the rate limits, by key
        self._lock = threading.Lock()
        self._initial = _Store.build(calls)
        self._store = self._initial
        self._faults = FaultQueue(validated)
        self._messages: dict[str, list[dict[str, Any]]] = {}
        self._seen: list[tuple[str, str, dict[str, str]]] = []
        self.app = build_app(self)

    @property
    def calls(self) -> list[dict[str, Any]]:
        """Every call, oldest first."""
        return list(self._store.calls)

    @property
    def requests_seen(self) -> list[tuple[str, str, dict[str, str]]]:
        """(method, path, query params) of every `/api/` request so far, in order."""
        with self._lock:
            return list(self._seen)

    @property
    def injected(self) -> Counter[tuple[str, str]]:
        """(endpoint, kind) -> how many times that fault was served."""
        return self._faults.injected

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
        optional retry_after); "slow" (seconds, then a normal answer); "trickle" (a space every
        0.1 s for `seconds`, then the answer); "malformed" (variant,
        one of MALFORMED_VARIANTS; a BAD_RECORDS one spoils the record at index `at`).
        """
        return self._faults.add(Fault(kind, times, params, on_cursor, endpoint))

    def inject_at_random(
        self, rate: float, kinds: Sequence[Fault], *, endpoint: str = "calls", seed: int = 0
    ) -> None:
        """From now on, answer each request to `endpoint` with one of `kinds` (chosen at
        random, their `times` ignored) with probability `rate`, after any queued fault."""
        self._faults.at_random(rate, kinds, endpoint=endpoint, seed=seed)

    def clear_faults(self) -> None:
        self._faults.clear()

    def faults(self) -> list[Fault]:
        return self._faults.pending()

    def reset(self) -> None:
        """Forget faults, the request log, the rate windows, added calls, set messages and a
        changed latency."""
        self._faults.reset()
        self.key_rate.reset()
        self.account_rate.reset()
        with self._lock:
            self.latency = self._initial_latency
            self.throttled.clear()
            self._messages.clear()
            self._seen.clear()
            self._store = self._initial

    def known_key(self, key: str) -> bool:
        return any(hmac.compare_digest(key.encode(), known.encode()) for known in self.keys)

    def _record(self, method: str, path: str, query: dict[str, str]) -> None:
        with self._lock:
            self._seen.append((method, path, query))

    def _over_rate_limit(self, key: str) -> int | None:
        """Seconds to wait when this request is above the key's or the account's rate."""
        wait = limits.admit([(self.key_rate, key), (self.account_rate, "account")])
        if wait is not None:
            with self._lock:
                self.throttled[key] += 1
        return wait

    def _take_fault(self, endpoint: str, cursor: str) -> Fault | None:
        return self._faults.take(endpoint, cursor)


@dataclass(frozen=True)
class _Store:
    """An immutable snapshot of the calls, so readers never need the lock for long."""

    calls: list[dict[str, Any]]
    keys: list[tuple[datetime, str]]
    by_id: dict[str, dict[str, Any]]

    @classmethod
    def build(cls, calls: Iterable[dict[str, Any]]) -> _Store:
        with gc_paused():
            ordered = list(calls)
            keys = [(datetime.fromisoformat(c["created"]), c["callId"]) for c in ordered]
            if any(a > b for a, b in itertools.pairwise(keys)):
                order = sorted(range(len(keys)), key=keys.__getitem__)
                ordered, keys = [ordered[i] for i in order], [keys[i] for i in order]
            return cls(ordered, keys, {c["callId"]: c for c in ordered})


def run(
    port: int,
    *,
    api_key: str,
    calls: int,
    other_keys: Sequence[str] = (),
    seed: int = 0,
    live_every: int = 10,
    latency: float = 0.0,
    rate_limit: int | None = KEY_RATE_LIMIT,
    account_rate_limit: int | None = ACCOUNT_RATE_LIMIT,
) -> None:
    """Serve a fake with `calls` generated calls on 127.0.0.1:`port` until interrupted."""
    calls_made = generate_calls(calls, seed=seed, live_every=live_every)
    fake = FakeUltravox(
        api_key,
        calls_made,
        other_keys=other_keys,
        latency=latency,
        rate_limit=rate_limit,
        account_rate_limit=account_rate_limit,
    )
    sock = server.bind(port)
    url = f"http://{server.HOST}:{sock.getsockname()[1]}"
    sys.stdout.write(f"fake Ultravox serving {calls} calls on {url} (Ctrl-C to stop)\n")
    sys.stdout.flush()
    server.run_forever(fake.app, sock)
