"""Ultravox webhooks: ingest (webhook-ingest) and the webhook queue (process-webhook-queue)."""
