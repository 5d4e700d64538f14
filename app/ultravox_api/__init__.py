"""The Ultravox API (api-facts §1): its client and its payloads, shared by the historical sync
(app/ultravox) and the enrichment (app/enrichment), which both call it."""
