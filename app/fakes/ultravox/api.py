"""The fake Ultravox's HTTP app: the API's paths and the `/_fake/` control endpoints."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, FastAPI, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from starlette.routing import Route

from app.fakes.faults import Fault
from app.fakes.ultravox.faults import fault_response, malformed, throttled, trickle
from app.fakes.ultravox.pages import Rejected, calls_page, find_call, offset_page, page_size

if TYPE_CHECKING:
    from app.fakes.ultravox.fake import FakeUltravox


def build_app(fake: FakeUltravox) -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.router.routes.extend(_api_routes(fake))
    app.include_router(_control_router(fake))
    app.add_exception_handler(Rejected, _rejected)
    return app


async def _rejected(_request: Request, error: Exception) -> Response:
    if isinstance(error, Rejected):
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
        if not fake.known_key(key):
            raise HTTPException(401, "Incorrect authentication credentials.")
        if (wait := fake._over_rate_limit(key)) is not None:
            raise HTTPException(429, throttled(wait), headers={"Retry-After": str(wait)})
        if fake.latency:
            await asyncio.sleep(fake.latency)

    async def list_calls(request: Request) -> Response:
        await authorize(request)
        return await _answer(fake, "calls", request, lambda: calls_page(fake, request))

    async def get_call(request: Request) -> Response:
        await authorize(request)
        return JSONResponse(find_call(fake, request.path_params["call_id"]))

    async def list_messages(request: Request) -> Response:
        await authorize(request)

        def page() -> dict[str, Any]:
            messages = fake.messages(find_call(fake, request.path_params["call_id"]))
            if request.query_params.get("mode", "last_stage") not in ("last_stage", "in_call"):
                raise Rejected.invalid("mode", "Select a valid choice.")
            return offset_page(request, messages, page_size(fake, request))

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
        return fault_response(fault)
    if fault is not None and fault.kind == "slow":
        await asyncio.sleep(float(fault.params["seconds"]))
    body = page()
    if fault is not None and fault.kind == "trickle":
        return trickle(body, float(fault.params["seconds"]))
    if fault is not None and fault.kind == "malformed":
        return malformed(body, fault.params["variant"], int(fault.params.get("at", 0)))
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

    @router.post("/faults/random", status_code=204)
    def add_random_faults(spec: dict[str, Any]) -> None:
        """From now on, answer a share `rate` of `endpoint`'s requests with one of `faults`
        (each `{"kind": ..., "params": {...}}`), chosen at random from `seed`."""
        try:
            faults = [Fault(f["kind"], params=dict(f.get("params", {}))) for f in spec["faults"]]
            fake.inject_at_random(
                float(spec["rate"]),
                faults,
                endpoint=spec.get("endpoint", "calls"),
                seed=int(spec.get("seed", 0)),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise HTTPException(400, str(error)) from error

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

    @router.get("/stats")
    def stats() -> dict[str, Any]:
        """How many /api/ requests came, and how many of them the rate limits refused."""
        return {"requests": len(fake.requests_seen), "throttled": dict(fake.throttled)}

    @router.post("/reset", status_code=204)
    def reset() -> None:
        fake.reset()

    @router.post("/calls", status_code=201)
    def add_calls(calls: list[dict[str, Any]]) -> dict[str, Any]:
        fake.add_calls(calls)
        return {"total": len(fake.calls)}

    return router
