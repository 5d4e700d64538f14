"""Outbound campaigns on ElevenLabs and Twilio (seed 003: campaign-orchestrator, conversation-orchestrator)."""
