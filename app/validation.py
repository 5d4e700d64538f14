"""One line for a pydantic ValidationError, for provider answers and command-line input."""

from __future__ import annotations

from pydantic import ValidationError
from pydantic_core import ErrorDetails


def first_error(error: ValidationError, *, root: str = "") -> str:
    """The first validation error as one line, `field: message` (`root` names the top)."""
    return _line(error.errors()[0], root)


def every_error(error: ValidationError, *, root: str = "") -> str:
    """Every validation error, `field: message; ...`, without the values that failed."""
    details = error.errors(include_url=False, include_input=False, include_context=False)
    return "; ".join(_line(detail, root) for detail in details)


def _line(detail: ErrorDetails, root: str) -> str:
    where = ".".join(str(part) for part in detail["loc"]) or root
    return f"{where}: {detail['msg']}" if where else str(detail["msg"])
