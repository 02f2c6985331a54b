"""history, state, explain, replay, whatif: what a person debugging a meeting sees."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters.cli.main import main
from adapters.sandbox.org import (
    ALICE,
    BOB,
    CAROL,
    _graph_id,
    _ical,
    _sf_id,
    build,
    graph_event,
)
from ledger.identity import ical_key, meeting_id
from ledger.store import Store
from tests.scenarios import ingest, org_with_settings


@pytest.fixture
def demo_db(store_url: str, tmp_path: Path) -> str:
    store = Store.open(store_url)
    ingest(store, build(), tmp_path)
    store.close()
    return store_url


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> object:
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


# Every item of the demo that does not sync, by the id a person would have in hand.
NOT_SYNCED = {
    _graph_id(BOB, "pricing"): "attendee-before-organizer",
    _graph_id(ALICE, "private"): "private-item",
    _graph_id(ALICE, "offsite"): "recurring-all-day",
    _graph_id(ALICE, "apac"): "unsupported-time-zone",
    _graph_id(ALICE, "qbr"): "recurrence-conversion",
    _sf_id("00U", 20): "lightning-recurrence",
}


def test_explain_gives_the_rule_and_evidence_for_every_non_synced_item(
        demo_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    for any_id, rule in NOT_SYNCED.items():
        out = run_json(capsys, "explain", any_id, "--db", demo_db, "--json")
        assert isinstance(out, dict)
        assert set(out) == {"id", "meeting_id", "state", "synced", "rule", "message",
                            "action", "evidence", "people", "full_reads"}
        assert out["synced"] is False and out["rule"] == rule, (any_id, out)
        assert out["message"] and out["action"]
        assert out["evidence"] and all(e["position"] > 0 for e in out["evidence"])
        assert any(e["rule"] == rule or e["type"] == "SidebarSaveObserved"
                   for e in out["evidence"])
        # ...and the observation that led there: what the calendar showed.
        assert any(e["source"] in ("graph", "salesforce") for e in out["evidence"]), out


def test_explain_synced_items_and_every_kind_of_id(demo_db: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    review = str(meeting_id(ical_key(_ical("review"))))
    for any_id in (review, _ical("review"), _graph_id(ALICE, "review"), _sf_id("00U", 1),
                   _sf_id("00U", 1)[:15]):
        out = run_json(capsys, "explain", any_id, "--db", demo_db, "--json")
        assert isinstance(out, dict)
        assert out["meeting_id"] == review and out["synced"] is True, any_id
    intro = run_json(capsys, "explain", _graph_id(ALICE, "intro"), "--db", demo_db, "--json")
    assert isinstance(intro, dict)
    assert intro["rule"] == "organizer-not-user"
    assert main(["explain", "no-such-id", "--db", demo_db]) == 4
    assert "no meeting" in capsys.readouterr().err


def test_explain_human_output_names_who_can_act(demo_db: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", _graph_id(BOB, "pricing"), "--db", demo_db]) == 0
    out = capsys.readouterr().out
    assert "attendee-before-organizer" in out and f"organizer ({CAROL})" in out


def test_history_of_a_series_with_an_exception(demo_db: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    rows = run_json(capsys, "history", _ical("boardprep"), "--db", demo_db, "--json")
    assert isinstance(rows, list)
    types = [r["type"] for r in rows]
    assert types.count("ExchangeItemObserved") == 4  # master, two occurrences, the exception
    assert "SeriesMasterOverwritten" in types
    positions = [r["position"] for r in rows]
    assert positions == sorted(positions)
    edit = [r for r in rows if r["type"] == "SalesforceEventObserved"
            and "location" in r["changes"] and r["changes"]["location"][0] == "Room 2"]
    assert edit and edit[0]["changes"]["location"] == ["Room 2", "Room 7"]
    assert {r["source"] for r in rows} >= {"graph", "salesforce", "decision", "settings"}
    assert main(["history", _ical("boardprep"), "--db", demo_db]) == 0
    assert "SeriesMasterOverwritten [series-master-overwrite]" in capsys.readouterr().out


def test_settings_changed_mid_history(store_url: str, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    org = org_with_settings()
    event = graph_event(ALICE, "p", subject="1:1", organizer=ALICE, attendees=(ALICE,),
                        sensitivity="private", start="2026-11-24T17:00:00",
                        end="2026-11-24T18:00:00")
    org.graph(1, ALICE, event)
    org.settings(30, sync_private_items=True)
    org.graph(31, ALICE, {**event, "changeKey": "ck2", "subject": "1:1 (agenda)"})
    store = Store.open(store_url)
    ingest(store, org, tmp_path)
    store.close()
    rows = run_json(capsys, "history", _ical("p"), "--db", store_url, "--json")
    assert isinstance(rows, list)
    settings_rows = [r for r in rows if r["source"] == "settings"]
    assert len(settings_rows) == 2  # the one in force at first sight, and the change
    assert settings_rows[1]["changes"]["changes"] == {"sync_private_items": True}
    before = run_json(capsys, "state", _ical("p"), "--at", "2026-11-20T09:10:00Z",
                      "--db", store_url, "--json")
    after = run_json(capsys, "state", _ical("p"), "--db", store_url, "--json")
    assert isinstance(before, dict) and isinstance(after, dict)
    assert [i["rule"] for i in before["open_issues"].values()] == ["private-item"]
    assert after["open_issues"] == {} and after["saved_by"]
    v2 = run_json(capsys, "state", _ical("p"), "--version", "2", "--db", store_url, "--json")
    assert isinstance(v2, dict) and v2["version"] == 2
    out = run_json(capsys, "explain", _ical("p"), "--db", store_url, "--json")
    assert isinstance(out, dict) and out["rule"] is None and out["synced"] is False
    assert "pending" in out["message"] or "not show" in out["message"]


def test_replay_until_a_time_answers_with_the_ordinary_commands(
        demo_db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    past = f"sqlite:///{tmp_path / 'past.db'}"
    out = run_json(capsys, "replay", "--until", "2026-11-20T09:30:00Z", "--db-out", past,
                   "--json", "--db", demo_db)
    assert isinstance(out, dict) and out["events_copied"] > 0
    then = run_json(capsys, "issues", "--db", past, "--json")
    now = run_json(capsys, "issues", "--db", demo_db, "--json")
    assert isinstance(then, list) and isinstance(now, list)
    kinds_then = {r["kind"] for r in then}
    assert "recurrence-conversion" not in kinds_then  # the QBR became a series at 09:40
    assert "recurrence-conversion" in {r["kind"] for r in now}
    plan_then = run_json(capsys, "plan", "--db", past, "--json")
    assert isinstance(plan_then, list)
    assert not [p for p in plan_then if p["reason"] == "series-master-update"]
    assert main(["replay", "--until", "2026-11-20T09:30:00Z", "--db-out", past,
                 "--db", demo_db]) == 2  # not an empty target


def test_whatif_shows_what_a_settings_change_would_do(demo_db: str,
                                                      capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    before = run_json(capsys, "issues", "--db", demo_db, "--json")
    out = run_json(capsys, "whatif", "--set", "sync_private_items=true",
                   "--set", "salesforce_time_zones+=Pacific/Apia", "--db", demo_db, "--json")
    assert isinstance(out, dict)
    private = str(meeting_id(ical_key(_ical("private"))))
    apac = str(meeting_id(ical_key(_ical("apac"))))
    assert {r["meeting_id"] for r in out["would_now_sync"]} == {private, apac}
    gone = {(r["meeting_id"], r["issue"].split(" on ")[0]) for r in out["issues_disappear"]}
    assert gone == {(private, "private-item"), (apac, "unsupported-time-zone")}
    assert out["issues_appear"] == [] and out["conflicts_appear"] == []
    assert run_json(capsys, "issues", "--db", demo_db, "--json") == before  # untouched
    assert main(["whatif", "--set", "no_such_setting=1", "--db", demo_db]) == 2


def test_explain_says_the_state_analytics_says(demo_db: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """One vocabulary: for every meeting, ``explain`` prints the sync state the BI table has
    (a linked meeting with writes still to carry out is "pending" in both)."""
    rows = run_json(capsys, "analytics", "--db", demo_db, "--json")
    assert isinstance(rows, list) and len(rows) == 13
    assert {r["sync_state"] for r in rows} >= {"pending", "not-synced", "conflict"}
    for row in rows:
        out = run_json(capsys, "explain", row["meeting_id"], "--db", demo_db, "--json")
        assert isinstance(out, dict) and out["state"] == row["sync_state"], row
        assert main(["explain", row["meeting_id"], "--db", demo_db]) == 0
        assert f"state    {row['sync_state']}\n" in capsys.readouterr().out
    assert all(r["subject"] for r in rows if r["sync_state"] != "not-synced")  # table has it


def test_ids_cut_by_a_narrow_table_are_taken_back(demo_db: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """What ``mapping`` prints at 80 columns (ids cut with an ellipsis) is accepted back by
    explain, history and state as a unique prefix; a prefix several meetings share is
    refused, saying so."""
    rows = run_json(capsys, "mapping", "--db", demo_db, "--json")
    assert isinstance(rows, list) and rows
    for row in rows:
        for cut in (row["exchange_id"][:24] + "\u2026", row["meeting_id"][:8]):
            for cmd in ("explain", "history", "state"):
                out = run_json(capsys, cmd, cut, "--db", demo_db, "--json")
                got = out["meeting_id"] if isinstance(out, dict) else None
                if cmd == "history":  # a list of timeline entries: ask the text form
                    assert main([cmd, cut, "--db", demo_db]) == 0
                    got = capsys.readouterr().out.split()[1]
                assert got == row["meeting_id"], (cmd, cut)
    assert main(["explain", "AAMkAG", "--db", demo_db]) == 4
    assert "start of ids of" in capsys.readouterr().err
    assert main(["explain", "AAMk", "--db", demo_db]) == 4  # too short to be a prefix
    assert "no meeting" in capsys.readouterr().err
