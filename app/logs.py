"""Log output for every process: readable lines by default, one JSON object per line with
LOG_FORMAT=json. Inside a Celery task each event also names the task and its id; task
arguments are ids only, so nothing secret reaches a log this way."""

from __future__ import annotations

import json
import logging
import logging.config
from datetime import UTC, datetime
from typing import Any

from celery import current_task

from app.config import Settings

TEXT_FORMAT = "%(asctime)s %(levelname)s [%(name)s] %(message)s"
# LogRecord's own attributes; anything else on a record came from `extra=` and is kept.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        task: Any = current_task  # a proxy: falsy outside a task
        if task and task.request.id:
            event.update(task=task.name, task_id=task.request.id)
        event.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            event["exception"] = self.formatException(record.exc_info)
        return json.dumps(event, default=str)


def dict_config(settings: Settings) -> dict[str, Any]:
    """Every logger's events to stderr, in the configured format and level (dictConfig's
    schema, which uvicorn also takes for each of its worker processes)."""
    formatter = {"()": JsonFormatter} if settings.log_format == "json" else {"format": TEXT_FORMAT}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"callsync": formatter},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "callsync"}},
        "root": {"handlers": ["stderr"], "level": settings.log_level.upper()},
    }


def configure(settings: Settings) -> None:
    logging.config.dictConfig(dict_config(settings))
