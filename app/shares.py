"""Fair shares: a claim of pending rows takes them round-robin across agencies (or whatever
a queue shares its work by), not oldest first over all of them, so that one agency's backlog
does not hold another's new work back.

One statement, every row locked with FOR UPDATE SKIP LOCKED as it is read:

1. `groups`: the agencies with pending rows, each with its first row's key (its head), one
   index probe each: a skip scan over the partial index on (agency, order...) WHERE status =
   'pending', so a big backlog costs nothing here and many agencies cost a probe each;
2. `shares`: up to `limit` of those agencies, in random order (when there are more agencies
   than rows to take, each is as likely to be served as the others), each taking its share,
   ceil(limit / agencies), of its own rows in the queue's order from its head on (a LATERAL
   per agency);
3. `fill`: what the shares left of `limit` (agencies with less than a share waiting), taken
   in the queue's order over every agency, as a claim without shares would, from the oldest
   head on.

Inside an agency the order is the queue's own (FIFO, or priority then age): its share is its
first rows, and the fill takes its next ones.

Every condition on the agency is on `group`, the very expression the index is on, and each
scan orders by (group, order...), which that index alone gives without a sort. An index on
the bare agency column would offer the planner another plan for a share, cheap-looking when
it takes every agency to hold as many rows as the others: read the agency's rows and sort
them, which reads a big agency's whole backlog. So where such an index exists (the seed's
idx_webhook_queue_agency, idx_sync_queue_record led by table_name), the queue shares by an
expression of its own (app.webhooks.queries, app.bubble.queries).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    CTE,
    ColumnElement,
    Select,
    Table,
    any_,
    func,
    literal,
    select,
    true,
    tuple_,
    union_all,
)
from sqlalchemy.dialects.postgresql import array
from sqlalchemy.sql.util import ClauseAdapter

from app.models import ProcessingStatus

# A queue's claim is the same statement every time; building it anew (two aliases of the
# table, the expression adapted to each, four CTEs) took longer than running it. Built once
# per queue, limit and conditions: keyed by the identity of the parts, which the entry keeps
# alive, so callers pass the same condition objects each time (module constants).
_built: dict[tuple[Any, ...], tuple[tuple[Any, ...], CTE]] = {}


def pending_by_share(
    table: Table,
    *,
    group: ColumnElement[Any],
    order: Sequence[Any],
    conditions: Sequence[ColumnElement[bool]],
    limit: int,
    name: str,
) -> CTE:
    """Ids of up to `limit` pending rows meeting `conditions`, locked, each agency (`group`,
    an expression of `table`'s row) taking its share in the order of `order` (columns of
    `table`)."""
    parts = (table, group, *order, *conditions)
    key = (*(id(part) for part in parts), len(order), limit, name)
    found = _built.get(key)
    if found is None:
        if len(_built) >= 64:  # conditions made anew on each call: do not grow for ever
            _built.clear()
        found = _built[key] = (parts, _build(table, group, order, conditions, limit, name))
    return found[1]


def _build(
    table: Table,
    group: ColumnElement[Any],
    order: Sequence[Any],
    conditions: Sequence[ColumnElement[bool]],
    limit: int,
    name: str,
) -> CTE:
    pending = table.c.status == ProcessingStatus.pending
    groups = _groups(table, group, order, name)
    chosen = (
        select(groups, func.count().over().label("group_count"))
        .order_by(func.random())
        .limit(limit)
        .subquery(f"{name}_chosen")
    )
    share = (literal(limit) + chosen.c.group_count - 1) // chosen.c.group_count
    own = (
        select(table.c.id)
        .where(
            pending,
            # = ANY rather than =: an equality would let the planner walk the queue's own
            # index in the queue's order and filter on the agency (it assumes every agency
            # holds as many rows), reading a big agency's backlog before a small one's rows.
            group == any_(array([chosen.c.group])),
            # From the agency's head on: the finished rows before it, still in the index
            # until vacuum, are not walked again.
            tuple_(group, *order) >= tuple_(chosen.c.group, *_heads(chosen, order)),
            *conditions,
        )
        .order_by(group, *order)
        .limit(share)
        .with_for_update(skip_locked=True)
        .lateral(f"{name}_own")
    )
    shares = (
        select(own.c.id).select_from(chosen).join(own, true()).limit(limit).cte(f"{name}_shares")
    )
    taken = select(func.count()).select_from(shares).scalar_subquery()
    # The oldest head of all is the queue's first pending row: the fill starts there too,
    # each of its columns a value of its own so that the index can start from them.
    heads = _heads(groups, order)
    oldest = [select(head).order_by(*heads).limit(1).scalar_subquery() for head in heads]
    fill = (
        select(table.c.id)
        .where(
            pending,
            tuple_(*order) >= tuple_(*oldest),
            *conditions,
            table.c.id.not_in(select(shares.c.id)),
        )
        .order_by(*order)
        .limit(literal(limit) - taken)
        .with_for_update(skip_locked=True)
        .cte(f"{name}_fill")
    )
    return union_all(select(shares.c.id), select(fill.c.id)).cte(name)


def _groups(table: Table, group: ColumnElement[Any], order: Sequence[Any], name: str) -> CTE:
    """The distinct values of `group` among pending rows, each with its first row's `order`
    columns (its head): the first group, then each next one found by one probe of the index
    past the one before (a recursive skip scan)."""
    first_probe, next_probe = table.alias(f"{name}_first"), table.alias(f"{name}_probe")
    first_group, next_group = _on(first_probe, group), _on(next_probe, group)
    first: Select[Any] = (
        select(first_group.label("group"), *_head_of(first_probe, order))
        .where(first_probe.c.status == ProcessingStatus.pending, first_group.is_not(None))
        .order_by(first_group, *(first_probe.c[column.key] for column in order))
        .limit(1)
    )
    groups = first.cte(f"{name}_groups", recursive=True)
    after = (
        select(next_group.label("group"), *_head_of(next_probe, order))
        .where(next_probe.c.status == ProcessingStatus.pending, next_group > groups.c.group)
        .order_by(next_group, *(next_probe.c[column.key] for column in order))
        .limit(1)
        .lateral(f"{name}_next")
    )
    return groups.union_all(select(after).select_from(groups).join(after, true()))


def _on(alias: Any, expression: ColumnElement[Any]) -> ColumnElement[Any]:
    """`expression`, of the table's row, on `alias`'s row instead."""
    adapted: ColumnElement[Any] = ClauseAdapter(alias).traverse(expression)
    return adapted


def _head_of(alias: Any, columns: Sequence[Any]) -> list[Any]:
    """The row's `columns`, named as a head's, and its id: with a column the index lacks the
    probe is a plain index scan, which steps over finished rows not yet vacuumed away (each
    needs its heap page either way) faster than an index-only scan does."""
    heads = [alias.c[column.key].label(f"head_{column.key}") for column in columns]
    return [*heads, alias.c.id.label("head_id")]


def _heads(chosen: Any, columns: Sequence[Any]) -> list[Any]:
    return [chosen.c[f"head_{column.key}"] for column in columns]
