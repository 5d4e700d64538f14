"""Keeping the database small: cleanup of old queue rows and logs."""
