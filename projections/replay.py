"""``replay --until``: the ledger as it stood at a time, in a database of its own.

Copies every aggregate's events up to the last one observed at or before
TIME (stopping at its first later event, so each copied history is a prefix
of the real one), the id index for those meetings, the parked observations
(``ledger.parking``) and quarantined lines observed at or before TIME, and the
newest ``observed_at`` the copy holds (the parked lines' "now"), then catches the
projections up there. People then query the past with the ordinary commands
and ``--db`` pointing at the copy.

Parked lines and quarantine rows are side tables, not history: the copy holds
those still there now. A line taken since (what it waited for arrived after
TIME) is in its meeting's events, not in the table, and a removal dropped since
past its retention is gone, so neither is parked in the copy; a quarantine row
whose time did not parse has no time to compare and is left out.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.persistence import StoredEvent

from ledger.identity import DIRECTORY_ID, ORG_SETTINGS_ID
from ledger.parking import newer
from ledger.safety import SAFETY_ID
from ledger.store import SideRows, Store

#: Aggregates that are not meetings: their events record no observation that moves the
#: newest ``observed_at`` (settings, people, full reads), as in intake. (A meeting's
#: events relating a person's record carry that record's time, which intake's checkpoint
#: leaves out: when such a record is the latest before TIME, the copy's "now" is it.)
_NOT_MEETINGS = frozenset({ORG_SETTINGS_ID, DIRECTORY_ID, SAFETY_ID})


class ReplayError(ValueError):
    """The target cannot take a replay (not empty, or an unreadable time)."""


def replay_until(source: Store, target: Store, until: str,
                 progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    try:
        cutoff = datetime.fromisoformat(until)
    except ValueError as exc:
        raise ReplayError(f"--until {until!r} is not an ISO-8601 time") from exc
    if cutoff.tzinfo is None:
        raise ReplayError("--until needs a zone, e.g. 2026-11-20T12:00:00Z")
    if target.max_position():
        raise ReplayError(f"{target.url} already holds a ledger; replay needs an empty one")
    stopped: set[str] = set()
    kept: set[str] = set()
    copied = after = 0
    newest: str | None = None  # of the meetings' events copied
    while rows := source.read_log(after):
        batch = []
        for position, oid, version, topic, state in rows:
            after = position
            if oid in stopped:
                continue
            ts = orjson.loads(state).get("timestamp")
            if ts is None or datetime.fromisoformat(ts) > cutoff:
                stopped.add(oid)
                continue
            kept.add(oid)
            uuid = UUID(oid)
            if uuid not in _NOT_MEETINGS:
                newest = newer(newest, ts)
            batch.append(StoredEvent(originator_id=uuid, originator_version=version,
                                     topic=topic, state=state))
        if batch:
            target.recorder.insert_events(batch)
            copied += len(batch)
            if progress:
                progress(copied)
    kept_hex = {UUID(o).hex for o in kept}
    keys = {k: mid for k, mid in source.query("SELECT key, meeting_id FROM {p}meeting_keys")
            if UUID(mid).hex in kept_hex}
    parked = [line for line in source.parked() if _at_or_before(line.observed_at, cutoff)]
    for line in parked:
        newest = newer(newest, line.observed_at)
    quarantine = [row for row in _quarantine(source)
                  if row[6] is not None and _at_or_before(row[6], cutoff)]
    # No retention given: the copy keeps every removal the source kept.
    target.write_side(SideRows(keys=keys, quarantine=quarantine, checkpoints={},
                               park=parked, newest=newest))
    from projections import runner

    runner.catch_up(target)
    return {"until": until, "events_copied": copied,
            "meetings": len({k for k in keys.values()}), "parked_copied": len(parked),
            "quarantined_copied": len(quarantine), "db_out": str(target.url)}


def _at_or_before(observed_at: str, cutoff: datetime) -> bool:
    """Whether a side row's time is at or before the cutoff (one that does not parse is
    not: it cannot be placed)."""
    try:
        return datetime.fromisoformat(observed_at) <= cutoff
    except ValueError:
        return False


def _quarantine(source: Store
                ) -> list[tuple[str, int | None, str | None, str | None, str, bytes, str | None]]:
    """The source's quarantine rows as ``SideRows.quarantine`` takes them, oldest first."""
    rows = source.query("SELECT source, line_no, item_id, field, error, raw, observed_at "
                        "FROM {p}quarantine ORDER BY id")
    return [(str(r[0]), None if r[1] is None else int(r[1]), r[2], r[3], str(r[4]),
             bytes(r[5]), None if r[6] is None else str(r[6])) for r in rows]
