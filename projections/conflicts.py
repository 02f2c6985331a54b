"""Sync conflicts: who saved before the organizer, and whether that is settled.

One row per conflict (``conflict_key`` within a meeting), opened by
``ConflictDetected`` and marked resolved by ``ConflictResolved`` (the
organizer's save arrived). Resolved conflicts stay, so the history answers
"how often does this happen" as well as "what is open now".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from projections.base import (
    Bulk,
    Handler,
    Projection,
    Row,
    Str,
    as_dict,
    in_column_order,
    metadata,
    upserter,
)

conflicts_table = sa.Table(
    "proj_conflicts", metadata,
    sa.Column("meeting_id", Str, primary_key=True),
    sa.Column("conflict_key", Str, primary_key=True),
    sa.Column("kind", Str, nullable=False),  # the rule id
    sa.Column("attendee", Str, nullable=False),
    sa.Column("organizer", Str, nullable=False),
    sa.Column("mailbox", Str),
    sa.Column("exchange_id", Str),
    sa.Column("state", Str, nullable=False),  # open | resolved
    sa.Column("detected_at", Str, nullable=False),
    sa.Column("resolved_at", Str),
)

_write = upserter(conflicts_table)
_resolve = Bulk(lambda _: conflicts_table.update().where(
    conflicts_table.c.meeting_id == sa.bindparam("mid"),
    conflicts_table.c.conflict_key == sa.bindparam("ck"),
).values(state="resolved", resolved_at=sa.bindparam("at")))


class ConflictsProjection(Projection):
    """Rows opened and closed by the ledger's conflict decisions."""

    name = "conflicts"
    tables = (conflicts_table,)

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], Row] = {}
        self.resolved: dict[tuple[str, str], str] = {}  # rows from earlier batches

    def handlers(self) -> Mapping[str, Handler]:
        return {"Meeting.ConflictDetected": self.on_detected,
                "Meeting.ConflictResolved": self.on_resolved}

    def on_detected(self, meeting_id: str, state: dict[str, Any], position: int) -> None:
        key = (meeting_id, state["conflict_key"])
        self.resolved.pop(key, None)
        self.rows[key] = {
            "meeting_id": meeting_id, "conflict_key": key[1], "kind": state["rule"],
            "attendee": state["attendee"], "organizer": state["organizer"],
            "mailbox": state["mailbox"], "exchange_id": state["exchange_id"], "state": "open",
            "detected_at": state["timestamp"], "resolved_at": None}

    def on_resolved(self, meeting_id: str, state: dict[str, Any], position: int) -> None:
        key = (meeting_id, state["conflict_key"])
        row = self.rows.get(key)
        if row is not None:
            row["state"], row["resolved_at"] = "resolved", state["timestamp"]
        else:
            self.resolved[key] = state["timestamp"]

    def flush(self, conn: Connection) -> None:
        _write(conn, self.rows.values())
        _resolve(conn, [{"mid": m, "ck": k, "at": at}
                        for (m, k), at in sorted(self.resolved.items())])
        self.rows, self.resolved = {}, {}

    def final_rows(self) -> Iterable[tuple[sa.Table, list[Sequence[Any]]]]:
        # ``resolved`` holds only resolutions of rows never opened: nothing to update
        yield conflicts_table, in_column_order(conflicts_table, self.rows.values())


COLUMNS = ("meeting_id", "kind", "attendee", "organizer", "state", "detected_at",
           "resolved_at")


def select_rows(conn: Connection, *, mailbox: str | None = None, kind: str | None = None,
                state: str | None = None) -> list[dict[str, Any]]:
    """Conflicts, oldest first; ``mailbox`` matches the attendee's or the organizer's."""
    t = conflicts_table
    q = sa.select(*(t.c[c] for c in COLUMNS)).order_by(
        t.c.detected_at, t.c.meeting_id, t.c.conflict_key)
    if mailbox is not None:
        mb = mailbox.lower()
        q = q.where(sa.or_(t.c.mailbox == mb, t.c.attendee == mb, t.c.organizer == mb))
    if kind is not None:
        q = q.where(t.c.kind == kind)
    if state is not None:
        q = q.where(t.c.state == state)
    return [as_dict(r) for r in conn.execute(q)]
