"""Reliability as a user with real traffic meets it: redelivery, re-ingest, old snapshots."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from adapters.cli.main import main
from adapters.sandbox.org import ALICE, _graph_id, _ical, graph_event
from ledger.identity import ical_key, meeting_id
from ledger.meeting import Meeting
from ledger.store import Store
from tests.scenarios import ingest, meeting_of, org_with_settings, pending


def _item(revision: int, modified: str) -> dict[str, object]:
    return graph_event(ALICE, "gone", subject=f"Plan v{revision}", organizer=ALICE,
                       attendees=(ALICE,), start="2026-11-24T17:00:00",
                       end="2026-11-24T18:00:00", revision=revision, modified=modified)


def test_redelivered_old_versions_do_not_reopen_a_deleted_item(store: Store, tmp_path: Path
                                                               ) -> None:
    org = org_with_settings()
    org.graph(1, ALICE, _item(1, "2026-11-19T08:00:00Z"))
    org.graph(2, ALICE, _item(2, "2026-11-19T09:00:00Z"))
    org.removed(3, ALICE, _graph_id(ALICE, "gone"))
    first = ingest(store, org, tmp_path)
    mid = meeting_id(ical_key(_ical("gone")))
    version = meeting_of(store, ical_key(_ical("gone"))).version

    again = org_with_settings()  # Graph re-delivers v1 and v2 later
    again.graph(10, ALICE, _item(1, "2026-11-19T08:00:00Z"))
    again.graph(11, ALICE, _item(2, "2026-11-19T09:00:00Z"))
    result = ingest(store, again, tmp_path, "again.jsonl")
    assert result.appended == 0 and result.duplicates == 3
    meeting = store.meeting(mid)
    assert meeting.version == version
    assert f"{ALICE}|{_graph_id(ALICE, 'gone')}" in meeting.removed
    assert not pending(meeting, "salesforce", "create")
    # re-ingesting the first file appends nothing either
    assert ingest(store, org, tmp_path).appended == 0 and first.appended > 0

    newer = org_with_settings()  # a version modified after the deleted one undoes it
    newer.graph(12, ALICE, _item(3, "2026-11-19T10:00:00Z"))
    assert ingest(store, newer, tmp_path, "newer.jsonl").appended > 0
    assert not store.meeting(mid).removed


def test_two_settings_lines_and_a_bad_line_reingest_to_nothing(store_url: str, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]
                                                               ) -> None:
    org = org_with_settings()
    org.settings(5, sync_private_items=True)
    feed = tmp_path / "feed.jsonl"
    feed.write_bytes(org.jsonl() + b"{not json\n")
    assert main(["ingest", str(feed), "--db", store_url, "--json"]) == 3
    assert json.loads(capsys.readouterr().out)["events_appended"] > 0
    assert main(["ingest", str(feed), "--db", store_url, "--json"]) == 3
    second = json.loads(capsys.readouterr().out)
    assert second["events_appended"] == 0 and second["duplicates_skipped"] == 2
    assert main(["quarantine", "--db", store_url, "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 1


def test_a_snapshot_from_before_removals_loads_and_keeps_its_removals() -> None:
    """Meeting class_version 2 added ``removals``; a version-1 snapshot is upcast."""
    meeting = Meeting.open(ical_key("x"), "2026-11-20T09:00:00Z")
    meeting.removed["a@contoso.com|AAMk1"] = "deleted"
    old = {k: v for k, v in vars(meeting).items() if k != "removals"}
    Meeting.upcast_v1_v2(old)
    assert old["removals"]["a@contoso.com|AAMk1"]["reason"] == "deleted"
    assert old["removals"]["a@contoso.com|AAMk1"]["observed_at"] is None


def test_snapshot_round_trip_through_the_store_keeps_removals(store: Store, tmp_path: Path
                                                              ) -> None:
    from eventsourcing.domain import Snapshot

    org = org_with_settings()
    org.graph(1, ALICE, _item(1, "2026-11-19T08:00:00Z"))
    org.removed(2, ALICE, _graph_id(ALICE, "gone"))
    ingest(store, org, tmp_path)
    meeting = meeting_of(store, ical_key(_ical("gone")))
    snap = Snapshot.take(meeting)
    assert snap.state["class_version"] == 4
    state = {k: v for k, v in snap.state.items() if k not in ("removals", "class_version")}
    old = Snapshot(originator_id=snap.originator_id, originator_version=snap.originator_version,
                   timestamp=snap.timestamp, topic=snap.topic, state=state)
    restored = old.mutate(None)
    assert isinstance(restored, Meeting)
    assert restored.removals[f"{ALICE}|{_graph_id(ALICE, 'gone')}"]["reason"] == "deleted"
    orjson.dumps(restored.removals)  # JSON-native, as snapshots are stored


def test_malformed_corpus_every_line_quarantined_naming_its_field(store: Store, tmp_path: Path
                                                                   ) -> None:
    """Wrong types, unstorable text and out-of-range years, on both stores."""
    from tests.malformed_corpus import run_corpus

    report = run_corpus(store, tmp_path)
    assert report["controls_quarantined"] == 0 and report["controls"] == 7
    assert report["accepted_wrongly"] == []
    assert report["quarantined_other_field"] == []
    assert report["quarantined_right_field"] == report["tried"] > 100


def test_a_far_future_time_quarantines_one_line_and_saves_the_rest(
        store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    org = org_with_settings()
    org.graph(1, ALICE, _item(1, "2026-11-19T08:00:00Z"))
    lines = org.jsonl().splitlines()
    bad = orjson.loads(lines[1])
    bad["observed_at"] = "9999-12-31T23:59:59-14:00"
    feed = tmp_path / "feed.jsonl"
    feed.write_bytes(b"\n".join([lines[0], orjson.dumps(bad), lines[1]]) + b"\n")
    assert main(["ingest", str(feed), "--db", store_url]) == 3
    err = capsys.readouterr().err
    assert "Traceback" not in err and "observed_at" in err
    store = Store.open(store_url)
    try:
        assert meeting_of(store, ical_key(_ical("gone"))).items
    finally:
        store.close()
