"""Concurrent writers (issue 12, point 4): 2 and 4 ``syncledger ingest`` processes at once
on one ledger, on SQLite and PostgreSQL, against one process ingesting the whole feed.

The feed is the synthetic org's (``scripts/benchfeed.py``), split by organizer
(``tests/writers_run.py``): one meeting's attendee copies are ingested by different
processes, which open, link and index the same meeting at the same time. Small
batches make the processes commit in turns many times. ``scripts/writers.py``
prints the same figures for a larger feed.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.feed.envelopes import WIRE_FIELDS
from adapters.feed.ingest import feed_items, ingest_files
from adapters.feed.privacy import redact_line
from adapters.sandbox.org import ALICE, NINA, SandboxOrg, _graph_id, graph_event
from ledger.identity import salesforce_key
from ledger.intake import Ledger
from ledger.store import SideRows, Store
from tests.conftest import drop_schema, require_postgres
from tests.parked_feeds import Story, jsonl, lines_of, settings_line
from tests.scenarios import ORG
from tests.writers_run import (
    benchfeed_lines,
    figures,
    ingest_together,
    one_process,
    project_and_fingerprint,
    split,
)

OBSERVATIONS = 1000
BATCH = 25
#: Read models whose rows are order-dependent by the domain's rules: the facts of the
#: copy seen last (an attendee's older copy read after the organizer's newer one).
ORDER_DEPENDENT = {"proj_analytics_meetings"}


@pytest.fixture(params=["sqlite", "postgresql"])
def new_ledger(request: pytest.FixtureRequest, tmp_path: Path
               ) -> Iterator[Callable[[], str]]:
    """A maker of fresh ledger URLs (not created yet) on one kind of store."""
    kind = request.param
    if kind == "postgresql":
        require_postgres()
    schemas: list[str] = []

    def new() -> str:
        if kind == "sqlite":
            return f"sqlite:///{tmp_path / f'ledger{uuid.uuid4().hex[:8]}.db'}"
        schemas.append(f"w_{uuid.uuid4().hex[:20]}")
        return f"postgresql://postgres@127.0.0.1:5432/test?schema={schemas[-1]}"

    yield new
    for schema in schemas:
        drop_schema(schema)


def _files(tmp_path: Path, lines: list[bytes], n: int, how: str,
           reference: str | None = None) -> list[Path]:
    out = []
    for i, part in enumerate(split(lines, n, how, reference)):
        f = tmp_path / f"{how}{n}_{i}.jsonl"
        f.write_bytes(b"".join(part))
        out.append(f)
    return out


def test_concurrent_ingest_processes_record_what_one_process_records(
        new_ledger: Callable[[], str], tmp_path: Path) -> None:
    """Every observation lands once, in the meeting one process puts it in: split by
    meeting, 2 and 4 writers make one process's ledger exactly; split by organizer (one
    meeting's copies with different writers) the index and the read models are one
    process's but for the order-dependent facts of the copy seen last; and a feed raced
    by two processes gives one process's ledger exactly."""
    feed = tmp_path / "feed.jsonl"
    lines = benchfeed_lines(feed, OBSERVATIONS, seed=3)
    reference_url = new_ledger()
    reference = one_process(feed, reference_url, batch_size=BATCH)
    # Each meeting's lines with one writer: the writers race on what meetings share (the
    # index, settings, checkpoints), and the ledger is one process's exactly.
    for n in (2, 4):
        url = new_ledger()
        run = ingest_together(_files(tmp_path, lines, n, "meeting", reference_url), url,
                              batch_size=BATCH)
        assert run.exits == [0] * n, run.errors
        got = figures(reference, project_and_fingerprint(url))
        assert (n, got.lost, got.duplicated, got.decisions_differing, got.index_differing,
                got.read_models_differing) == (n, 0, 0, 0, 0, {})
    for n in (2, 4):
        url = new_ledger()
        run = ingest_together(_files(tmp_path, lines, n, "organizer"), url, batch_size=BATCH)
        assert run.exits == [0] * n, run.errors
        got = figures(reference, project_and_fingerprint(url))
        assert (n, got.lost, got.duplicated, got.index_differing) == (n, 0, 0, 0)
        assert set(got.read_models_differing) <= ORDER_DEPENDENT, (n, got.read_models_differing)
    # The whole feed in two processes at once: each observation is raced by both.
    url = new_ledger()
    run = ingest_together(_files(tmp_path, lines, 2, "whole"), url, batch_size=BATCH)
    assert run.exits == [0, 0], run.errors
    got = figures(reference, project_and_fingerprint(url))
    assert (got.lost, got.duplicated, got.decisions_differing, got.index_differing,
            got.read_models_differing) == (0, 0, 0, 0, {})


