"""One line for a pydantic ValidationError, for provider answers and command-line input."""

from __future__ import annotations

from pydantic import ValidationError


def first_error(error: ValidationError, *, root: str = "") -> str:
    """The first validation error as one line, `field: message` (`root` names the top)."""
    detail = error.errors()[0]
    where = ".".join(str(part) for part in detail["loc"]) or root
    return f"{where}: {detail['msg']}" if where else str(detail["msg"])
