"""What a database's `public` schema holds, read from the catalogs: the shape `callsync db
adopt` compares between the team's database and callsync's own (a scratch database at head)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sqlalchemy import Connection, text


@dataclass(frozen=True)
class Column:
    type: str
    not_null: bool
    default: str | None


@dataclass
class Table:
    columns: dict[str, Column] = field(default_factory=dict)
    constraints: dict[str, tuple[str, str]] = field(default_factory=dict)  # name: (kind, def)
    indexes: dict[str, str] = field(default_factory=dict)  # name: CREATE INDEX statement
    triggers: dict[str, str] = field(default_factory=dict)  # name: CREATE TRIGGER statement


@dataclass
class Schema:
    tables: dict[str, Table] = field(default_factory=dict)
    enums: dict[str, list[str]] = field(default_factory=dict)
    functions: dict[str, tuple[str, bool]] = field(default_factory=dict)  # sig: (def, trigger?)
    views: dict[str, str] = field(default_factory=dict)


COLUMNS = text("""
    SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
           pg_get_expr(d.adbin, d.adrelid)
    FROM pg_class AS c
    JOIN pg_attribute AS a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    LEFT JOIN pg_attrdef AS d ON d.adrelid = c.oid AND d.adnum = a.attnum
    WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
    ORDER BY c.relname, a.attnum
""")
CONSTRAINTS = text("""
    SELECT c.relname, k.conname, k.contype, pg_get_constraintdef(k.oid)
    FROM pg_constraint AS k JOIN pg_class AS c ON c.oid = k.conrelid
    WHERE c.relnamespace = 'public'::regnamespace
    ORDER BY c.relname, k.conname
""")
INDEXES = text("""
    SELECT t.relname, i.relname, pg_get_indexdef(i.oid)
    FROM pg_index AS x
    JOIN pg_class AS i ON i.oid = x.indexrelid
    JOIN pg_class AS t ON t.oid = x.indrelid
    WHERE t.relnamespace = 'public'::regnamespace
      AND NOT EXISTS (SELECT 1 FROM pg_constraint AS k WHERE k.conindid = x.indexrelid)
    ORDER BY t.relname, i.relname
""")
TRIGGERS = text("""
    SELECT c.relname, t.tgname, pg_get_triggerdef(t.oid)
    FROM pg_trigger AS t JOIN pg_class AS c ON c.oid = t.tgrelid
    WHERE c.relnamespace = 'public'::regnamespace AND NOT t.tgisinternal
    ORDER BY c.relname, t.tgname
""")
# Functions of extensions (uuid-ossp and pgcrypto may live in public) are the extension's.
FUNCTIONS = text("""
    SELECT p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
           pg_get_functiondef(p.oid), p.prorettype = 'trigger'::regtype
    FROM pg_proc AS p
    WHERE p.pronamespace = 'public'::regnamespace AND p.prokind = 'f'
      AND NOT EXISTS (
          SELECT 1 FROM pg_depend AS d
          WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
      )
    ORDER BY 1
""")
ENUMS = text("""
    SELECT t.typname, array_agg(e.enumlabel::text ORDER BY e.enumsortorder)
    FROM pg_type AS t JOIN pg_enum AS e ON e.enumtypid = t.oid
    WHERE t.typnamespace = 'public'::regnamespace
    GROUP BY t.typname ORDER BY t.typname
""")
VIEWS = text("SELECT viewname, definition FROM pg_views WHERE schemaname = 'public'")


def read_schema(connection: Connection) -> Schema:
    schema = Schema()
    for table, name, type_, not_null, default in connection.execute(COLUMNS):
        schema.tables.setdefault(table, Table()).columns[name] = Column(type_, not_null, default)
    for table, name, kind, definition in connection.execute(CONSTRAINTS):
        schema.tables[table].constraints[name] = (kind, definition)
    for table, name, definition in connection.execute(INDEXES):
        schema.tables[table].indexes[name] = definition
    for table, name, definition in connection.execute(TRIGGERS):
        schema.tables[table].triggers[name] = definition
    for signature, definition, is_trigger in connection.execute(FUNCTIONS):
        schema.functions[signature] = (definition, is_trigger)
    schema.enums = {name: list(labels) for name, labels in connection.execute(ENUMS)}
    schema.views = dict(connection.execute(VIEWS).all())
    return schema


def unnamed(definition: str) -> str:
    """An index or trigger statement without its own name, to compare what it does."""
    statement = " ".join(definition.split())
    return re.sub(
        r"^(CREATE (?:UNIQUE )?INDEX|CREATE (?:CONSTRAINT )?TRIGGER) \S+ ", r"\1 ", statement
    )


def key_of(definition: str) -> str:
    """`UNIQUE (a, b)` or `PRIMARY KEY (a, b)`: `(a, b)`."""
    return definition.removeprefix("UNIQUE ").removeprefix("PRIMARY KEY ")


def unique_keys(table: Table) -> set[str]:
    """The column lists the table holds unique, by constraint or by a full unique index:
    what ON CONFLICT (...) can infer."""
    keys = {key_of(d) for kind, d in table.constraints.values() if kind in ("u", "p")}
    for definition in table.indexes.values():
        match = re.fullmatch(r"CREATE UNIQUE INDEX \S+ ON \S+ USING btree (\(.*\))", definition)
        if match:
            keys.add(match.group(1))
    return keys
