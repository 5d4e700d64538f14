"""The JSON log format: one object per line, extras kept, the task named inside a task."""

from __future__ import annotations

import json
import logging

from app.celery import app as celery_app
from app.logs import JsonFormatter


def record(**extra: object) -> logging.LogRecord:
    entry = logging.makeLogRecord(
        {
            "name": "campaigns",
            "levelname": "INFO",
            "levelno": 20,
            "msg": "[dial] placing call to %s",
            "args": ("+1******0143",),
        }
    )
    entry.__dict__.update(extra)
    return entry


def test_one_json_object_per_event_with_its_extras() -> None:
    line = JsonFormatter().format(record(campaign_id="c-1"))
    event = json.loads(line)
    assert "\n" not in line
    assert (event["level"], event["logger"], event["message"], event["campaign_id"]) == (
        "INFO",
        "campaigns",
        "[dial] placing call to +1******0143",
        "c-1",
    )
    assert "task_id" not in event


def test_inside_a_task_the_event_names_it() -> None:
    @celery_app.task(name="tests.log_something", bind=True)
    def log_something(self: object) -> str:
        return JsonFormatter().format(record())

    event = json.loads(log_something.apply(task_id="t-42").get())
    assert (event["task"], event["task_id"]) == ("tests.log_something", "t-42")
