"""Parking: observations that wait for another one the ledger has not recorded yet.

An Outlook occurrence or exception seen before its series master, a sidebar save
before its item, a removal (Outlook or Salesforce) before the item or Event it
removes: none of them is wrong, they only arrived early. Intake parks such an
observation under the index key it waits for (the master's, the item's, the
Event's) and takes it again, in the same transaction, right after the
observation that records that key (``ledger.intake``). The store keeps parked
lines in a side table (``ledger.store``), so waiting survives between runs.

A line that waits longer than the org setting ``parked_max_age_hours`` (measured
against the newest ``observed_at`` the ledger holds, never the wall clock)
becomes a ``waiting-for-dependency`` sync issue. Removals never do: a removal of
something the ledger never saw is common (created and deleted between two reads)
and nothing follows from it, so it only waits, listed by ``syncledger parked``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

#: The rule id of a line that waited too long.
WAITING_RULE = "waiting-for-dependency"
#: Observation kinds that wait but never raise an issue (see the module docstring).
QUIET_KINDS = frozenset({"exchange.removed", "salesforce.deleted"})


@dataclass(frozen=True)
class ParkedLine:
    """One parked observation, as the store keeps it."""

    waits_for: str  # the index key (``ex:mailbox|id``, ``sf:Id``) it waits for
    source: str
    line_no: int | None
    kind: str  # the observation kind
    item_id: str | None
    mailbox: str | None
    observed_at: str
    record: dict[str, Any]  # ``to_record(observation)``: what is taken again
    raw: bytes  # the line as read (a private item's content blanked, as in quarantine)

    @property
    def digest(self) -> str:
        """Idempotency: the same observation parked again from one source is one row."""
        return record_digest(self.record)

    @property
    def ident(self) -> tuple[str, str]:
        return self.source, self.digest


def record_digest(record: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(record, option=orjson.OPT_SORT_KEYS)).hexdigest()


def describe_key(key: str) -> tuple[str, str]:
    """(what kind of thing, its id) a waits-for key names, for people."""
    if key.startswith("ex:"):
        mailbox, _, item_id = key[3:].partition("|")
        return "exchange-item", f"{item_id} in {mailbox}"
    if key.startswith("sf:"):
        return "salesforce-event", key[3:]
    return "key", key


def overdue(kind: str, observed_at: str, newest: str | None, max_age_hours: int) -> bool:
    """Whether a line parked at ``observed_at`` has waited more than ``max_age_hours``
    before ``newest`` (the newest ``observed_at`` in the ledger). Removals never have."""
    if newest is None or kind in QUIET_KINDS:
        return False
    return _parse(newest) - _parse(observed_at) > timedelta(hours=max_age_hours)


def waiting_issue(row: dict[str, Any], newest: str, max_age_hours: int) -> dict[str, Any]:
    """The ``waiting-for-dependency`` issue of an overdue parked ``row`` (keys kind,
    item_id, mailbox, source, line_no, observed_at, waits_for), in the issues' shape."""
    since = _parse(row["observed_at"])
    what, ident = describe_key(row["waits_for"])
    noun = {"exchange-item": "the Outlook item", "salesforce-event": "the Salesforce Event"
            }.get(what, "")
    hours = int((_parse(newest) - since).total_seconds() // 3600)
    where = f"{row['source']} line {row['line_no']}" if row["line_no"] is not None \
        else row["source"]
    return {
        "meeting_id": None, "kind": WAITING_RULE, "severity": "issue",
        "direction": "to-salesforce", "mailbox": row["mailbox"],
        "exchange_id": row["item_id"] if row["kind"].startswith(("exchange.", "sidebar."))
        else None,
        "salesforce_id": row["item_id"] if row["kind"].startswith("salesforce.") else None,
        "message": f"{row['kind']} {row['item_id']} ({where}) has waited {hours} h for "
                   f"{noun} {ident}, which the ledger has not seen (longer than "
                   f"parked_max_age_hours = {max_age_hours}); 'syncledger parked' lists "
                   "what waits",
        "state": "open", "outlook_category": "none",
        "raised_at": _iso(since + timedelta(hours=max_age_hours))}


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def newer(a: str | None, b: str | None) -> str | None:
    """The later of two ``observed_at`` values (None: not known)."""
    if a is None:
        return b
    if b is None:
        return a
    return a if _parse(a) >= _parse(b) else b
