"""The comparison `callsync db adopt` prints and the additions it makes.

callsync's shape is its schema at head: the seeds' tables, enums, constraints and indexes, and
callsync's own tables, columns, functions, triggers and views. Against a team's database, each
difference is one of: something callsync lacks there and adds (additive); something of the
team's that stays as it is (kept, and said); or something that would break callsync, which
refuses the whole adoption (refused). Nothing of the team's is ever dropped or changed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from app.adopt.catalog import Column, Schema, Table, key_of, unique_keys, unnamed

# Tables callsync writes only through `callsync agency add`: a NOT NULL column of the team's
# there breaks that command, not the work.
WRITTEN_BY_CLI_ONLY = frozenset({"agencies"})
# Functions the old system may already hold under these names; the team's version stays.
KEPT_IF_PRESENT = frozenset({"invoke_bubble_sync_processor()", "invoke_bubble_sync_retry()"})
# Columns of an old front end's calls table, and the callsync column that now says the same:
# adopt keeps them written from callsync's, by a trigger of its own.
LEGACY_CALL_COLUMNS = {"ended_at": "ended", "started_at": "joined"}
LEGACY_TRIGGER = "callsync_legacy_call_columns"
# Columns of callsync's that say what the team's rows already know: when one is added to a
# table holding rows, it is filled from them.
FILLED_WHEN_ADDED = {
    ("enrichment_queue", "agency_id"): (
        "the agency of each item's call",
        "UPDATE public.enrichment_queue AS q SET agency_id = c.agency_id "
        "FROM public.calls AS c WHERE c.id = q.call_id",
    ),
}
# The order constraints are added in: keys before the checks and references that need them.
CONSTRAINT_ORDER = {"p": 0, "u": 1, "x": 2, "c": 3, "f": 4}


@dataclass(frozen=True)
class Step:
    """One addition. `fallback` is tried when the team's rows break a unique index."""

    what: str
    sql: str
    fallback: str | None = None


@dataclass
class Plan:
    steps: list[Step] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    created_tables: list[str] = field(default_factory=list)

    def add(self, what: str, sql: str, fallback: str | None = None) -> None:
        self.steps.append(Step(what, sql, fallback))


@dataclass(frozen=True)
class Facts:
    """What the comparison needs to know beyond the two schemas."""

    populated: frozenset[str]  # the team's tables that hold rows
    adopted_at: str  # now, as a timestamptz literal
    row_security: bool  # Supabase's API roles exist: tables we create get RLS enabled


def plan(theirs: Schema, ours: Schema, facts: Facts) -> Plan:
    result = Plan()
    _enums(result, theirs, ours)
    _tables(result, theirs, ours, facts)
    _functions(result, theirs, ours)
    _constraints(result, theirs, ours, facts)
    _indexes(result, theirs, ours, facts)
    _views(result, theirs, ours)
    _triggers(result, theirs, ours)
    _legacy_call_columns(result, theirs, ours)
    if facts.row_security:
        for table in result.created_tables:
            result.add(
                f"{table}: row level security on (no policy: the API roles see nothing)",
                f"ALTER TABLE public.{q(table)} ENABLE ROW LEVEL SECURITY",
            )
    return result


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _enums(result: Plan, theirs: Schema, ours: Schema) -> None:
    for name, labels in ours.enums.items():
        if name not in theirs.enums:
            values = ", ".join(f"'{label}'" for label in labels)
            result.add(f"type {name}: created", f"CREATE TYPE public.{q(name)} AS ENUM ({values})")
            continue
        for label in labels:
            if label not in theirs.enums[name]:
                result.add(
                    f"type {name}: adds value '{label}'",
                    f"ALTER TYPE public.{q(name)} ADD VALUE IF NOT EXISTS '{label}'",
                )
        for label in theirs.enums[name]:
            if label not in labels:
                result.kept.append(f"type {name}: value '{label}' of the team's")


def _tables(result: Plan, theirs: Schema, ours: Schema, facts: Facts) -> None:
    for name, table in ours.tables.items():
        if name == "alembic_version":
            continue  # the stamp creates it
        if name not in theirs.tables:
            result.created_tables.append(name)
            columns = ",\n    ".join(
                _column(column, shape) for column, shape in table.columns.items()
            )
            result.add(
                f"table {name}: created", f"CREATE TABLE public.{q(name)} (\n    {columns}\n)"
            )
            continue
        populated = name in facts.populated
        _columns(result, name, theirs.tables[name], table, populated=populated)


