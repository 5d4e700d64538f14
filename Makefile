.PHONY: setup services demo test chaos lint bench

setup:
	bash scripts/bootstrap.sh

services:
	bash scripts/services.sh

demo: setup services
	.venv/bin/callsync db upgrade
	.venv/bin/callsync demo

test: setup services
	.venv/bin/pytest

chaos: setup services
	CHAOS_FULL=1 .venv/bin/pytest -m chaos

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy app tests bench
	.venv/bin/lint-imports

bench: setup services
	.venv/bin/callsync db upgrade
	.venv/bin/python -m bench
