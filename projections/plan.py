"""The plan: calendar writes the ledger has decided and the calendars do not show yet.

A mirror of each meeting's pending writes (``ledger.writes`` decides them):
``WritesPlanned`` inserts or replaces a write by its key, ``WritesSettled``
removes keys once the calendars show the effect. The projection decides
nothing. Rows come out ordered by meeting id then write key, so two runs
over the same ledger execute the same writes in the same order.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from projections.base import (
    Handler,
    Projection,
    Str,
    as_dict,
    chunks,
    deleter,
    metadata,
    upserter,
)

plan_table = sa.Table(
    "proj_plan", metadata,
    sa.Column("meeting_id", Str, primary_key=True),
    sa.Column("key", Str, primary_key=True),  # the write's idempotency key
    sa.Column("target", Str, nullable=False),  # salesforce | exchange
    sa.Column("op", Str, nullable=False),  # create | update | delete | set-categories
    sa.Column("mailbox", Str),
    sa.Column("id", Str),  # the record written (None for creates)
    sa.Column("fields", sa.Text, nullable=False),  # JSON object
    sa.Column("reason", Str, nullable=False),
    sa.Column("notify_attendees", sa.Boolean, nullable=False),
    sa.Column("planned_at", Str, nullable=False),
)

_write = upserter(plan_table)
_settle = deleter(plan_table, "meeting_id", "key")


class PlanProjection(Projection):
    """Pending writes, replaced by key and removed once settled."""

    name = "plan"
    tables = (plan_table,)

    def __init__(self) -> None:
        #: Rows of ``proj_plan`` in column order, by (meeting id, write key).
        self.rows: dict[tuple[str, str], tuple[Any, ...]] = {}
        self.settled: set[tuple[str, str]] = set()

    def handlers(self) -> Mapping[str, Handler]:
        return {"Meeting.WritesPlanned": self.on_planned,
                "Meeting.WritesSettled": self.on_settled}

    def on_planned(self, meeting_id: str, state: dict[str, Any], position: int) -> None:
        at = state["timestamp"]
        rows, settled, dumps = self.rows, self.settled, orjson.dumps
        for w in state["writes"]:
            key = (meeting_id, w["key"])
            settled.discard(key)
            rows[key] = (meeting_id, key[1], w["target"], w["op"], w["mailbox"], w["id"],
                         dumps(w["fields"]).decode(), w["reason"],
                         bool(w["notify_attendees"]), at)

    def on_settled(self, meeting_id: str, state: dict[str, Any], position: int) -> None:
        for k in state["keys"]:
            key = (meeting_id, k)
            self.rows.pop(key, None)
            self.settled.add(key)

    def flush(self, conn: Connection) -> None:
        _settle.tuples(conn, sorted(self.settled))
        _write.tuples(conn, list(self.rows.values()))
        self.rows, self.settled = {}, set()

    def final_rows(self) -> Iterable[tuple[sa.Table, list[Sequence[Any]]]]:
        yield plan_table, list(self.rows.values())  # settled writes already left ``rows``


COLUMNS = ("target", "op", "meeting_id", "mailbox", "id", "fields", "reason",
           "notify_attendees")


def select_rows(conn: Connection, *, mailbox: str | None = None, kind: str | None = None,
                target: str | None = None, meeting_id: str | None = None,
                with_key: bool = False, ops: Collection[str] | None = None
                ) -> list[dict[str, Any]]:
    """Pending writes by meeting id then key; ``kind`` is the op, ``fields`` a dict.

    ``with_key`` adds the write's idempotency key (the sync's outbox needs it);
    ``ops``: only writes of these ops.
    """
    t = plan_table
    columns = (*COLUMNS, "key") if with_key else COLUMNS
    q = sa.select(*(t.c[c] for c in columns)).order_by(t.c.meeting_id, t.c.key)
    if mailbox is not None:
        q = q.where(t.c.mailbox == mailbox.lower())
    if kind is not None:
        q = q.where(t.c.op == kind)
    if ops is not None:
        q = q.where(t.c.op.in_(sorted(ops)))
    if target is not None:
        q = q.where(t.c.target == target)
    if meeting_id is not None:
        q = q.where(t.c.meeting_id == meeting_id)
    out = []
    for r in conn.execute(q):
        row = as_dict(r)
        row["fields"] = orjson.loads(row["fields"])
        row["notify_attendees"] = bool(row["notify_attendees"])
        out.append(row)
    return out


def keys_held_elsewhere(conn: Connection, keys: Collection[str], *, target: str | None,
                        mailbox: str | None) -> set[str]:
    """Those of the write ``keys`` the plan holds for another target or mailbox than these
    (``None``: any), i.e. outside the rows ``select_rows(target=, mailbox=)`` gives."""
    if not keys:
        return set()
    t = plan_table
    other = [c for c in (t.c.target != target if target is not None else None,
                         sa.or_(t.c.mailbox.is_(None), t.c.mailbox != mailbox.lower())
                         if mailbox is not None else None) if c is not None]
    if not other:
        return set()
    found: set[str] = set()
    for part in chunks(sorted(keys)):
        q = sa.select(t.c.key).where(t.c.key.in_(list(part)), sa.or_(*other))
        found.update(str(k) for k in conn.execute(q).scalars())
    return found
