"""Salesforce lead sync (seed 003: sync-salesforce-leads)."""
