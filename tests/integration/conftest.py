"""Fixtures of the integration tests: each starts from empty tables and an empty broker."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated(clean_tables: None) -> None:
    """Every test here uses the database (tests/conftest.py: clean_tables)."""
