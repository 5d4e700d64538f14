"""Pushing the sync queue to a Bubble.io back end (seed 004: bubble_sync)."""
