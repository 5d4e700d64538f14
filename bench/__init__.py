"""Benchmarks: `python -m bench` prints each one as a table."""
