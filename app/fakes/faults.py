"""Fault injection shared by the fakes: queued misbehaviours taken by the requests they match.

A fake owns a `FaultQueue`; `add` queues a fault for the next `times` matching requests, in
FIFO order; `take` hands the request its fault, if one is due. A queue may also answer each
matching request with a fault chosen at random (`at_random`), after any queued one.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any


@dataclass
class Fault:
    """One injected misbehaviour, consumed by the next `times` matching requests."""

    kind: str
    times: int = 1
    params: dict[str, Any] = field(default_factory=dict)
    on_cursor: str | None = None  # None: any request; "": only the first page (no cursor)
    endpoint: str = ""  # which of the fake's endpoints; "" for a fake with one


def kinds(*known: str) -> Callable[[Fault], Fault]:
    """A validator accepting only these fault kinds (and `times` of one or more)."""

    def validate(fault: Fault) -> Fault:
        if fault.kind not in known:
            raise ValueError(f"unknown fault kind {fault.kind!r}; expected one of {known}")
        if fault.times < 1:
            raise ValueError("times must be at least 1")
        return fault

    return validate


class FaultQueue:
    """Faults waiting for requests; safe to use from the fake's threads at once."""

    def __init__(self, validate: Callable[[Fault], Fault]) -> None:
        self._validate = validate
        self._lock = threading.Lock()
        self._queued: list[Fault] = []
        self._random: dict[str, tuple[float, tuple[Fault, ...]]] = {}
        self._rng = random.Random(0)
        self.injected: Counter[tuple[str, str]] = Counter()  # (endpoint, kind) served so far

    def add(self, fault: Fault) -> Fault:
        fault = self._validate(fault)
        with self._lock:
            self._queued.append(fault)
        return fault

    def at_random(
        self, rate: float, faults: Sequence[Fault], *, endpoint: str = "", seed: int = 0
    ) -> None:
        """From now on, answer each request to `endpoint` with one of `faults` (their `times`
        ignored) with probability `rate`."""
        chosen = tuple(
            self._validate(
                replace(f, times=1, params=dict(f.params), on_cursor=None, endpoint=endpoint)
            )
            for f in faults
        )
        with self._lock:
            self._random[endpoint] = (rate, chosen)
            self._rng = random.Random(seed)

    def take(self, endpoint: str = "", cursor: str = "") -> Fault | None:
        """The fault due for this request, if any (a queued one first)."""
        with self._lock:
            taken = next(
                (
                    f
                    for f in self._queued
                    if f.endpoint == endpoint and f.on_cursor in (None, cursor)
                ),
                None,
            )
            if taken is not None:
                taken.times -= 1
                if taken.times <= 0:
                    self._queued.remove(taken)
            elif endpoint in self._random:
                rate, faults = self._random[endpoint]
                if self._rng.random() < rate:
                    taken = self._rng.choice(faults)
            if taken is not None:
                self.injected[endpoint, taken.kind] += 1
            return taken

    def pending(self) -> list[Fault]:
        """Copies of the queued faults, in order."""
        with self._lock:
            return [replace(f, params=dict(f.params)) for f in self._queued]

    def clear(self) -> None:
        with self._lock:
            self._queued.clear()
            self._random.clear()

    def reset(self) -> None:
        """Forget the faults and what was served."""
        self.clear()
        with self._lock:
            self.injected.clear()
