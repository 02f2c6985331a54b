"""A meeting as the ledger knew it: now, at a version, or at a time (``state``, the dashboard).

Read from the meeting's own events like the timeline: no stored read model.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from ledger.meeting import Meeting
from ledger.store import Store
from projections.timeline import timeline


class NotKnownYet(LookupError):
    """The meeting exists, but the ledger knew nothing of it at the asked time."""


def state_view(m: Meeting) -> dict[str, Any]:
    """The meeting as the ledger knows it, in terms a person reads."""
    return {
        "meeting_id": str(m.id), "key": m.key, "version": m.version,
        "as_of": m.modified_on.isoformat().replace("+00:00", "Z"),
        "exchange_items": {k: {f: i.get(f) for f in (
            "item_type", "subject", "start", "end", "organizer", "sensitivity", "time_zone",
            "is_all_day", "categories", "version", "redacted")} for k, i in m.items.items()},
        "removed_items": m.removed,
        "salesforce_events": {k: {f: e.get(f) for f in (
            "subject", "start", "end", "series_id", "is_series_master", "is_lightning_series",
            "description", "location", "what_id", "version")} for k, e in m.sf.items()},
        "salesforce_deleted": m.sf_deleted,
        "saved_by": m.saves, "links": m.links, "shape": m.shape,
        "open_issues": m.issues, "open_conflicts": m.conflicts,
        "pending_writes": list(m.pending.values()),
    }


def version_at(store: Store, meeting_id: UUID, at: datetime) -> int:
    """The meeting's last version recorded at or before ``at`` (a time with a zone)."""
    if at.tzinfo is None:
        raise ValueError("the time needs a zone, e.g. 2026-11-20T12:00:00Z")
    known = [e for e in timeline(store, meeting_id)
             if e["version"] is not None and datetime.fromisoformat(e["time"]) <= at]
    if not known:
        raise NotKnownYet(f"the ledger knew nothing of this meeting at {at.isoformat()}")
    return int(known[-1]["version"])


def meeting_state(store: Store, meeting_id: UUID, *, version: int | None = None,
                  at: datetime | None = None) -> dict[str, Any]:
    """``state_view`` now, at ``version``, or as of the time ``at``."""
    if at is not None:
        version = version_at(store, meeting_id, at)
    return state_view(store.meeting(meeting_id, version=version))
