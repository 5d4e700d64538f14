"""`callsync db upgrade`: create the database when it is missing, then migrate to head."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import make_url

from alembic import command
from app import errors

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


# Tables of the old Supabase system: a database holding them unstamped is to be adopted.
OLD_SYSTEM_TABLES = ("historical_sync_jobs", "webhook_queue", "enrichment_queue", "calls")


class AdoptionNeeded(errors.Conflict):
    """The database holds the old system's tables but no callsync migrations."""


def upgrade(url: str, revision: str = "head") -> None:
    ensure_database(url)
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            if not is_stamped(connection) and _holds_old_tables(connection):
                raise AdoptionNeeded(
                    "this database holds the old system's tables but no callsync migrations: "
                    "run `callsync db adopt` first"
                )
    finally:
        engine.dispose()
    command.upgrade(alembic_config(url), revision)


def is_stamped(connection: Connection) -> bool:
    return connection.scalar(text("SELECT to_regclass('public.alembic_version')")) is not None


def _holds_old_tables(connection: Connection) -> bool:
    names = [f"public.{name}" for name in OLD_SYSTEM_TABLES]
    found = connection.scalar(
        text(
            "SELECT count(*) FROM unnest(CAST(:names AS text[])) AS n WHERE to_regclass(n) IS NOT NULL"
        ),
        {"names": names},
    )
    return bool(found)
