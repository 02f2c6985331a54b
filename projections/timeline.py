"""One meeting's timeline, read straight from its events (for ``history``, ``demo``).

Not a stored read model: a meeting's events are few and indexed by meeting
id, so reading them is the fastest way to answer "what happened, and when".
Org settings changes are woven in by position, starting with the one in force
when the meeting was first seen, so a reader sees what the rules knew.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import orjson

from ledger.identity import ORG_SETTINGS_ID
from ledger.meeting import Meeting
from ledger.store import Store
from projections.sync_state import blocking, sync_state

SOURCES = {
    "ExchangeItemObserved": "graph", "ExchangeItemRemoved": "graph",
    "SalesforceEventObserved": "salesforce", "SalesforceEventDeleted": "salesforce",
    "SidebarSaveObserved": "sidebar", "SettingsChanged": "settings", "Opened": "ledger",
    "Started": "settings",
}
_QUIET = frozenset({"originator_topic", "timestamp"})


def event_name(topic: str) -> str:
    return topic.rpartition(".")[2]


def source_of(name: str) -> str:
    return SOURCES.get(name, "decision")


def timeline(store: Store, meeting_id: UUID, upto_version: int | None = None
             ) -> list[dict[str, Any]]:
    """Entries: position, version, time, source, type, rule, changes (field -> [old, new])."""
    rows = store.stored_events(meeting_id, upto_version)
    if not rows:
        return []
    last = rows[-1][0]
    org_rows = [r for r in store.stored_events(ORG_SETTINGS_ID) if r[0] <= last]
    before = [r for r in org_rows if r[0] < rows[0][0]]
    org_rows = before[-1:] + [r for r in org_rows if r[0] > rows[0][0]]
    merged = sorted([(r, True) for r in org_rows] + [(r, False) for r in rows],
                    key=lambda x: x[0][0])
    seen: dict[str, dict[str, Any]] = {}
    out = []
    for (position, version, topic, raw), is_org in merged:
        state = orjson.loads(raw)
        name = event_name(topic)
        entry: dict[str, Any] = {
            "position": position, "version": None if is_org else version,
            "time": state.get("timestamp"), "source": source_of(name), "type": name,
            "rule": state.get("rule"), "changes": _changes(name, state, seen),
        }
        out.append(entry)
    return out


def _changes(name: str, state: dict[str, Any], seen: dict[str, dict[str, Any]]
             ) -> dict[str, Any]:
    """What this event changed, field by field ([old, new] for observations)."""
    obs = state.get("observation")
    if obs is None:
        return {k: v for k, v in state.items() if k not in _QUIET}
    key = "|".join(str(obs.get(k)) for k in ("kind", "mailbox", "item_id", "event_id"))
    old = seen.get(key)
    seen[key] = obs
    if old is None:
        return {k: [None, v] for k, v in obs.items()
                if k not in ("kind", "observed_at") and v not in (None, "", [], False)}
    return {k: [old.get(k), v] for k, v in obs.items()
            if k not in ("observed_at",) and old.get(k) != v}


def title_of(m: Meeting) -> tuple[str, str | None]:
    """A human title and start for a meeting, from whichever side says more."""
    for item in m.items.values():
        if item["item_type"] in ("single", "master"):
            subject = item["subject"] or ("(private item)" if item.get("redacted") else "")
            return subject or "(no subject)", item["start"]
    for event in m.sf.values():
        if event["series_id"] is None:
            return event["subject"] or "(no subject)", event["start"]
    for item in m.items.values():
        return item["subject"] or "(no subject)", item["start"]
    return "(unknown)", None


def status_of(m: Meeting) -> str:
    """One phrase: where the meeting stands now. It opens with the meeting's sync state in
    the words every command and the BI tables use (``analytics`` ``sync_state``):
    conflict, not-synced, pending, synced."""
    state = meeting_sync_state(m)
    if state == "conflict":
        return "conflict: " + ", ".join(sorted(m.conflicts)) + " saved before the organizer"
    stopping = blocking(i["rule"] for i in m.issues.values())
    if stopping:
        return "not-synced: " + ", ".join(stopping)
    if state == "pending":
        return f"pending: {len(m.pending)} write(s) to carry out"
    if state == "synced":
        return "synced"
    return "not-synced: not in sync scope"


def meeting_sync_state(m: Meeting) -> str:
    """The meeting's state word (``projections.sync_state``), from its aggregate."""
    return sync_state(conflict=bool(m.conflicts),
                      issue_rules=(i["rule"] for i in m.issues.values()),
                      pending=bool(m.pending), linked=bool(m.links))


def decision_line(entry: dict[str, Any]) -> str:
    c = entry["changes"]
    rule = f" [{entry['rule']}]" if entry["rule"] else ""
    detail = {
        "SaveAccepted": lambda: f"saved by {c.get('saver')} ({c.get('how')})",
        "ConflictDetected": lambda: f"{c.get('attendee')} saved before organizer "
                                    f"{c.get('organizer')}",
        "ConflictResolved": lambda: f"organizer {c.get('organizer')} saved",
        "SyncIssueRaised": lambda: f"{c.get('severity')}: {c.get('message')}",
        "SyncIssueResolved": lambda: f"{c.get('issue_key')} {c.get('reason')}",
        "Linked": lambda: f"{c.get('mailbox')} {str(c.get('exchange_id'))[:16]}… <-> "
                          f"{c.get('salesforce_id')}",
        "Unlinked": lambda: f"{c.get('salesforce_id')}: {c.get('reason')}",
        "WritesPlanned": lambda: ", ".join(f"{w['target']} {w['op']}"
                                           for w in c.get("writes", [])),
        "WritesSettled": lambda: f"{len(c.get('keys', []))} write(s) done",
        "SeriesMasterUpdated": lambda: f"from {c.get('effective_from')}: "
                                       f"{sorted(c.get('changes', {}))}",
        "SeriesMasterOverwritten": lambda: f"{sorted(c.get('changes', {}))}",
        "DownSyncAccepted": lambda: f"create in {c.get('mailbox')}",
        "SalesforceDeletionDecided": lambda: f"{c.get('salesforce_id')}: {c.get('reason')}",
    }.get(entry["type"], lambda: "")()
    return f"#{entry['position']} {entry['type']}{rule} {detail}".rstrip()


def meeting_summary(store: Store, meeting_id: UUID) -> dict[str, Any]:
    m = store.meeting(meeting_id)
    title, start = title_of(m)
    entries = timeline(store, meeting_id)
    return {
        "meeting_id": str(meeting_id), "key": m.key, "title": title, "start": start,
        "status": status_of(m), "events": m.version,
        "decisions": [decision_line(e) for e in entries if e["source"] == "decision"],
    }
