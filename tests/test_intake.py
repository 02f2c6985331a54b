"""Intake as a user meets it: the CLI, bad input, idempotence, the demo feed, both stores."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from adapters.cli.main import main
from adapters.sandbox.org import (
    ALICE,
    SandboxOrg,
    _graph_id,
    _ical,
    build,
    demo_feed,
    demo_feed_path,
    graph_event,
)
from ledger.identity import ical_key
from ledger.store import Store
from tests.scenarios import ingest, meeting_of, org_with_settings


def test_bundled_feed_is_the_sandbox_org() -> None:
    assert demo_feed_path().read_bytes() == demo_feed(), \
        "regenerate it: python -m adapters.sandbox.org"


def test_ingest_cli_summary_and_idempotence(store_url: str, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    feed = tmp_path / "feed.jsonl"
    feed.write_bytes(demo_feed())
    assert main(["ingest", str(feed), "--db", store_url, "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["lines_read"] == len(build().feed)
    assert first["events_appended"] > first["lines_read"]
    assert first["quarantined"] == 0 and first["duplicates_skipped"] == 0
    assert main(["ingest", str(feed), "--db", store_url, "--json"]) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["events_appended"] == 0
    assert second["duplicates_skipped"] == second["lines_read"]


def test_bad_lines_are_quarantined_and_the_rest_ingested(store_url: str, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    org = org_with_settings()
    good = graph_event(ALICE, "ok", subject="Fine", organizer=ALICE, attendees=(ALICE,),
                       start="2026-11-24T17:00:00", end="2026-11-24T18:00:00")
    org.graph(1, ALICE, good)
    bad_time = {**good, "id": "AAMkBADTIME", "start": {"dateTime": "24/11/2026 5pm",
                                                       "timeZone": "UTC"}}
    lines = org.jsonl().splitlines()
    lines.insert(1, b"{this is not json")
    lines.append(orjson.dumps({"kind": "graph.event", "observed_at": "2026-11-20T09:05:00Z",
                               "mailbox": ALICE, "payload": bad_time}))
    lines.append(orjson.dumps({"kind": "graph.event", "observed_at": "2026-11-20T09:05:00Z",
                               "payload": good}))  # no mailbox
    lines.append(orjson.dumps({"kind": "org.settings", "observed_at": "2026-11-20T09:06:00Z",
                               "payload": {"sync_everything": True}}))
    lines.append(b'{"kind": "graph.event", "observed_at": "2026-11-20T09:0')  # truncated
    feed = tmp_path / "feed.jsonl"
    feed.write_bytes(b"\n".join(lines))

    assert main(["ingest", str(feed), "--db", store_url]) == 3
    err = capsys.readouterr().err
    assert "line 2" in err
    assert main(["quarantine", "--db", store_url, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["line_no"] for r in rows] == [2, 4, 5, 6, 7]
    by_line = {r["line_no"]: r for r in rows}
    assert by_line[4]["item_id"] == "AAMkBADTIME" and "start" in by_line[4]["field"]
    assert by_line[5]["field"] == "mailbox"
    assert "sync_everything" in by_line[6]["error"]
    assert by_line[7]["raw"].startswith('{"kind": "graph.event"')
    store = Store.open(store_url)
    try:  # the good item was recorded despite the bad lines around it
        assert meeting_of(store, ical_key(_ical("ok"))).items
    finally:
        store.close()


def test_save_of_an_item_never_seen_waits_parked(store: Store, tmp_path: Path) -> None:
    org = org_with_settings()
    org.save(1, ALICE, _graph_id(ALICE, "ghost"))
    result = ingest(store, org, tmp_path)
    assert result.quarantined == 0 and result.parked == 1
    assert store.quarantined() == []
    (line,) = store.parked()
    assert line.kind == "sidebar.save" and line.item_id == _graph_id(ALICE, "ghost")


def test_unknown_db_url_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["quarantine", "--db", "mysql://x/y"]) == 2
    assert "--db" in capsys.readouterr().err


def test_demo_runs_on_the_embedded_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "syncledger-demo.db").exists()
    for rule in ("private-item", "attendee-before-organizer", "organizer-not-user",
                 "series-master-update", "series-master-overwrite", "recurring-all-day",
                 "recurrence-conversion", "unsupported-time-zone", "lightning-recurrence"):
        assert rule in out, rule
    assert main(["demo", "--json"]) == 0  # runs again from scratch
    report = json.loads(capsys.readouterr().out)
    assert report["intake"]["quarantined"] == 0
    assert len(report["meetings"]) == 13


def test_a_concurrent_writer_is_retried_meeting_by_meeting(store_url: str) -> None:
    """Two intake processes touch the same meeting: the stale one re-decides, nothing is lost."""
    from adapters.feed.envelopes import parse_line
    from ledger.intake import Intake, Ledger

    org = org_with_settings()
    base = dict(subject="Shared", organizer=ALICE, attendees=(ALICE,),
                start="2026-11-24T17:00:00", end="2026-11-24T18:00:00")
    org.graph(1, ALICE, graph_event(ALICE, "c", **base))  # type: ignore[arg-type]
    org.graph(2, ALICE, graph_event(ALICE, "c", **{**base, "location": "Room 1"},  # type: ignore[arg-type]
                                    revision=1))
    org.graph(3, ALICE, graph_event(ALICE, "c", **{**base, "location": "Room 2"},  # type: ignore[arg-type]
                                    revision=2))
    org.graph(3, ALICE, graph_event(ALICE, "other", **base))  # type: ignore[arg-type]
    items = [Intake("t", n, line, parse_line(line))
             for n, line in enumerate(org.jsonl().splitlines(), start=1)]
    first, second = Store.open(store_url), Store.open(store_url)
    try:
        a, b = Ledger(first), Ledger(second)
        a.ingest(items[:2])  # settings + first version; A now caches the meeting
        b.ingest(items[2:3])  # B appends the second version behind A's back
        result = a.ingest(items[3:])  # A's cached copy is stale: a version conflict
        assert result.quarantined == 0
        m = meeting_of(first, ical_key(_ical("c")))
        assert m.items[next(iter(m.items))]["location"] == "Room 2"
        versions = [v for _, v, _, _ in first.stored_events(m.id)]
        assert versions == list(range(1, len(versions) + 1))
        assert meeting_of(first, ical_key(_ical("other"))).items  # the batch's other meeting
    finally:
        first.close()
        second.close()


def test_a_query_on_a_missing_ledger_says_so_instead_of_creating_one(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    typo = tmp_path / "ledgr.db"
    assert main(["issues", "--db", str(typo)]) == 4
    assert "no ledger at" in capsys.readouterr().err and not typo.exists()


def test_a_byte_order_mark_is_not_an_error(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    feed = tmp_path / "bom.jsonl"
    feed.write_bytes(b"\xef\xbb\xbf" + demo_feed().replace(b"\n", b"\r\n"))
    assert main(["ingest", str(feed), "--db", str(tmp_path / "l.db"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["quarantined"] == 0


def test_an_unreachable_store_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["issues", "--db", "postgresql://postgres@127.0.0.1:9/test?schema=x"]) == 1
    err = capsys.readouterr().err
    assert "cannot open the ledger at postgresql://postgres@127.0.0.1:9/test" in err
    assert "Traceback" not in err


def test_a_settings_change_read_late_does_not_undo_a_newer_one(
        store: Store, tmp_path: Path) -> None:
    """Two files in the wrong order: the change observed at 09:30 arrives after the one
    observed at 10:00. A key the later change set keeps the later value; a key only the
    earlier one set takes effect."""
    from ledger.intake import Ledger

    newer, older = org_with_settings(), SandboxOrg()
    newer.settings(60, sync_private_items=True)
    older.settings(30, sync_private_items=False, auto_save="off")
    ingest(store, newer, tmp_path, "newer.jsonl")
    ingest(store, older, tmp_path, "older.jsonl")
    settings = Ledger(store).settings()
    assert settings.sync_private_items is True  # set again at 10:00
    assert settings.auto_save == "off"  # set by 09:30's line only
    again = ingest(store, older, tmp_path, "older-again.jsonl")
    assert again.appended == 0  # the same late line again: nothing new