def _columns(result: Plan, name: str, theirs: Table, ours: Table, *, populated: bool) -> None:
    for column, shape in ours.columns.items():
        there = theirs.columns.get(column)
        if there is None:
            relaxed = populated and shape.not_null and shape.default is None
            added = Column(shape.type, shape.not_null and not relaxed, shape.default)
            note = " (nullable: the rows already there have no value for it)" if relaxed else ""
            result.add(
                f"{name}.{column}: added, {shape.type}{note}", _add_column(name, column, added)
            )
            if populated and (name, column) in FILLED_WHEN_ADDED:
                what, sql = FILLED_WHEN_ADDED[name, column]
                result.add(f"{name}.{column}: filled with {what}", sql)
            continue
        _compare_column(result, name, column, there, shape)
    for column, there in theirs.columns.items():
        if column in ours.columns:
            continue
        if there.not_null and there.default is None and name not in WRITTEN_BY_CLI_ONLY:
            result.refused.append(
                f"{name}.{column} is NOT NULL without a default: callsync inserts rows without it"
            )
        elif name == "calls" and column in LEGACY_CALL_COLUMNS:
            continue  # said by _legacy_call_columns
        else:
            result.kept.append(f"{name}.{column}: the team's column ({there.type}), not written")


def _compare_column(result: Plan, table: str, column: str, there: Column, ours: Column) -> None:
    where = f"{table}.{column}"
    if there.type != ours.type:
        result.refused.append(f"{where} is {there.type} here; callsync needs {ours.type}")
        return
    if there.not_null and not ours.not_null and there.default is None:
        if table not in WRITTEN_BY_CLI_ONLY:
            result.refused.append(f"{where} is NOT NULL here; callsync may leave it empty")
    elif ours.not_null and not there.not_null:
        result.kept.append(f"{where}: nullable here (callsync's is NOT NULL)")
    if there.default != ours.default:
        result.kept.append(f"{where}: default {there.default} here (callsync's: {ours.default})")


def _add_column(table: str, column: str, shape: Column) -> str:
    return f"ALTER TABLE public.{q(table)} ADD COLUMN {_column(column, shape)}"


def _column(column: str, shape: Column) -> str:
    default = f" DEFAULT {shape.default}" if shape.default is not None else ""
    not_null = " NOT NULL" if shape.not_null else ""
    return f"{q(column)} {shape.type}{default}{not_null}"


def _functions(result: Plan, theirs: Schema, ours: Schema) -> None:
    for signature, (definition, is_trigger) in ours.functions.items():
        there = theirs.functions.get(signature)
        if there is None:
            result.add(f"function {signature}: created", definition)
            name = signature.split("(")[0]
            if any(other.split("(")[0] == name for other in theirs.functions):
                result.kept.append(
                    f"function {name}: the team's overloads stay beside callsync's "
                    "(a call that fits both is ambiguous: check the old callers)"
                )
        elif " ".join(there[0].split()) != " ".join(definition.split()):
            if is_trigger or there[1] or signature in KEPT_IF_PRESENT:
                result.kept.append(f"function {signature}: the team's own, kept as it is")
            else:
                result.refused.append(
                    f"function {signature} differs from callsync's, which calls it"
                )


def _constraints(result: Plan, theirs: Schema, ours: Schema, facts: Facts) -> None:
    wanted = [
        (table, name, kind, definition)
        for table, shape in ours.tables.items()
        for name, (kind, definition) in shape.constraints.items()
    ]
    wanted.sort(key=lambda item: CONSTRAINT_ORDER.get(item[2], 9))
    for table, name, kind, definition in wanted:
        if table == "alembic_version":
            continue
        there = theirs.tables.get(table)
        if there is None:
            result.add(f"{table}: constraint {name}", _add_constraint(table, name, definition))
        elif name in there.constraints:
            if there.constraints[name][1] != definition:
                result.kept.append(
                    f"{table}: constraint {name} here is "
                    f"{there.constraints[name][1]} (callsync's: {definition})"
                )
        elif kind in ("u", "p") and key_of(definition) in unique_keys(there):
            result.kept.append(f"{table}: the team's key serves as {name} ({definition})")
        else:
            # Existing rows are not re-checked (NOT VALID): they are the team's; new ones are.
            later = " NOT VALID" if kind in ("c", "f") and table in facts.populated else ""
            result.add(
                f"{table}: constraint {name} added{later.lower()}",
                _add_constraint(table, name, definition) + later,
            )


