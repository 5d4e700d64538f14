"""`python -m app.cli`: the `callsync` command."""

from __future__ import annotations

from app.cli import main

main()
