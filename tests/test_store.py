"""The event store as a user relies on it: long series load from snapshots exactly as
from their full history, past versions are the real past, and what our lean save
writes is what the library itself would write (so the library can always read it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import StoredEvent

from adapters.sandbox.org import ALICE, _ical, graph_event
from ledger.identity import ical_key, meeting_id
from ledger.meeting import Meeting
from ledger.store import SNAPSHOT_INTERVAL, Store
from tests.scenarios import ingest, org_with_settings


def replayed(store: Store, mid: UUID, upto: int | None = None) -> Meeting:
    """The meeting folded from every one of its events, never from a snapshot."""
    agg: Any = None
    for event in store.app.events.get(mid, lte=upto):
        agg = event.mutate(agg)  # type: ignore[attr-defined]
    assert isinstance(agg, Meeting)
    return agg


def long_meeting(store: Store, tmp_path: Path, revisions: int) -> UUID:
    org = org_with_settings()
    for n in range(revisions):
        org.graph(1 + n, ALICE, graph_event(
            ALICE, "long", subject=f"Stand-up #{n}", organizer=ALICE, attendees=(ALICE,),
            start="2026-11-24T17:00:00", end="2026-11-24T17:15:00", revision=n,
            location=f"Room {n % 7}"))
    result = ingest(store, org, tmp_path)
    assert result.quarantined == 0
    return meeting_id(ical_key(_ical("long")))


def test_a_long_meeting_loads_from_its_snapshot_as_from_its_history(
        store: Store, tmp_path: Path) -> None:
    mid = long_meeting(store, tmp_path, revisions=130)
    loaded = store.meeting(mid)
    assert loaded.version > 2 * SNAPSHOT_INTERVAL
    assert store.app.snapshots is not None
    snapshots = list(store.app.snapshots.get(mid))
    assert snapshots and snapshots[-1].originator_version % SNAPSHOT_INTERVAL == 0
    assert vars(loaded) == vars(replayed(store, mid))
    for version in (SNAPSHOT_INTERVAL - 1, SNAPSHOT_INTERVAL, SNAPSHOT_INTERVAL + 7):
        assert vars(store.meeting(mid, version=version)) == vars(replayed(store, mid, version))


def test_stored_events_are_byte_for_byte_what_the_library_writes(
        store: Store, tmp_path: Path) -> None:
    long_meeting(store, tmp_path, revisions=5)
    mapper = store.app.mapper
    rows = store.read_log(0, 10_000)
    assert rows
    for _, oid, version, topic, state in rows:
        stored = StoredEvent(originator_id=UUID(oid), originator_version=version, topic=topic,
                             state=state)
        again = mapper.to_stored_event(mapper.to_domain_event(stored))
        assert (again.topic, again.state) == (topic, state)


def test_a_meeting_triggers_exactly_the_event_the_library_would() -> None:
    """``Meeting.trigger_event`` skips the library's generic work; nothing else may differ:
    the same fields in the same order (so the same bytes), the same meeting state after,
    and the library's own error for a field that is missing."""
    import copy
    from datetime import UTC, datetime

    import pytest
    from eventsourcing.domain import Aggregate

    ours = Meeting.open("ical:lean", "2026-11-20T09:00:00Z")
    theirs = copy.deepcopy(ours)
    when = datetime(2026, 11, 20, 9, 5, tzinfo=UTC)
    writes = [{"key": "sf-create|a", "target": "salesforce"}]
    ours.trigger_event(Meeting.WritesPlanned, timestamp=when, writes=writes)
    Aggregate.trigger_event(theirs, Meeting.WritesPlanned, timestamp=when, writes=writes)
    ours.trigger_event(Meeting.WritesSettled, keys=["sf-create|a"], reason="done",
                       timestamp=when)
    Aggregate.trigger_event(theirs, Meeting.WritesSettled, keys=["sf-create|a"],
                            reason="done", timestamp=when)
    for mine, library in zip(ours.pending_events, theirs.pending_events, strict=True):
        assert type(mine) is type(library)
        assert list(vars(mine).items()) == list(vars(library).items())
    assert vars(ours) | {"_pending_events": None} == vars(theirs) | {"_pending_events": None}
    with pytest.raises(TypeError, match="reason"):
        ours.trigger_event(Meeting.WritesSettled, keys=[], timestamp=when)


def test_existing_names_exactly_the_meetings_that_have_events(
        store: Store, tmp_path: Path) -> None:
    """Intake's read-ahead asks which of a window's meetings already have events
    (answered from their first version): a meeting with a long history is there,
    an id no observation ever produced is not."""
    mid = long_meeting(store, tmp_path, revisions=3)
    unknown = meeting_id(ical_key("never-observed"))
    assert store.existing([mid, unknown, mid]) == {mid}
    assert store.existing([]) == set()


def test_a_new_sqlite_ledger_waits_out_a_locked_switch_to_wal(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Processes opening one new ledger at once: the library's switch to WAL can fail at
    once with "database is locked" (SQLite does not wait there); the store's pool tries
    the connection again, it is not fatal."""
    import sqlite3

    from eventsourcing.sqlite import SQLiteConnectionPool

    from ledger.store import locked_retry

    refusals = [sqlite3.OperationalError("database is locked")] * 3
    real = SQLiteConnectionPool._create_connection

    def connect(pool: SQLiteConnectionPool) -> Any:
        if refusals:
            raise refusals.pop()
        return real(pool)

    monkeypatch.setattr(SQLiteConnectionPool, "_create_connection", connect)
    Store.open(str(tmp_path / "new.db")).close()
    assert refusals == []
    with sqlite3.connect(tmp_path / "new.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"

    def always_locked() -> None:
        raise sqlite3.OperationalError("database is locked")

    with pytest.raises(sqlite3.OperationalError, match="locked"):  # not for ever
        locked_retry(always_locked, tries=2)


def test_the_cli_names_the_drivers_reason_not_the_librarys_control_flow() -> None:
    """An error raised while a pool handled its own empty deque printed "pop from an
    empty deque" instead of SQLite's reason."""
    import sqlite3

    from adapters.cli.common import root_reason

    pool: list[Any] = []
    try:
        try:
            pool.pop()
        except IndexError:  # as the library's pool does, then fails to connect
            raise sqlite3.OperationalError("database is locked")  # noqa: B904
    except sqlite3.OperationalError as exc:
        assert isinstance(exc.__context__, IndexError)
        assert root_reason(exc) == "database is locked"
