"""Options that several command groups share."""

from __future__ import annotations

import uuid
from typing import Annotated

import typer

AgencyId = Annotated[uuid.UUID, typer.Option("--agency", help="The agency's id.")]
