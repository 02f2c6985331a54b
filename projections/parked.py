"""What waits: parked observations (``ledger.parking``) as people read them.

Parked lines are a side table of the store, not a projection of the log, so
they are read as they stand; the rows, and the ``waiting-for-dependency``
issues of those that waited too long, come from here only (``syncledger
parked``, ``syncledger issues``, ``explain``).
"""

from __future__ import annotations

from typing import Any

from ledger.parking import WAITING_RULE, ParkedLine, describe_key, overdue, waiting_issue
from ledger.settings import OrgSettings
from ledger.store import NEWEST_OBSERVED, Store

COLUMNS = ("item_id", "kind", "mailbox", "waits_for_kind", "waits_for_id", "waits_for",
           "since", "source", "line_no", "overdue")


def _max_age(store: Store) -> int:
    org = store.org()
    return (org.settings() if org is not None else OrgSettings()).parked_max_age_hours


def _row(line: ParkedLine, newest: str | None, max_age: int) -> dict[str, Any]:
    what, ident = describe_key(line.waits_for)
    return {"item_id": line.item_id, "kind": line.kind, "mailbox": line.mailbox,
            "waits_for_kind": what, "waits_for_id": ident, "waits_for": line.waits_for,
            "since": line.observed_at, "source": line.source, "line_no": line.line_no,
            "overdue": overdue(line.kind, line.observed_at, newest, max_age)}


def select_rows(store: Store, *, item_id: str | None = None) -> list[dict[str, Any]]:
    """Parked observations in the order parked, keys ``COLUMNS``. ``overdue``: waited
    longer than ``parked_max_age_hours`` before the newest observation (removals never)."""
    lines = store.parked()
    if not lines:
        return []
    newest, max_age = store.checkpoint(NEWEST_OBSERVED), _max_age(store)
    return [_row(line, newest, max_age) for line in lines
            if item_id is None or line.item_id == item_id]


def issues(store: Store, *, mailbox: str | None = None, kind: str | None = None,
           state: str | None = None) -> list[dict[str, Any]]:
    """``waiting-for-dependency`` issues in the ``issues`` rows' shape (always open:
    the line leaves the parked table when what it waits for arrives)."""
    if state == "resolved" or (kind is not None and kind != WAITING_RULE):
        return []
    newest = store.checkpoint(NEWEST_OBSERVED)
    rows = [r for r in select_rows(store) if r["overdue"]]
    if newest is None or not rows:
        return []
    max_age = _max_age(store)
    out = [waiting_issue({**r, "observed_at": r["since"]}, newest, max_age) for r in rows]
    return [i for i in out if mailbox is None or i["mailbox"] == mailbox.lower()]
