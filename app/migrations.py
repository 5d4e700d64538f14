"""`callsync db upgrade`: create the database when it is missing, then migrate to head."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from alembic import command

ALEMBIC_INI = Path(__file__).resolve().parent.parent / "alembic.ini"


def _admin_engine(url: str) -> Engine:
    """An autocommit engine on the server's `postgres` database, for CREATE/DROP DATABASE."""
    return create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")


def ensure_database(url: str) -> bool:
    """Create the database named in `url` if it does not exist; True when it was created."""
    target = make_url(url)
    admin = _admin_engine(url)
    try:
        with admin.connect() as connection:
            exists = connection.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": target.database}
            )
            if not exists:
                quoted = admin.dialect.identifier_preparer.quote(str(target.database))
                connection.execute(text(f"CREATE DATABASE {quoted}"))
    finally:
        admin.dispose()
    return not exists


def drop_database(url: str) -> None:
    """Drop the database named in `url`, disconnecting its sessions (tests and benchmarks)."""
    admin = _admin_engine(url)
    try:
        with admin.connect() as connection:
            quoted = admin.dialect.identifier_preparer.quote(str(make_url(url).database))
            connection.execute(text(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"))
    finally:
        admin.dispose()


def alembic_config(url: str) -> Config:
    config = Config(str(ALEMBIC_INI))
    config.set_main_option("script_location", str(ALEMBIC_INI.parent / "alembic"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    ensure_database(url)
    command.upgrade(alembic_config(url), revision)
