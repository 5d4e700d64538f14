"""The beat schedule: every periodic task, named exactly after its seed function.

Each entry's `expires` is about 1.5x its cadence, so a backlog of ticks behind a stopped
worker is dropped instead of run in a burst; the database still holds all the work.
"""

from celery.schedules import crontab

BEAT_SCHEDULE = {
    # Import past Ultravox calls: claim up to 3 sync jobs, one page task each.
    "process-historical-sync": {
        "task": "periodic.process-historical-sync",
        "schedule": crontab(minute="*"),
        "options": {"expires": 90},
    },
    # Drain the webhook queue: new events are also drained at once, this catches retries.
    "process-webhook-queue": {
        "task": "periodic.process-webhook-queue",
        "schedule": crontab(minute="*"),
        "options": {"expires": 90},
    },
    # Transcripts and analyses of ended calls: new items are drained at once, this catches retries.
    "process-enrichment-queue": {
        "task": "periodic.process-enrichment-queue",
        "schedule": crontab(minute="*"),
        "options": {"expires": 90},
    },
    # Place the next outbound calls of every active campaign, one task per campaign.
    "campaign-orchestrator": {
        "task": "periodic.campaign-orchestrator",
        "schedule": crontab(minute="*/5"),
        "options": {"expires": 450},
    },
    # Bring in the turns and outcomes of recent conversations, one task per conversation.
    "conversation-orchestrator": {
        "task": "periodic.conversation-orchestrator",
        "schedule": crontab(minute="*/10"),
        "options": {"expires": 900},
    },
    # Sync Salesforce Contacts and Leads into leads, one task per enabled integration.
    "sync-salesforce-leads": {
        "task": "periodic.sync-salesforce-leads",
        "schedule": crontab(minute="*/15"),
        "options": {"expires": 1350},
    },
    # Push pending sync_queue items to Bubble (limit 10, batches of 5, as the seed's pg_cron did).
    "bubble-sync-processor": {
        "task": "periodic.bubble-sync-processor",
        "schedule": crontab(minute="*"),
        "options": {"expires": 90},
    },
    # Push failed sync_queue items again once their backoff has passed.
    "bubble-sync-retry": {
        "task": "periodic.bubble-sync-retry",
        "schedule": crontab(minute="*/5"),
        "options": {"expires": 450},
    },
    # Delete completed queue rows and logs past RETENTION_DAYS, in small batches, at night.
    "cleanup": {
        "task": "periodic.cleanup",
        "schedule": crontab(hour=3, minute=17),
        "options": {"expires": 3600},
    },
}
