"""Test settings, a database migrated once for the run, and isolation between tests.

The environment is set before any `app` module is imported, because the Celery app reads its
settings at import time. Worker processes started by tests inherit the same environment.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator

import pytest

from app.fakes import server
from app.fakes.supabase_auth import JWKS_PATH, FakeSupabaseAuth

TEST_DATABASE = f"callsync_test_{os.getpid()}"
TEST_DATABASE_URL = f"postgresql+psycopg2://postgres@127.0.0.1:5432/{TEST_DATABASE}"
ULTRAVOX_API_KEY = "uv-test-key"


ELEVENLABS_API_KEY = "xi-test-key"

# The fakes' addresses are fixed now, so that worker processes inherit them.
FAKE_ULTRAVOX_PORT = server.free_port()
FAKE_ELEVENLABS_PORT = server.free_port()
FAKE_SALESFORCE_PORT = server.free_port()
FAKE_BUBBLE_PORT = server.free_port()
FAKE_SUPABASE_AUTH_PORT = server.free_port()
BUBBLE_API_TOKEN = "bubble-test-admin-token"
# The fake Bubble app's data types and their fields, as a real app declares them.
BUBBLE_TYPES = {
    "user": {"email": "text", "name": "text"},
    "account": {"owner": "user", "plan": "text"},
    "listing": {"account": "account", "title": "text"},
    "guest": {"name": "text", "email": "text", "visits": "number", "vip": "yes / no"},
    "rentalunit": {"name": "text", "beds": "number"},
}
SALESFORCE_CLIENT_ID = "3MVG9fake"
SALESFORCE_CLIENT_SECRET = "sf-test-secret"

METRICS_DIR = tempfile.mkdtemp(prefix="callsync-metrics-")
atexit.register(shutil.rmtree, METRICS_DIR, ignore_errors=True)

os.environ.update(
    DATABASE_URL=TEST_DATABASE_URL,
    # TEST_REDIS_URL lets two runs on one machine keep their Celery messages apart.
    REDIS_URL=os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15"),
    ENCRYPTION_KEY=secrets.token_urlsafe(24),
    JWT_SECRET=secrets.token_urlsafe(24),
    SERVICE_TOKEN=secrets.token_urlsafe(24),
    # Fast transient retries: the faults are injected, the waits need not be real.
    HTTP_RETRY_INITIAL_SECONDS="0.05",
    HTTP_RETRY_MAX_SECONDS="0.2",
    TASK_RETRY_SECONDS="0.2",
    # Rotations must show at once; test_webhook_ingest checks the cache on its own server.
    WEBHOOK_SECRET_CACHE_SECONDS="0",
    ULTRAVOX_API_BASE_URL=f"http://127.0.0.1:{FAKE_ULTRAVOX_PORT}",
    ELEVENLABS_API_BASE_URL=f"http://127.0.0.1:{FAKE_ELEVENLABS_PORT}",
    ELEVENLABS_API_KEY=ELEVENLABS_API_KEY,
    SALESFORCE_LOGIN_URL=f"http://127.0.0.1:{FAKE_SALESFORCE_PORT}",
    SALESFORCE_CLIENT_ID=SALESFORCE_CLIENT_ID,
    SALESFORCE_CLIENT_SECRET=SALESFORCE_CLIENT_SECRET,
    BUBBLE_API_BASE_URL=f"http://127.0.0.1:{FAKE_BUBBLE_PORT}/api/1.1",
    BUBBLE_API_TOKEN=BUBBLE_API_TOKEN,
    # The test process and its workers write their metrics here, and /metrics reads them.
    PROMETHEUS_MULTIPROC_DIR=METRICS_DIR,
    SUPABASE_JWKS_URL=f"http://127.0.0.1:{FAKE_SUPABASE_AUTH_PORT}{JWKS_PATH}",
)

from celery.contrib.testing.worker import start_worker
from celery.worker import WorkController
from redis import Redis
from sqlalchemy import text
from sqlalchemy.orm import Session

from app import budgets, db, drains, migrations
from app.api.main import create_app, server_options
from app.celery import Queue
from app.celery import app as callsync_app
from app.config import get_settings
from app.fakes.bubble import FakeBubble
from app.fakes.elevenlabs import FakeElevenLabs
from app.fakes.salesforce import FakeSalesforce
from app.fakes.ultravox import FakeUltravox, generate_calls
from app.models import Base
from tests.helpers import ApiClient, Worker


@pytest.fixture(scope="session")
def database() -> Iterator[str]:
    """A fresh database for this run, migrated to head by Alembic, dropped at the end."""
    migrations.drop_database(TEST_DATABASE_URL)
    migrations.upgrade(TEST_DATABASE_URL)
    yield TEST_DATABASE_URL
    db.get_engine().dispose()
    migrations.drop_database(TEST_DATABASE_URL)


# Children before parents; DELETE costs about 2 ms here where a TRUNCATE of every table cost
# about 240 ms (it makes new files for each), and the tests leave few rows. `workers` stays:
# it is the worker processes alive now (app.liveness), which outlive a test.
_TABLES = [table.name for table in reversed(Base.metadata.sorted_tables) if table.name != "workers"]


@pytest.fixture
def clean_tables(database: str) -> Iterator[None]:
    """The test starts from an empty broker and leaves empty tables behind it.

    Requested by every test of the integration, e2e and chaos folders (their conftests), not
    by the unit tests, which need neither PostgreSQL nor Redis. Workers in other processes
    must see committed rows, so this deletes rather than rolls back, with triggers and foreign
    keys off for that transaction only (session_replication_role).
    """
    yield
    delete_rows()


def delete_rows() -> None:
    """Empty the broker and every table (but `workers`)."""
    callsync_app.control.purge()
    drains.WEBHOOKS.forget()
    drains.ENRICHMENT.forget()
    forget_budgets()
    with db.session_scope() as session:
        session.execute(text("SET LOCAL session_replication_role = replica"))
        session.execute(text(";".join(f"DELETE FROM {name}" for name in _TABLES)))  # noqa: S608


def forget_budgets() -> None:
    """Every provider budget back to unused: no test inherits another's 429 hold."""
    redis = Redis.from_url(get_settings().redis_url)
    if keys := list(redis.scan_iter(budgets.PREFIX + "*")):
        redis.delete(*keys)