class _Overtaken(Ledger):
    """Intake whose next commit another writer overtakes: ``meanwhile`` runs between the
    batch's decisions and its commit (what a second process does at random)."""

    def __init__(self, store: Store, meanwhile: Callable[[], object]) -> None:
        super().__init__(store, field_names=WIRE_FIELDS, redact_raw=redact_line)
        self.meanwhile: Callable[[], object] | None = meanwhile

    def _save(self, batch: Any) -> None:
        if self.meanwhile is not None and (batch.meetings or batch.directory is not None):
            run, self.meanwhile = self.meanwhile, None
            run()
        super()._save(batch)


def test_a_copy_routed_on_a_stale_index_joins_the_event_another_writer_recorded(
        store_url: str, tmp_path: Path) -> None:
    """Writer A decides the Outlook copy the sync made of a Salesforce-born Event while
    the Event is unknown (a new meeting keyed by the copy's iCalUId, claiming the
    Event's Id); writer B records the Event before A commits. A's commit finds the
    index row it was routed by changed, decides the copy again, and it joins the
    Event's meeting, as when one writer reads the Event first: one meeting, not two."""
    (_, event), (_, copy) = lines_of(Story("marker", 0, 0, False))
    first, second = tmp_path / "event.jsonl", tmp_path / "copy.jsonl"
    first.write_bytes(jsonl([settings_line(), event]))
    second.write_bytes(jsonl([settings_line(), copy]))
    reference = Store.open(str(tmp_path / "one.db"))
    a, b = Store.open(store_url), Store.open(store_url)
    try:
        ingest_files(reference, [first, second], show_progress=False)
        writer = _Overtaken(a, lambda: ingest_files(b, [first], show_progress=False))
        result = writer.ingest(feed_items(second))
        assert result.appended > 0 and not result.errors
        want = reference.lookup_keys([salesforce_key(event["payload"]["Id"])])
        got = a.lookup_keys([salesforce_key(event["payload"]["Id"])])
        assert got == want
        assert len(a.meeting_ids()) == len(reference.meeting_ids()) == 1
    finally:
        for s in (reference, a, b):
            s.close()


def test_a_save_parked_by_another_writer_meanwhile_is_taken_with_its_item(
        store_url: str, tmp_path: Path) -> None:
    """Writer B decides an Outlook item; before B commits, writer A reads the sidebar
    save of that item, finds no item and parks the save. B's commit finds a line parked
    for the item it records, decides its batch again and takes the save: nothing stays
    parked, and the save is recorded as when one writer reads the item first."""
    (_, item), (_, save) = lines_of(Story("saved", 0, 0, False))[:2]
    items, saves = tmp_path / "items.jsonl", tmp_path / "saves.jsonl"
    items.write_bytes(jsonl([settings_line(), item]))
    saves.write_bytes(jsonl([settings_line(), save]))
    reference = Store.open(str(tmp_path / "one.db"))
    a, b = Store.open(store_url), Store.open(store_url)
    try:
        ingest_files(reference, [items, saves], show_progress=False)
        parked = []
        writer = _Overtaken(b, lambda: parked.append(
            ingest_files(a, [saves], show_progress=False).parked))
        result = writer.ingest(feed_items(items))
        assert parked == [1] and result.unparked == 1 and not result.errors
        assert b.parked() == []
        mid = reference.meeting_ids()
        assert b.meeting_ids() == mid
        assert [t for _, _, t, _ in b.stored_events(mid[0])] == \
            [t for _, _, t, _ in reference.stored_events(mid[0])]
    finally:
        for s in (reference, a, b):
            s.close()


