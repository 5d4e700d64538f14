"""workers (ours): the worker processes alive now, renewed by each one's heartbeat (app.liveness)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ARRAY, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base


class WorkerProcess(Base):
    """One worker child: what it claims is held for as long as this row is renewed."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(primary_key=True)  # "<node name>:<pid>"
    node: Mapped[str]  # the Celery node name, e.g. webhooks@host
    boot: Mapped[str]  # one start of that node: a restart has a new one
    pid: Mapped[int]
    started_at: Mapped[datetime] = mapped_column(server_default=text("now()"))
    heartbeat_at: Mapped[datetime] = mapped_column(server_default=text("now()"))
    # The webhook events its drain is applying: taken and applied in one transaction, they
    # leave no other trace of who held them if the worker dies.
    applying: Mapped[list[uuid.UUID] | None] = mapped_column(ARRAY(Uuid))
