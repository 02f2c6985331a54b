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

Waiting for ever would keep every such removal for ever (a real org creates and
deletes items between reads every day), so a removal is kept for the org setting
``parked_removal_max_age_hours`` (default 720: 30 days), again measured against
the newest ``observed_at``: intake drops the older ones in the transaction of each
batch that holds an item's or Event's observation, against the newest as that batch
leaves it (``drop_bound``; ``ledger.store``), and counts them. Only removals
(``QUIET_KINDS``) are ever dropped; a line that needs its dependency (an
occurrence, a save) waits until it comes, as an issue.

What dropping gives up: a removal dropped and whose item then arrives is not
applied, and the ledger holds the item as live. When the item was observed after
the removal (an Event undeleted, an item back in the read window) it is live, and
the removal was better not applied at all. When it was observed before, its line
came more than the retention (by ledger time) after newer observations were
recorded: not a delay the APIs or a re-run make (one mailbox's delta pages and
one org's Salesforce pulls come in order), only input read weeks out of order,
an anomaly of its own. Its consequence is bounded: a full read (``syncledger
reconcile``) does not list the item; once it is linked (a sync copied it), the
copy is read by id, found gone and the removal recorded (``target-gone``), whose
rules delete the copy. A shorter retention trades that margin for a smaller table.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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


def drop_bound(newest: str | None, max_age_hours: int) -> str | None:
    """The text a removal's ``observed_at`` must sort below to be dropped: ``newest``
    less ``max_age_hours``, to the second (``YYYY-MM-DDTHH:MM:SS``, no zone).

    A text bound so the store's ``DELETE`` compares the stored column (indexed) as
    text and intake the same way (``dropped``): the ledger's times are UTC ISO-8601
    (``...SSZ``, a fraction only if any), so for four-digit years comparing the first
    19 characters compares the instants to the second, and a time in the bound's own
    second sorts above it (kept: a second late, never early). A time before year
    1000 is written with fewer digits and sorts wrongly; it can only be older than a
    four-digit bound (so dropping it is right, or it is kept), and when the bound
    itself is before year 1000 nothing is dropped (None)."""
    if newest is None:
        return None
    try:
        cutoff = _parse(newest) - timedelta(hours=max_age_hours)
    except OverflowError:
        return None
    if cutoff.year < 1000:
        return None
    return cutoff.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def dropped(kind: str, observed_at: str, bound: str | None) -> bool:
    """Whether a parked line goes at ``bound`` (``drop_bound``): removals only, older."""
    return bound is not None and kind in QUIET_KINDS and observed_at < bound


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
