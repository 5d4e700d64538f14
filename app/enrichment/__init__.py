"""Enrichment of ended calls: transcripts and analyses (seed 002, process-enrichment-queue)."""
