"""Fake providers served over loopback HTTP for tests, the demo and benchmarks."""
