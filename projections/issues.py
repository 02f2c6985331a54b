"""Sync issues and skips: which item did not sync, under which rule, and since when.

One row per issue (``issue_key`` within a meeting, i.e. rule + item), from
``SyncIssueRaised`` / ``SyncIssueResolved``. A re-raised issue replaces its
row (open again, new time). ``outlook_category`` tells what the Outlook item
should show: ``set`` while an issue that marks Outlook is open, ``clear``
once it is resolved (the "Error" category comes off), ``none`` for issues
that never touch Outlook (skips, and issues about Salesforce records).
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

issues_table = sa.Table(
    "proj_issues", metadata,
    sa.Column("meeting_id", Str, primary_key=True),
    sa.Column("issue_key", Str, primary_key=True),
    sa.Column("kind", Str, nullable=False),  # the rule id
    sa.Column("severity", Str, nullable=False),  # issue | skip
    sa.Column("direction", Str, nullable=False),  # to-salesforce | to-exchange
    sa.Column("mailbox", Str),
    sa.Column("exchange_id", Str),
    sa.Column("salesforce_id", Str),
    sa.Column("item_key", Str),
    sa.Column("message", Str, nullable=False),
    sa.Column("state", Str, nullable=False),  # open | resolved
    sa.Column("outlook_category", Str, nullable=False),  # set | clear | none
    sa.Column("raised_at", Str, nullable=False),
    sa.Column("resolved_at", Str),
    sa.Column("resolution", Str),
    sa.Index("ix_proj_issues_mailbox", "mailbox"),
)

_write = upserter(issues_table)

#: The org-level issue kind of the mass-change guard (``ledger.safety``).
MASS_CHANGE = "mass-change-guard"
#: The org-level issue kind of a mailbox the service suspended (``ledger.safety``).
SUSPENDED = "mailbox-suspended"
_resolve = Bulk(lambda _: issues_table.update().where(
    issues_table.c.meeting_id == sa.bindparam("mid"),
    issues_table.c.issue_key == sa.bindparam("ik"),
).values(state="resolved", resolved_at=sa.bindparam("at"), resolution=sa.bindparam("why"),
         outlook_category=sa.case((issues_table.c.outlook_category == "set", "clear"),
                                  else_=issues_table.c.outlook_category)))


class IssuesProjection(Projection):
    """Rows raised and resolved by the ledger's issue decisions."""

    name = "issues"
    tables = (issues_table,)

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], Row] = {}
        self.resolved: dict[tuple[str, str], tuple[str, str]] = {}  # earlier batches' rows

    def handlers(self) -> Mapping[str, Handler]:
        return {"Meeting.SyncIssueRaised": self.on_raised,
                "Meeting.SyncIssueResolved": self.on_resolved,
                "Safety.MassChangeHeld": self.on_held,
                "Safety.MassChangeReleased": self.on_released,
                "Safety.MailboxSuspended": self.on_suspended,
                "Safety.MailboxResumed": self.on_resumed}

    # The mass-change guard's holds are org-level issues: one per mailbox, on the
    # ledger's safety aggregate, resolved when the guard lets the mailbox go.

    def on_held(self, meeting_id: str, state: dict[str, Any], position: int) -> None:
        self.on_raised(meeting_id, {
            "issue_key": f"{MASS_CHANGE}|{state['mailbox']}", "rule": MASS_CHANGE,
            "severity": "issue", "direction": "both", "mailbox": state["mailbox"],
            "exchange_id": None, "salesforce_id": None, "item_key": None,
            "message": f"writes held for approval: {state['reason']} (run 'syncledger "
                       f"approve {state['mailbox']}' to let them through once)",
            "outlook_category": False, "timestamp": state["timestamp"]}, position)

    def on_released(self, meeting_id: str, state: dict[str, Any], position: int) -> None:
        self.on_resolved(meeting_id, {"issue_key": f"{MASS_CHANGE}|{state['mailbox']}",
                                      "timestamp": state["timestamp"],
                                      "reason": state["reason"]}, position)

    # A suspended mailbox is one too, resolved when a person resumes it.

    def on_suspended(self, meeting_id: str, state: dict[str, Any], position: int) -> None:
        self.on_raised(meeting_id, {
            "issue_key": f"{SUSPENDED}|{state['mailbox']}", "rule": SUSPENDED,
            "severity": "issue", "direction": "both", "mailbox": state["mailbox"],
            "exchange_id": None, "salesforce_id": None, "item_key": None,
            "message": f"the service stopped pulling this mailbox: {state['reason']} (fix "
                       f"the cause, then run 'syncledger status --resume {state['mailbox']}')",
            "outlook_category": False, "timestamp": state["timestamp"]}, position)

    def on_resumed(self, meeting_id: str, state: dict[str, Any], position: int) -> None:
        self.on_resolved(meeting_id, {"issue_key": f"{SUSPENDED}|{state['mailbox']}",
                                      "timestamp": state["timestamp"],
                                      "reason": state["reason"]}, position)

    def on_raised(self, meeting_id: str, state: dict[str, Any], position: int) -> None:
        key = (meeting_id, state["issue_key"])
        self.resolved.pop(key, None)
        self.rows[key] = {
            "meeting_id": meeting_id, "issue_key": key[1], "kind": state["rule"],
            "severity": state["severity"], "direction": state["direction"],
            "mailbox": state["mailbox"], "exchange_id": state["exchange_id"],
            "salesforce_id": state["salesforce_id"], "item_key": state["item_key"],
            "message": state["message"], "state": "open",
            "outlook_category": "set" if state["outlook_category"] else "none",
            "raised_at": state["timestamp"], "resolved_at": None, "resolution": None}

    def on_resolved(self, meeting_id: str, state: dict[str, Any], position: int) -> None:
        key = (meeting_id, state["issue_key"])
        row = self.rows.get(key)
        if row is None:
            self.resolved[key] = (state["timestamp"], state["reason"])
            return
        row.update(state="resolved", resolved_at=state["timestamp"], resolution=state["reason"],
                   outlook_category=_after_resolution(row["outlook_category"]))

    def flush(self, conn: Connection) -> None:
        _write(conn, self.rows.values())
        _resolve(conn, [{"mid": m, "ik": k, "at": at, "why": why}
                        for (m, k), (at, why) in sorted(self.resolved.items())])
        self.rows, self.resolved = {}, {}

    def final_rows(self) -> Iterable[tuple[sa.Table, list[Sequence[Any]]]]:
        # ``resolved`` holds only resolutions of rows never opened: nothing to update
        yield issues_table, in_column_order(issues_table, self.rows.values())


def _after_resolution(category: str) -> str:
    return "clear" if category == "set" else category


COLUMNS = ("meeting_id", "kind", "severity", "direction", "mailbox", "exchange_id",
           "salesforce_id", "message", "state", "outlook_category", "raised_at")


def select_rows(conn: Connection, *, mailbox: str | None = None, kind: str | None = None,
                state: str | None = None) -> list[dict[str, Any]]:
    """Issues, oldest first; ``kind`` is the rule id."""
    t = issues_table
    q = sa.select(*(t.c[c] for c in COLUMNS)).order_by(
        t.c.raised_at, t.c.meeting_id, t.c.issue_key)
    if mailbox is not None:
        q = q.where(t.c.mailbox == mailbox.lower())
    if kind is not None:
        q = q.where(t.c.kind == kind)
    if state is not None:
        q = q.where(t.c.state == state)
    return [as_dict(r) for r in conn.execute(q)]