def _add_constraint(table: str, name: str, definition: str) -> str:
    return f"ALTER TABLE public.{q(table)} ADD CONSTRAINT {q(name)} {definition}"


def _indexes(result: Plan, theirs: Schema, ours: Schema, facts: Facts) -> None:
    taken = {name for table in theirs.tables.values() for name in _relation_names(table)}
    for table, shape in ours.tables.items():
        there = theirs.tables.get(table)
        same = {unnamed(d) for d in there.indexes.values()} if there else set()
        for name, definition in shape.indexes.items():
            if there is not None and name in there.indexes:
                if unnamed(there.indexes[name]) != unnamed(definition):
                    result.kept.append(f"{table}: index {name} here is {there.indexes[name]}")
            elif unnamed(definition) in same:
                result.kept.append(f"{table}: the team's index serves as {name}")
            elif name in taken:
                result.refused.append(f"{table}: the name {name} is taken by another relation")
            else:
                result.add(
                    f"{table}: index {name}",
                    definition,
                    _unique_from_now(definition, table, there, facts),
                )


def _relation_names(table: Table) -> Iterator[str]:
    yield from table.indexes
    yield from (name for name, (kind, _) in table.constraints.items() if kind in ("p", "u", "x"))


def _unique_from_now(definition: str, table: str, there: Table | None, facts: Facts) -> str | None:
    """For a unique index the team's rows break (the same webhook delivery queued twice): the
    same index over the rows from now on, so the old rows stay as they are."""
    if not definition.startswith("CREATE UNIQUE") or table not in facts.populated:
        return None
    if there is None or "created_at" not in there.columns:
        return None
    joiner = " AND " if " WHERE " in definition else " WHERE "
    return f"{definition}{joiner}(created_at > '{facts.adopted_at}'::timestamptz)"


def _views(result: Plan, theirs: Schema, ours: Schema) -> None:
    for name, definition in ours.views.items():
        if name not in theirs.views:
            result.add(f"view {name}: created", f"CREATE VIEW public.{q(name)} AS {definition}")
        elif " ".join(theirs.views[name].split()) != " ".join(definition.split()):
            result.kept.append(f"view {name}: the team's own, kept as it is")


def _triggers(result: Plan, theirs: Schema, ours: Schema) -> None:
    for table, shape in ours.tables.items():
        there = theirs.tables.get(table)
        present = there.triggers if there else {}
        for name, definition in shape.triggers.items():
            if name not in present:
                result.add(f"{table}: trigger {name}", definition)
            elif unnamed(present[name]) != unnamed(definition):
                # The team's trigger of the documented name stays. Its conditions are its own
                # (its columns, not callsync's), so callsync's fires beside it; both queue
                # with the same unique key, so an item is queued once.
                own = f"callsync_{name}"
                result.add(f"{table}: trigger {own}", definition.replace(name, own, 1))
                result.kept.append(f"{table}: trigger {name} is the team's; callsync's is {own}")


def _legacy_call_columns(result: Plan, theirs: Schema, ours: Schema) -> None:
    there, shape = theirs.tables.get("calls"), ours.tables.get("calls")
    if there is None or shape is None:
        return
    pairs = {
        old: new
        for old, new in LEGACY_CALL_COLUMNS.items()
        if old in there.columns and old not in shape.columns
    }
    if not pairs:
        return
    body = "\n".join(
        f"    IF NEW.{q(new)} IS NOT NULL THEN NEW.{q(old)} := NEW.{q(new)}; END IF;"
        for old, new in pairs.items()
    )
    result.add(
        f"function {LEGACY_TRIGGER}(): created",
        f"""
CREATE FUNCTION public.{LEGACY_TRIGGER}() RETURNS trigger LANGUAGE plpgsql AS $$
-- callsync writes {", ".join(pairs.values())}; the old front end reads {", ".join(pairs)}.
BEGIN
{body}
    RETURN NEW;
END
$$""",
    )
    result.add(
        f"calls: trigger {LEGACY_TRIGGER}",
        f"CREATE TRIGGER {LEGACY_TRIGGER} BEFORE INSERT OR UPDATE ON public.calls "
        f"FOR EACH ROW EXECUTE FUNCTION public.{LEGACY_TRIGGER}()",
    )
    for old, new in pairs.items():
        result.kept.append(f"calls.{old}: the team's, kept written from calls.{new}")
