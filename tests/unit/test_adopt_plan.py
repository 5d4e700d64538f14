"""The rules of `callsync db adopt`'s comparison, on schemas built by hand."""

from __future__ import annotations

from app.adopt.catalog import Column, Schema, Table
from app.adopt.plan import Facts, plan

FACTS = Facts(
    populated=frozenset({"calls"}), adopted_at="2026-12-01T00:00:00+00:00", row_security=True
)
UUID = Column("uuid", True, None)


def schemas(theirs: Table, ours: Table) -> tuple[Schema, Schema]:
    return Schema(tables={"calls": theirs}), Schema(tables={"calls": ours})


def test_a_missing_required_column_is_added_nullable_on_a_table_with_rows() -> None:
    theirs, ours = schemas(
        Table({"id": UUID}), Table({"id": UUID, "raw": Column("jsonb", True, None)})
    )
    result = plan(theirs, ours, FACTS)
    assert [s.sql for s in result.steps] == ['ALTER TABLE public."calls" ADD COLUMN "raw" jsonb']
    assert not result.refused


def test_a_column_of_another_type_or_a_required_column_callsync_cannot_fill_is_refused() -> None:
    theirs, ours = schemas(
        Table({"id": Column("text", True, None), "region": Column("text", True, None)}),
        Table({"id": UUID}),
    )
    assert plan(theirs, ours, FACTS).refused == [
        "calls.id is text here; callsync needs uuid",
        "calls.region is NOT NULL without a default: callsync inserts rows without it",
    ]


def test_the_teams_unique_index_serves_as_callsyncs_key() -> None:
    key = "UNIQUE (agency_id, ultravox_call_id)"
    theirs = Table(
        {"id": UUID},
        indexes={
            "calls_uv": "CREATE UNIQUE INDEX calls_uv ON public.calls USING btree (agency_id, ultravox_call_id)"
        },
    )
    ours = Table({"id": UUID}, constraints={"calls_agency_id_ultravox_call_id_key": ("u", key)})
    result = plan(*schemas(theirs, ours), FACTS)
    assert result.steps == []
    assert result.kept == [
        f"calls: the team's key serves as calls_agency_id_ultravox_call_id_key ({key})"
    ]


def test_a_function_of_callsyncs_name_doing_something_else_is_refused_unless_it_is_a_trigger() -> (
    None
):
    ours = Schema(
        functions={
            "claim(n integer)": ("CREATE FUNCTION claim ... ours", False),
            "queue() ": ("CREATE FUNCTION queue ... ours", True),
        }
    )
    theirs = Schema(
        functions={
            "claim(n integer)": ("CREATE FUNCTION claim ... theirs", False),
            "queue() ": ("CREATE FUNCTION queue ... theirs", True),
        }
    )
    result = plan(theirs, ours, FACTS)
    assert result.refused == ["function claim(n integer) differs from callsync's, which calls it"]
    assert result.kept == ["function queue() : the team's own, kept as it is"]


def test_a_unique_index_on_rows_gets_a_fallback_from_the_adoption_on() -> None:
    index = "CREATE UNIQUE INDEX uq ON public.calls USING btree (a)"
    theirs = Table({"id": UUID, "created_at": Column("timestamp with time zone", True, "now()")})
    result = plan(*schemas(theirs, Table({"id": UUID}, indexes={"uq": index})), FACTS)
    assert result.steps[0].fallback == (
        f"{index} WHERE (created_at > '2026-12-01T00:00:00+00:00'::timestamptz)"
    )


def test_an_enum_gains_the_values_callsync_needs_and_keeps_the_teams() -> None:
    theirs = Schema(enums={"sync_job_status": ["pending", "paused"]})
    ours = Schema(enums={"sync_job_status": ["pending", "cancelled"]})
    result = plan(theirs, ours, FACTS)
    assert [s.sql for s in result.steps] == [
        "ALTER TYPE public.\"sync_job_status\" ADD VALUE IF NOT EXISTS 'cancelled'"
    ]
    assert result.kept == ["type sync_job_status: value 'paused' of the team's"]


def test_enrichment_items_get_their_calls_agency_when_the_column_is_added() -> None:
    theirs = Schema(tables={"enrichment_queue": Table({"id": UUID})})
    ours = Schema(tables={"enrichment_queue": Table({"id": UUID, "agency_id": UUID})})
    facts = Facts(
        populated=frozenset({"enrichment_queue"}),
        adopted_at="2026-12-01T00:00:00+00:00",
        row_security=True,
    )
    assert [s.sql for s in plan(theirs, ours, facts).steps] == [
        'ALTER TABLE public."enrichment_queue" ADD COLUMN "agency_id" uuid',
        "UPDATE public.enrichment_queue AS q SET agency_id = c.agency_id "
        "FROM public.calls AS c WHERE c.id = q.call_id",
    ]
