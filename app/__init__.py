"""callsync: background jobs for voice-AI operations teams, on Celery and PostgreSQL.

`celery -A app` finds the Celery application in `app.celery`.
"""
