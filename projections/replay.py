"""``replay --until``: the ledger as it stood at a time, in a database of its own.

Copies every aggregate's events up to the last one observed at or before
TIME (stopping at its first later event, so each copied history is a prefix
of the real one), the id index for those meetings, then catches the
projections up there. People then query the past with the ordinary commands
and ``--db`` pointing at the copy.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.persistence import StoredEvent

from ledger.store import SideRows, Store


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
            batch.append(StoredEvent(originator_id=UUID(oid), originator_version=version,
                                     topic=topic, state=state))
        if batch:
            target.recorder.insert_events(batch)
            copied += len(batch)
            if progress:
                progress(copied)
    kept_hex = {UUID(o).hex for o in kept}
    keys = {k: mid for k, mid in source.query("SELECT key, meeting_id FROM {p}meeting_keys")
            if UUID(mid).hex in kept_hex}
    target.write_side(SideRows(keys=keys, quarantine=[], checkpoints={}))
    from projections import runner

    runner.catch_up(target)
    return {"until": until, "events_copied": copied,
            "meetings": len({k for k in keys.values()}), "db_out": str(target.url)}
