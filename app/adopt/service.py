"""`callsync db adopt`: take over a database the old Supabase system built.

callsync's shape comes from a scratch database migrated to head next to it (dropped after).
The comparison (app.adopt.plan) is printed; if nothing would break callsync, its additions
run in one transaction together with the Alembic stamp, so the database is either adopted
whole or left exactly as it was. Then one claim of each waiting queue is sent, so that the
work the old system left (pending and failed events, enrichment items, a sync job in the
middle of its pages) goes on as soon as a worker runs.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from alembic import command
from app import cron_logs, errors, migrations
from app.adopt.catalog import Schema, read_schema
from app.adopt.plan import Facts, Plan, Step, plan, q

# The functions callsync's SQL calls from its extensions, and where they come from.
NEEDED_FUNCTIONS = {
    "uuid_generate_v4()": "uuid-ossp",
    "pgp_sym_encrypt(text,text)": "pgcrypto",
    "pgp_sym_decrypt(bytea,text)": "pgcrypto",
}
WAKE_AFTER_ADOPTION = (
    "process-webhook-queue",
    "process-enrichment-queue",
    "process-historical-sync",
)


# Tables whose RLS policies bind the connecting role: callsync reads and writes every row.
ROW_SECURITY_APPLIES = text("""
    SELECT c.relname FROM pg_class AS c
    WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' AND c.relrowsecurity
      AND (c.relforcerowsecurity OR (
          pg_get_userbyid(c.relowner) <> current_user
          AND NOT (SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user)
      ))
    ORDER BY 1
""")


class AdoptionRefused(errors.Conflict):
    """A difference would break callsync; nothing was changed."""


class _DryRun(Exception):
    """Leave the transaction: a dry run compares and prints only."""


def adopt(url: str, echo: Callable[[str], None], *, dry_run: bool = False) -> Plan:
    """Compare, print, and (unless refused, or a dry run) add what callsync needs and stamp
    head."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            if migrations.is_stamped(connection):
                raise AdoptionRefused(
                    "this database is already migrated by callsync: run `callsync db upgrade`"
                )
        with _scratch_head(url) as ours, engine.begin() as connection:
            result = _compare(connection, ours)
            _print(result, echo)
            if result.refused:
                raise AdoptionRefused(
                    f"{len(result.refused)} difference(s) would break callsync; nothing changed"
                )
            if dry_run:
                raise _DryRun
            _apply(connection, result, echo)
            cron_logs.seed_schedule(connection)
            config = migrations.alembic_config(url)
            config.attributes["connection"] = connection
            command.stamp(config, "head")
    except _DryRun:
        echo(f"dry run: {len(result.steps)} addition(s) to make; nothing changed")
        return result
    finally:
        engine.dispose()
    echo(f"adopted: {len(result.steps)} addition(s), stamped at head")
    _wake_waiting_work(echo)
    return result


@contextmanager
def _scratch_head(url: str) -> Iterator[Schema]:
    scratch = make_url(url).set(database=f"callsync_adopt_{uuid.uuid4().hex[:12]}")
    scratch_url = scratch.render_as_string(hide_password=False)
    migrations.upgrade(scratch_url)
    engine = create_engine(scratch_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            yield read_schema(connection)
    finally:
        engine.dispose()
        migrations.drop_database(scratch_url)


def _compare(connection: Connection, ours: Schema) -> Plan:
    connection.execute(text("SET LOCAL check_function_bodies = off"))  # created in any order
    theirs = read_schema(connection)
    result = plan(theirs, ours, _facts(connection, theirs))
    _extensions(connection, result)
    for table in connection.scalars(ROW_SECURITY_APPLIES):
        if table in ours.tables:
            result.refused.append(
                f"row level security applies to this role on {table} (FORCE, or another "
                "owner): callsync would not see its rows; connect as its owner or a BYPASSRLS role"
            )
    return result


def _facts(connection: Connection, theirs: Schema) -> Facts:
    populated = frozenset(
        table
        for table in theirs.tables
        if connection.scalar(text(f"SELECT EXISTS (SELECT 1 FROM public.{q(table)})"))  # noqa: S608
    )
    roles = connection.scalar(
        text("SELECT count(*) FROM pg_roles WHERE rolname IN ('anon', 'authenticated')")
    )
    return Facts(
        populated=populated,
        adopted_at=datetime.now(UTC).isoformat(),
        row_security=roles == 2,
    )


def _extensions(connection: Connection, result: Plan) -> None:
    """uuid-ossp and pgcrypto may live in another schema (Supabase's `extensions`): callsync
    needs their functions on the search path, as Supabase's own roles have them."""
    rows = connection.execute(
        text("SELECT extname, extnamespace::regnamespace::text FROM pg_extension")
    )
    installed: dict[str, str] = dict(rows.all())
    missing = []
    for function, extension in NEEDED_FUNCTIONS.items():
        if connection.scalar(text("SELECT to_regprocedure(:f)"), {"f": function}) is not None:
            continue
        if extension in installed:
            result.refused.append(
                f"{function} of {extension} (schema {installed[extension]}) is not on the "
                f'search path: ALTER DATABASE ... SET search_path = "$user", public, '
                f"{installed[extension]}"
            )
        elif extension not in missing:
            missing.append(extension)
    for extension in missing:
        what = f"extension {extension}: created"
        result.steps.insert(0, Step(what, f'CREATE EXTENSION IF NOT EXISTS "{extension}"'))


def _print(result: Plan, echo: Callable[[str], None]) -> None:
    for line in result.refused:
        echo(f"refused: {line}")
    for line in result.kept:
        echo(f"kept:    {line}")
    for step in result.steps:
        echo(f"adds:    {step.what}")


def _apply(connection: Connection, result: Plan, echo: Callable[[str], None]) -> None:
    for step in result.steps:
        if step.fallback is None:
            _run(connection, step.sql)
            continue
        try:
            with connection.begin_nested():
                _run(connection, step.sql)
        except connection.dialect.loaded_dbapi.IntegrityError:
            # The team's rows already hold the same key twice (Ultravox retried a delivery the
            # old queue took twice): those rows stay, and the key is unique from now on.
            _run(connection, step.fallback)
            echo(f"adds:    {step.what}: over the rows from now on, the team's hold duplicates")


def _run(connection: Connection, sql: str) -> None:
    """A statement as it is, with no parameters: function bodies hold `%` (format())."""
    cursor = connection.connection.cursor()
    try:
        cursor.execute(sql)
    finally:
        cursor.close()


def _wake_waiting_work(echo: Callable[[str], None]) -> None:
    from kombu.exceptions import OperationalError

    from app.celery import app

    try:
        for name in WAKE_AFTER_ADOPTION:
            app.send_task(f"periodic.{name}")
    except OperationalError as error:
        echo(f"the broker is not reachable ({error}): beat takes the waiting work on its next tick")
        return
    echo(
        "sent: " + ", ".join(WAKE_AFTER_ADOPTION) + " (the waiting work goes on once a worker runs)"
    )
