"""Log output for every process: readable lines by default, one JSON object per line with
LOG_FORMAT=json. Inside a Celery task each event also names the task and its id; task
arguments are ids only, so nothing secret reaches a log this way."""

from __future__ import annotations

import logging
import logging.config
from datetime import UTC, datetime
from typing import Any

from celery import current_task
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

from app.config import Settings

TEXT_FORMAT = "%(asctime)s %(levelname)s [%(name)s] %(message)s"


class JsonFormatter(_JsonFormatter):
    """python-json-logger's formatter: time, level, logger, message, the record's extras, and
    the task and its id inside a Celery task."""

    def __init__(self) -> None:
        super().__init__(
            "%(levelname)s %(name)s %(message)s",
            rename_fields={"levelname": "level", "name": "logger", "exc_info": "exception"},
            # uvicorn's coloured copy of the message is no extra of ours
            reserved_attrs=[*RESERVED_ATTRS, "color_message"],
            json_default=str,
        )

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        log_data["time"] = datetime.fromtimestamp(record.created, UTC).isoformat(
            timespec="milliseconds"
        )
        super().add_fields(log_data, record, message_dict)
        task: Any = current_task  # a proxy: falsy outside a task
        if task and task.request.id:
            log_data.update(task=task.name, task_id=task.request.id)


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