def test_a_writer_turn_outlasts_the_idle_in_transaction_timeout(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A PostgreSQL writer's turn holds its lock in a transaction that stays idle while the
    batch is decided again; the library ends such sessions after 5 s (here 1 s), which
    would drop the lock and fail the commit. The turn's own transaction is exempt."""
    require_postgres()
    monkeypatch.setenv("POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT", "1")
    schema = f"w_{uuid.uuid4().hex[:20]}"
    store = Store.open(f"postgresql://postgres@127.0.0.1:5432/test?schema={schema}")
    try:
        with store.writer_turn():
            time.sleep(1.5)  # deciding a large batch again on a busy machine
            store.write_side(SideRows(keys={"ex:a@contoso.com|1": "0" * 32}, quarantine=[],
                                      checkpoints={}))
        assert store.lookup_keys(["ex:a@contoso.com|1"]) == {"ex:a@contoso.com|1": "0" * 32}
    finally:
        store.close()
        drop_schema(schema)


def _people_files(tmp_path: Path) -> tuple[Path, Path]:
    """A meeting with an attendee no one has looked up yet (NINA), and NINA's record."""
    meeting, person = SandboxOrg(), SandboxOrg()
    meeting.settings(0, **ORG)
    meeting.graph(1, ALICE, graph_event(ALICE, "renewal", subject="Renewal", organizer=ALICE,
                                        attendees=(ALICE, NINA),
                                        start="2026-11-26T17:00:00", end="2026-11-26T18:00:00"))
    person.settings(0, **ORG)
    person.person(2, NINA)
    meetings, people = tmp_path / "meetings.jsonl", tmp_path / "people.jsonl"
    meetings.write_bytes(meeting.jsonl())
    people.write_bytes(person.jsonl())
    return meetings, people


@pytest.mark.parametrize("overtaken", ["person", "meeting"])
def test_a_person_and_a_meeting_waiting_on_them_recorded_at_once_are_related(
        store_url: str, tmp_path: Path, overtaken: str) -> None:
    """One writer records a meeting whose attendee is unknown, the other that attendee's
    Salesforce record, each committing between the other's decisions and commit. Either
    way the meeting ends up related to the person, as with one writer in either order:
    the person's writer finds a meeting waiting on the email was added meanwhile, the
    meeting's writer finds the directory it decided with has grown."""
    meetings, people = _people_files(tmp_path)
    reference = Store.open(str(tmp_path / "one.db"))
    a, b = Store.open(store_url), Store.open(store_url)
    try:
        first, second = (people, meetings) if overtaken == "person" else (meetings, people)
        ingest_files(reference, [second, first], show_progress=False)  # the commit order
        writer = _Overtaken(a, lambda: ingest_files(b, [second], show_progress=False))
        writer.ingest(feed_items(first))
        (mid,) = reference.meeting_ids()
        assert a.meeting(mid).unresolved == reference.meeting(mid).unresolved == {}
        assert [t for _, _, t, _ in a.stored_events(mid)] == \
            [t for _, _, t, _ in reference.stored_events(mid)]
    finally:
        for s in (reference, a, b):
            s.close()


def test_a_removal_another_writer_dropped_meanwhile_is_not_applied(
        store_url: str, tmp_path: Path) -> None:
    """A removal of an item never seen waits (parked). Writer B reads the item, delivered
    late, and takes the removal with it; before B commits, writer A records an
    observation past the removal's retention, which drops it. B's commit finds the line
    it took gone, decides its batch again, and records the item without the removal: as
    one writer taking A's batch, then B's, would (there the removal is gone first)."""
    gone = _graph_id(ALICE, "late-item")
    settings = {"kind": "org.settings", "observed_at": "2026-11-20T08:00:00Z",
                "payload": {**ORG, "parked_removal_max_age_hours": 48}}
    removal = {"kind": "graph.event", "observed_at": "2026-11-20T09:00:00Z", "mailbox": ALICE,
               "payload": {"@odata.type": "#microsoft.graph.event", "id": gone,
                           "@removed": {"reason": "deleted"}}}

    def item(name: str, at: str) -> dict[str, Any]:
        return {"kind": "graph.event", "observed_at": at, "mailbox": ALICE,
                "payload": graph_event(ALICE, name, subject=name, organizer=ALICE,
                                       start="2026-11-26T17:00:00", end="2026-11-26T18:00:00",
                                       attendees=(ALICE,))}

    parked, later, late = (tmp_path / f"{n}.jsonl" for n in ("parked", "later", "late"))
    parked.write_bytes(jsonl([settings, removal]))
    later.write_bytes(jsonl([item("other", "2026-11-23T09:00:00Z")]))  # 72 h on
    late.write_bytes(jsonl([item("late-item", "2026-11-20T08:30:00Z")]))
    reference = Store.open(str(tmp_path / "one.db"))
    a, b = Store.open(store_url), Store.open(store_url)
    try:
        ingest_files(reference, [parked, later, late], show_progress=False)
        ingest_files(b, [parked], show_progress=False)
        dropped = []
        writer = _Overtaken(b, lambda: dropped.append(
            ingest_files(a, [later], show_progress=False).parked_dropped))
        result = writer.ingest(feed_items(late))
        assert dropped == [1] and result.unparked == 0 and not result.errors
        assert b.parked() == reference.parked() == []
        (mid,) = [m for m in reference.meeting_ids()
                  if reference.lookup_keys([f"ex:{ALICE}|{gone}"])[f"ex:{ALICE}|{gone}"]
                  == m.hex]
        assert [t for _, _, t, _ in b.stored_events(mid)] == \
            [t for _, _, t, _ in reference.stored_events(mid)]
        assert not any(t.endswith("ExchangeItemRemoved") for _, _, t, _ in b.stored_events(mid))
    finally:
        for s in (reference, a, b):
            s.close()
