"""Who may call the API from where: CORS for browser pages (CORS_ALLOWED_ORIGINS), and the
METRICS_TOKEN that /metrics asks for when it is set."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import SecretStr, ValidationError

from app.config import Settings
from tests.helpers import ApiClient, api_with

ALLOWED = "https://app.example.com"
REFUSED = "https://evil.example.net"
METRICS_TOKEN = "metrics-token-0123456789"


@pytest.fixture(scope="module")
def cors_api() -> Iterator[ApiClient]:
    with api_with(cors_allowed_origins=f"{ALLOWED}, https://admin.example.com") as client:
        yield client


def preflight(api: ApiClient, origin: str) -> dict[str, str]:
    response = api.options(
        "/api/historical-syncs",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, x-agency-id, content-type",
        },
    )
    return {"status": str(response.status_code), **response.headers}


def test_by_default_no_cors_header_is_sent(api: ApiClient) -> None:
    answer = preflight(api, ALLOWED)
    assert answer["status"] == "405"
    assert "access-control-allow-origin" not in {name.lower() for name in answer}
    simple = api.get("/healthz", headers={"Origin": ALLOWED})
    assert simple.status_code == 200
    assert "access-control-allow-origin" not in simple.headers


def test_a_preflight_from_an_allowed_origin_allows_the_bearer_and_agency_headers(
    cors_api: ApiClient,
) -> None:
    answer = preflight(cors_api, ALLOWED)
    assert answer["status"] == "200"
    assert answer["access-control-allow-origin"] == ALLOWED
    allowed = {h.strip().lower() for h in answer["access-control-allow-headers"].split(",")}
    assert {"authorization", "x-agency-id", "content-type"} <= allowed
    assert "POST" in answer["access-control-allow-methods"]
    assert "access-control-allow-credentials" not in answer


def test_a_preflight_from_another_origin_is_refused(cors_api: ApiClient) -> None:
    answer = preflight(cors_api, REFUSED)
    assert answer["status"] == "400"
    assert "access-control-allow-origin" not in answer


def test_a_simple_request_names_only_an_allowed_origin(cors_api: ApiClient) -> None:
    allowed = cors_api.get("/healthz", headers={"Origin": ALLOWED})
    assert allowed.headers["access-control-allow-origin"] == ALLOWED
    refused = cors_api.get("/healthz", headers={"Origin": REFUSED})
    assert refused.status_code == 200  # the browser, not the server, withholds the answer
    assert "access-control-allow-origin" not in refused.headers


def test_metrics_are_open_by_default(api: ApiClient) -> None:
    assert api.get("/metrics").status_code == 200


def test_with_a_metrics_token_metrics_need_it_as_bearer_token() -> None:
    with api_with(metrics_token=SecretStr(METRICS_TOKEN)) as api:
        missing = api.get("/metrics")
        assert missing.status_code == 401
        assert missing.headers["WWW-Authenticate"] == "Bearer"
        wrong = api.get("/metrics", headers={"Authorization": "Bearer not-the-token"})
        assert wrong.status_code == 401
        right = api.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        assert right.status_code == 200
        assert "callsync_queue_rows" in right.text
        assert api.get("/healthz").status_code == 200  # the probes stay open


def test_an_empty_metrics_token_is_none_and_a_short_one_is_refused() -> None:
    # docker compose passes an unset METRICS_TOKEN through as "".
    assert Settings(metrics_token="").metrics_token is None
    with pytest.raises(ValidationError, match="metrics_token"):
        Settings(metrics_token="short")