@pytest.fixture
def session() -> Iterator[Session]:
    """A session whose work the test commits or not; closed afterwards."""
    with db.get_sessionmaker()() as session:
        yield session


@pytest.fixture(scope="session")
def fake_ultravox_server() -> Iterator[FakeUltravox]:
    fake = FakeUltravox(ULTRAVOX_API_KEY, generate_calls(237))
    with fake.serve(port=FAKE_ULTRAVOX_PORT):
        yield fake


@pytest.fixture
def fake_ultravox(fake_ultravox_server: FakeUltravox) -> Iterator[FakeUltravox]:
    """The fake Ultravox on loopback, holding 237 calls (every 10th still live), no faults."""
    fake_ultravox_server.reset()
    yield fake_ultravox_server
    fake_ultravox_server.reset()


@pytest.fixture(scope="session")
def fake_elevenlabs_server() -> Iterator[FakeElevenLabs]:
    fake = FakeElevenLabs(ELEVENLABS_API_KEY)
    with fake.serve(port=FAKE_ELEVENLABS_PORT):
        yield fake


@pytest.fixture
def fake_elevenlabs(fake_elevenlabs_server: FakeElevenLabs) -> Iterator[FakeElevenLabs]:
    """The fake ElevenLabs on loopback, with no dials, conversations or faults."""
    fake_elevenlabs_server.reset()
    yield fake_elevenlabs_server
    fake_elevenlabs_server.reset()


@pytest.fixture
def fake_salesforce() -> Iterator[FakeSalesforce]:
    """A fresh fake Salesforce org on loopback, with no records."""
    org = FakeSalesforce(SALESFORCE_CLIENT_ID, SALESFORCE_CLIENT_SECRET, "5Aep-refresh-1")
    with org.serve(port=FAKE_SALESFORCE_PORT):
        yield org


@pytest.fixture(scope="session")
def fake_bubble_server() -> Iterator[FakeBubble]:
    fake = FakeBubble(BUBBLE_API_TOKEN, BUBBLE_TYPES)
    with fake.serve(port=FAKE_BUBBLE_PORT):
        yield fake


@pytest.fixture
def fake_bubble(fake_bubble_server: FakeBubble) -> Iterator[FakeBubble]:
    """The fake Bubble app on loopback (BUBBLE_TYPES), empty, with a fresh rate-limit window."""
    fake_bubble_server.reset()
    forget_budgets()
    yield fake_bubble_server
    fake_bubble_server.reset()


@pytest.fixture
def inprocess_worker() -> Iterator[WorkController]:
    """Celery's embedded test worker (celery.contrib.testing, what pytest-celery's in-process
    fixtures start) running our app's tasks on every queue, in a thread of this process, for
    one test. pytest-celery's own `celery_worker` fixture runs workers in Docker instead."""
    with start_worker(
        callsync_app, pool="solo", queues=list(Queue), perform_ping_check=False
    ) as running:
        yield running


@pytest.fixture(scope="session")
def supabase_auth() -> Iterator[FakeSupabaseAuth]:
    """Supabase Auth's signing keys, published as the project's JWKS on loopback."""
    fake = FakeSupabaseAuth()
    with fake.serve(port=FAKE_SUPABASE_AUTH_PORT):
        yield fake


@pytest.fixture(scope="session")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    """One real Celery worker process for the session, consuming every queue."""
    running = Worker(tmp_path_factory.mktemp("worker") / "worker.log")
    yield running
    running.stop()


@pytest.fixture(scope="session")
def api() -> Iterator[ApiClient]:
    """The HTTP API served by uvicorn on loopback, in this process."""
    with server.serve(create_app(), **server_options(get_settings())) as running:
        yield ApiClient(running.url)
