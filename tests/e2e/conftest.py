"""Fixtures of the end-to-end tests: the API beside a real worker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers import ApiClient, Worker


@pytest.fixture
def client(api: ApiClient, worker: Worker) -> Iterator[ApiClient]:
    """The API, with the worker left idle afterwards so that no test sees another's tasks."""
    yield api
    worker.wait_idle()


@pytest.fixture(autouse=True)
def _isolated(clean_tables: None) -> None:
    """Every test here uses the database (tests/conftest.py: clean_tables)."""
