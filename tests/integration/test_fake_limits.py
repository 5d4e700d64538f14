"""The fakes enforce the providers' documented limits over HTTP: Ultravox's rates per key and
per account, ElevenLabs' concurrent requests, Bubble's requests per minute."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import requests

from app import processes
from app.fakes import server
from app.fakes.bubble import FakeBubble
from app.fakes.elevenlabs import FakeElevenLabs
from app.fakes.ultravox import FakeUltravox, generate_calls
from tests.helpers import wait_for

CALLS = generate_calls(3)


def test_ultravox_limits_each_key_and_the_account_with_retry_after() -> None:
    fake = FakeUltravox("key-a", CALLS, other_keys=["key-b"], rate_limit=2, account_rate_limit=3)
    with fake.serve() as running:

        def get(key: str) -> requests.Response:
            return requests.get(f"{running.url}/api/calls", headers={"X-API-Key": key}, timeout=5)

        assert [get("key-a").status_code for _ in range(3)] == [200, 200, 429]
        refused = get("key-a")
        assert refused.headers["Retry-After"] == "1"
        assert refused.json() == {
            "detail": "Request was throttled. Expected available in 1 second."
        }
        # key-b has its own 2 a second, but the account's 3 are used up after one.
        assert [get("key-b").status_code for _ in range(2)] == [200, 429]
        assert fake.throttled == {"key-a": 2, "key-b": 1}
        assert get("key-c").status_code == 401


def test_ultravox_limits_are_on_by_default_and_can_be_turned_off() -> None:
    limited = FakeUltravox("key")
    assert (limited.key_rate.limit, limited.account_rate.limit) == (200, 500)
    free = FakeUltravox("key", rate_limit=None, account_rate_limit=None)
    with free.serve() as running:
        answers = [
            requests.get(
                f"{running.url}/api/calls", headers={"X-API-Key": "key"}, timeout=5
            ).status_code
            for _ in range(5)
        ]
    assert answers == [200] * 5


def test_elevenlabs_refuses_requests_above_its_concurrency() -> None:
    fake = FakeElevenLabs("xi", concurrency=1)
    fake.inject("slow", seconds=0.5)
    body = {"agent_id": "a", "agent_phone_number_id": "p", "to_number": "+12025550123"}
    with fake.serve() as running:
        headers = {"xi-api-key": "xi"}
        url = f"{running.url}/v1/convai/twilio/outbound-call"
        slow = threading.Thread(
            target=lambda: requests.post(url, json=body, headers=headers, timeout=5)
        )
        slow.start()
        wait_for(lambda: fake.concurrency.in_flight == 1, what="the slow dial in flight")
        busy = requests.get(f"{running.url}/v1/convai/conversations", headers=headers, timeout=5)
        slow.join()
        after = requests.get(f"{running.url}/v1/convai/conversations", headers=headers, timeout=5)
    assert busy.status_code == 429
    assert busy.json()["detail"]["status"] == "too_many_concurrent_requests"
    assert after.status_code == 200
    assert fake.dials_to("+12025550123") == 1


def test_bubble_limits_requests_per_minute() -> None:
    fake = FakeBubble("token", {"user": {"email": "text"}}, rate_limit=2)
    with fake.serve() as running:
        url, headers = f"{running.url}/api/1.1/obj/user", {"Authorization": "Bearer token"}
        answers = [requests.get(url, headers=headers, timeout=5) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert 55 <= int(answers[2].headers["Retry-After"]) <= 60


def test_callsync_fake_ultravox_takes_its_limits_as_options(tmp_path: Path) -> None:
    port = server.free_port()
    options = f"--port {port} --calls 3 --api-key key --rate-limit 2"
    command = [sys.executable, "-m", "app.cli", "fake", "ultravox", *options.split()]
    with processes.child("fake", command, log_dir=tmp_path, ready=lambda log: "serving" in log):
        url = f"http://127.0.0.1:{port}/api/calls"
        answers = [requests.get(url, headers={"X-API-Key": "key"}, timeout=5) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
