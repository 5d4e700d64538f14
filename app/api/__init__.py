"""The HTTP API (FastAPI): historical syncs, cron entry points for old callers, health."""
