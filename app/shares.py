"""Fair shares: a claim of pending rows takes them round-robin across agencies (or whatever
column a queue shares its work by), not oldest first over all of them, so that one agency's
backlog does not hold another's new work back.

One statement, every row locked with FOR UPDATE SKIP LOCKED as it is read:

1. `groups`: the agencies with pending rows, one index probe each (a skip scan over the
   partial index on (agency, order...) WHERE status = 'pending'), so a big backlog costs
   nothing here and many agencies cost a probe each;
2. `shares`: up to `limit` of those agencies, in random order (when there are more agencies
   than rows to take, each is as likely to be served as the others), each taking its share,
   ceil(limit / agencies), of its own rows in the queue's order (a LATERAL per agency);
3. `fill`: what the shares left of `limit` (agencies with less than a share waiting), taken
   in the queue's order over every agency, as a claim without shares would.

Inside an agency the order is the queue's own (FIFO, or priority then age): its share is its
first rows, and the fill takes its next ones.
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

from app.models import ProcessingStatus


def pending_by_share(
    table: Table,
    *,
    group: str,
    order: Sequence[Any],
    conditions: Sequence[ColumnElement[bool]],
    limit: int,
    name: str,
) -> CTE:
    """Ids of up to `limit` pending rows meeting `conditions`, locked, each agency (`group`,
    a column of `table`) taking its share in the order of `order` (columns of `table`)."""
    pending = table.c.status == ProcessingStatus.pending
    groups = _groups(table, group, order, name)
    chosen = (
        select(groups, func.count().over().label("groups"))
        .order_by(func.random())
        .limit(limit)
        .subquery(f"{name}_chosen")
    )
    share = (literal(limit) + chosen.c.groups - 1) // chosen.c.groups
    key = tuple_(table.c[group], *order)
    own = (
        select(table.c.id)
        .where(
            pending,
            # = ANY rather than =: with an equality the planner may walk the queue's own
            # index and filter on the agency (it assumes every agency holds as many rows),
            # reading a big agency's whole backlog before a small one's rows. This way only
            # the index on (agency, order...) gives the order asked for.
            table.c[group] == any_(array([chosen.c.group])),
            # From the agency's first pending row on: the finished rows before it, still in
            # the index until vacuum, are not walked again.
            key >= tuple_(chosen.c.group, *_heads(chosen, order)),
            *conditions,
        )
        .order_by(table.c[group], *order)
        .limit(share)
        .with_for_update(skip_locked=True)
        .lateral(f"{name}_own")
    )
    shares = (
        select(own.c.id).select_from(chosen).join(own, true()).limit(limit).cte(f"{name}_shares")
    )
    taken = select(func.count()).select_from(shares).scalar_subquery()
    fill = (
        select(table.c.id)
        .where(pending, *conditions, table.c.id.not_in(select(shares.c.id)))
        .order_by(*order)
        .limit(literal(limit) - taken)
        .with_for_update(skip_locked=True)
        .cte(f"{name}_fill")
    )
    return union_all(select(shares.c.id), select(fill.c.id)).cte(name)


def _groups(table: Table, group: str, order: Sequence[Any], name: str) -> CTE:
    """The distinct values of `group` among pending rows, each with its first row's `order`
    columns (its head): the first group, then each next one found by one probe of the index
    past the one before (a recursive skip scan). Each probe orders by (group, order...) as the
    pending index does, which no other index of the table can give: an index on `group`
    alone would also walk the finished rows."""
    first_probe, next_probe = table.alias(f"{name}_first"), table.alias(f"{name}_probe")
    first: Select[Any] = (
        select(first_probe.c[group].label("group"), *_labelled(first_probe, order))
        .where(first_probe.c.status == ProcessingStatus.pending, first_probe.c[group].is_not(None))
        .order_by(first_probe.c[group], *_on(first_probe, order))
        .limit(1)
    )
    groups = first.cte(f"{name}_groups", recursive=True)
    after = (
        select(next_probe.c[group].label("group"), *_labelled(next_probe, order))
        .where(
            next_probe.c.status == ProcessingStatus.pending,
            next_probe.c[group] > groups.c.group,
        )
        .order_by(next_probe.c[group], *_on(next_probe, order))
        .limit(1)
        .lateral(f"{name}_next")
    )
    return groups.union_all(select(after).select_from(groups).join(after, true()))


def _on(alias: Any, columns: Sequence[Any]) -> list[Any]:
    """The same columns of `alias`."""
    return [alias.c[column.key] for column in columns]


def _labelled(alias: Any, columns: Sequence[Any]) -> list[Any]:
    """The same columns of `alias`, named as the head's, and its id: with a column the index
    lacks the probe is a plain index scan, which steps over finished rows not yet vacuumed
    away (each needs its heap page either way) faster than an index-only scan does."""
    heads = [alias.c[column.key].label(f"head_{column.key}") for column in columns]
    return [*heads, alias.c.id.label("head_id")]


def _heads(chosen: Any, columns: Sequence[Any]) -> list[Any]:
    return [chosen.c[f"head_{column.key}"] for column in columns]
