"""What people ask the read models: each answer is a list of plain dicts.

Every function first catches its projection up with the ledger, so an answer
is never older than the log at the time of asking, and returns rows with
exactly the keys listed in its docstring, in a stable order, the same on
SQLite and PostgreSQL. Filters are keyword arguments; ``None`` means all.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any, TypeVar

from sqlalchemy.engine import Connection

from ledger.identity import salesforce_id18
from ledger.store import Store
from projections import analytics as _analytics
from projections import conflicts as _conflicts
from projections import issues as _issues
from projections import mapping as _mapping
from projections import parked as _parked
from projections import people as _people
from projections import plan as _plan
from projections import runner

T = TypeVar("T")


def _answer(store: Store, name: str, read: Callable[[Connection], T]) -> T:
    if store.url.read_only:  # nothing may be written: the read model as it stands
        runner.require_built(store, [name])
    else:
        runner.catch_up(store, [name])
    with runner.reading(store) as conn:
        return read(conn)


def _no_state(view: str, state: str | None) -> None:
    if state is not None:
        raise ValueError(f"{view} rows have no state to filter on")


def mapping(store: Store, *, mailbox: str | None = None, kind: str | None = None,
            state: str | None = None) -> list[dict[str, Any]]:
    """meeting_id, mailbox, exchange_id, ical_uid, occurrence_start, salesforce_id.

    ``kind``: single | master | occurrence | exception (the Exchange item's type).
    """
    _no_state("mapping", state)
    return _answer(store, "mapping",
                   lambda c: _mapping.select_rows(c, mailbox=mailbox, kind=kind))


def find_by_exchange(store: Store, exchange_id: str, mailbox: str | None = None
                     ) -> list[dict[str, Any]]:
    """Mapping rows of an Exchange item id (one per mailbox holding that id)."""
    return _answer(store, "mapping",
                   lambda c: _mapping.find_by_exchange(c, exchange_id, mailbox))


def find_by_salesforce(store: Store, salesforce_id: str) -> list[dict[str, Any]]:
    """Mapping rows of a Salesforce Event id (15 or 18 characters)."""
    return _answer(store, "mapping",
                   lambda c: _mapping.find_by_salesforce(c, salesforce_id18(salesforce_id)))


def conflicts(store: Store, *, mailbox: str | None = None, kind: str | None = None,
              state: str | None = None) -> list[dict[str, Any]]:
    """meeting_id, kind, attendee, organizer, state, detected_at, resolved_at.

    ``state``: open | resolved; ``mailbox`` matches the attendee or the organizer.
    """
    return _answer(store, "conflicts", lambda c: _conflicts.select_rows(
        c, mailbox=mailbox, kind=kind, state=state))


def issues(store: Store, *, mailbox: str | None = None, kind: str | None = None,
           state: str | None = None) -> list[dict[str, Any]]:
    """meeting_id, kind, severity, direction, mailbox, exchange_id, salesforce_id,
    message, state, outlook_category, raised_at.

    ``kind`` is the rule id; ``state``: open | resolved. Parked lines that waited too
    long (``waiting-for-dependency``, no meeting yet: ``meeting_id`` null) are among them.
    """
    rows = _answer(store, "issues", lambda c: _issues.select_rows(
        c, mailbox=mailbox, kind=kind, state=state))
    waiting = _parked.issues(store, mailbox=mailbox, kind=kind, state=state)
    if not waiting:
        return rows
    return sorted(rows + waiting, key=lambda r: str(r["raised_at"]))


def parked(store: Store, *, item_id: str | None = None) -> list[dict[str, Any]]:
    """item_id, kind, mailbox, waits_for_kind (exchange-item | salesforce-event),
    waits_for_id, waits_for (the index key), since, source, line_no, overdue: what waits
    for an observation the ledger has not recorded yet, in the order parked."""
    return _parked.select_rows(store, item_id=item_id)


def plan(store: Store, *, mailbox: str | None = None, kind: str | None = None,
         state: str | None = None, target: str | None = None) -> list[dict[str, Any]]:
    """target, op, meeting_id, mailbox, id, fields (a dict), reason, notify_attendees.

    Ordered by meeting id then write key. ``kind`` filters on ``op``
    (create | update | delete | set-categories); ``target``: salesforce | exchange.
    """
    _no_state("plan", state)
    return _answer(store, "plan", lambda c: _plan.select_rows(
        c, mailbox=mailbox, kind=kind, target=target))


def pending_writes(store: Store, *, target: str | None = None, mailbox: str | None = None,
                   ops: Collection[str] | None = None) -> list[dict[str, Any]]:
    """The plan with each write's idempotency ``key``, for the sync's outbox; ``target``,
    ``mailbox`` and ``ops`` narrow it (a service job reads its own writes only)."""
    return _answer(store, "plan", lambda c: _plan.select_rows(
        c, with_key=True, target=target, mailbox=mailbox, ops=ops))


def planned_elsewhere(store: Store, keys: Collection[str], *, target: str | None,
                      mailbox: str | None) -> set[str]:
    """Those of the write ``keys`` the plan holds outside ``pending_writes(target=,
    mailbox=)``: for another target or mailbox."""
    return _answer(store, "plan", lambda c: _plan.keys_held_elsewhere(
        c, keys, target=target, mailbox=mailbox))


def analytics_meetings(store: Store, *, mailbox: str | None = None,
                       state: str | None = None) -> list[dict[str, Any]]:
    """meeting_id, organizer, organizer_is_user, attendees_are_users, start, recurrence,
    sync_state, open_issue_kinds, what_id, related_users, related_contacts,
    related_leads, unresolved_attendees. ``state`` filters on ``sync_state``."""
    runner.catch_up(store, ["people"])
    with runner.reading(store) as conn:
        coverage = _people.select_coverage(conn)
    none = dict.fromkeys(_people.COUNTS, 0)
    rows = _answer(store, "analytics", lambda c: _analytics.select_meetings(
        c, mailbox=mailbox, state=state))
    return [{**r, **coverage.get(r["meeting_id"], none)} for r in rows]


def unresolved(store: Store, *, state: str | None = "open",
               meeting_id: str | None = None) -> list[dict[str, Any]]:
    """meeting_id, email, since, state (open | resolved), resolved_at, relation_id:
    attendees whose email matched no User, Contact or Lead. ``state=None``: all."""
    return _answer(store, "people", lambda c: _people.select_unresolved(
        c, state=state, meeting_id=meeting_id))


def analytics_daily(store: Store, *, mailbox: str | None = None, kind: str | None = None
                    ) -> list[dict[str, Any]]:
    """day, source (observation | issue | conflict), kind, mailbox, count."""
    return _answer(store, "analytics", lambda c: _analytics.select_daily(
        c, mailbox=mailbox, kind=kind))


#: The read models by the name people use for them (CLI command, dashboard page, API route).
READ_MODELS = ("mapping", "conflicts", "issues", "plan", "analytics")


def read_model(store: Store, name: str, *, mailbox: str | None = None, kind: str | None = None,
               state: str | None = None, daily: bool = False) -> list[dict[str, Any]]:
    """One read model by name with the filters a person gives (CLI flags, dashboard form).

    ``analytics`` filters meetings on ``state`` (sync_state); with ``daily`` it is the
    daily counts, filtered on ``kind``. A filter a read model does not have is a
    ``ValueError`` naming it.
    """
    if name not in READ_MODELS:
        raise ValueError(f"unknown read model {name!r}; known: {', '.join(READ_MODELS)}")
    if name == "analytics":
        if daily:
            if state is not None:
                raise ValueError("--state does not apply to --daily")
            return analytics_daily(store, mailbox=mailbox, kind=kind)
        return analytics_meetings(store, mailbox=mailbox, state=state)
    if daily:
        raise ValueError(f"--daily applies to analytics only, not {name}")
    fn = {"mapping": mapping, "conflicts": conflicts, "issues": issues, "plan": plan}[name]
    filters: dict[str, Any] = {"mailbox": mailbox, "kind": kind}
    if state is not None:
        filters["state"] = state
    return fn(store, **filters)


def overview(store: Store) -> dict[str, Any]:
    """What an admin asks first: how many issues, conflicts and writes are open, per mailbox.

    JSON keys: ``totals`` (open_issues, open_conflicts, pending_writes, linked_items,
    meetings, unresolved_attendees: open rows of :func:`unresolved`) and ``mailboxes``
    (one row per mailbox seen in any read model: mailbox,
    linked_items, open_issues, open_conflicts, pending_writes), mailboxes in name order.
    Composed from the read-model queries above, so it answers exactly what they answer.
    """
    open_issues = issues(store, state="open")
    open_conflicts = conflicts(store, state="open")
    links = mapping(store)
    writes = plan(store)
    boxes: dict[str, dict[str, Any]] = {}

    def row(mailbox: str | None) -> dict[str, Any] | None:
        if not mailbox:
            return None
        return boxes.setdefault(mailbox, {"mailbox": mailbox, "linked_items": 0,
                                          "open_issues": 0, "open_conflicts": 0,
                                          "pending_writes": 0})

    for name, rows, who in (("linked_items", links, "mailbox"),
                            ("open_issues", open_issues, "mailbox"),
                            ("open_conflicts", open_conflicts, "attendee"),
                            ("pending_writes", writes, "mailbox")):
        for r in rows:
            target = row(r.get(who))
            if target is not None:
                target[name] += 1
    return {
        "totals": {"meetings": len(store.meeting_ids()), "linked_items": len(links),
                   "open_issues": len(open_issues), "open_conflicts": len(open_conflicts),
                   "pending_writes": len(writes),
                   "unresolved_attendees": len(unresolved(store, state="open"))},
        "mailboxes": [boxes[m] for m in sorted(boxes)],
    }
