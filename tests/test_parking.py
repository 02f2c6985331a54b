"""Order independence: observations that arrive before what they depend on are parked
and taken again with it (issue 12 point 3), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from adapters.cli.main import main
from adapters.sandbox.org import ALICE, _at, _graph_id
from ledger.store import Store
from projections import queries
from tests.parked_feeds import (
    PEOPLE,
    Line,
    Story,
    clean,
    deliver,
    jsonl,
    lines_of,
    settings_line,
)
from tests.scenarios import ingest

ANSWERS = ("mapping", "issues", "conflicts", "plan")


def answers(store: Store) -> dict[str, list[dict[str, Any]]]:
    return {name: queries.read_model(store, name) for name in ANSWERS}


def feed(lines: list[Line]) -> bytes:
    return jsonl([settings_line(), *lines])


stories = st.lists(
    st.builds(Story, shape=st.sampled_from(["series", "saved", "sf", "marker"]),
              n=st.just(0), owner=st.integers(0, len(PEOPLE) - 1), later=st.booleans()),
    min_size=1, max_size=4).map(lambda xs: [Story(s.shape, n, s.owner, s.later)
                                            for n, s in enumerate(xs)])


#: Examples of the order property: 25 in the suite; SYNCLEDGER_PARKING_EXAMPLES=N for a
#: longer run (README, "Order: parked observations").
EXAMPLES = int(os.environ.get("SYNCLEDGER_PARKING_EXAMPLES") or 25)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chosen=stories, picks=st.lists(st.integers(0, 60), min_size=1, max_size=30),
       repeats=st.lists(st.tuples(st.integers(0, 99), st.integers(0, 99)), max_size=4))
def test_any_delivery_order_and_repeats_give_the_clean_answers(
        chosen: list[Story], picks: list[int], repeats: list[tuple[int, int]]) -> None:
    lines = clean(chosen)
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        clean_store, delivered = Store.open(str(t / "a.db")), Store.open(str(t / "b.db"))
        try:
            ingest(clean_store, feed([line for _, line in lines]), t, "clean.jsonl")
            result = ingest(delivered, feed(deliver(lines, picks, repeats)), t, "any.jsonl")
            assert result.quarantined == 0
            event("some line parked" if result.parked else "nothing parked")
            assert answers(delivered) == answers(clean_store)
            assert delivered.parked() == []  # everything waited for arrived
        finally:
            clean_store.close()
            delivered.close()


def _parked_json(store_url: str, capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    capsys.readouterr()
    assert main(["parked", "--db", store_url, "--json"]) == 0
    rows: list[dict[str, Any]] = json.loads(capsys.readouterr().out)
    return rows


def test_a_save_before_its_item_waits_then_syncs_like_the_clean_order(
        store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (item, save, *_) = [line for _, line in lines_of(Story("saved", 0, 0, False))]
    early = tmp_path / "save.jsonl"
    early.write_bytes(feed([save]))
    assert main(["ingest", str(early), "--db", store_url, "--json"]) == 0  # not 3
    summary = json.loads(capsys.readouterr().out)
    assert summary["quarantined"] == 0 and summary["parked"] == 1
    (row,) = _parked_json(store_url, capsys)
    assert row["kind"] == "sidebar.save" and row["waits_for_kind"] == "exchange-item"
    assert row["item_id"] == item["payload"]["id"] and row["since"] == save["observed_at"]
    assert row["source"] == "save.jsonl" and row["line_no"] == 2 and not row["overdue"]
    assert main(["ingest", str(early), "--db", store_url, "--json"]) == 0  # again
    assert json.loads(capsys.readouterr().out)["parked"] == 0
    assert len(_parked_json(store_url, capsys)) == 1  # not doubled

    late = tmp_path / "item.jsonl"
    late.write_bytes(jsonl([item]))
    assert main(["ingest", str(late), "--db", store_url, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["unparked"] == 1
    assert _parked_json(store_url, capsys) == []
    store = Store.open(store_url)
    reference = Store.open(str(tmp_path / "clean.db"))
    try:
        ingest(reference, feed([item, save]), tmp_path, "clean.jsonl")
        got = answers(store)
        assert got["conflicts"] and got == answers(reference)  # the save took effect
    finally:
        store.close()
        reference.close()


def test_two_files_in_either_order_give_the_same_answers(store_url: str, tmp_path: Path
                                                         ) -> None:
    """Occurrences in one file, their masters and the Salesforce side in another."""
    lines = clean([Story("series", 0, 0, True), Story("series", 1, 1, False),
                   Story("sf", 2, 2, True), Story("saved", 3, 1, True)])
    waiting = [line for _, line in lines if line["kind"] == "salesforce.deleted"
               or line["kind"] == "sidebar.save"
               or line["payload"].get("type") in ("occurrence", "exception")]
    rest = [line for _, line in lines if line not in waiting]
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first.write_bytes(feed(waiting))
    second.write_bytes(feed(rest))
    backwards = Store.open(store_url)
    forwards = Store.open(str(tmp_path / "forwards.db"))
    try:
        from adapters.feed.ingest import ingest_files

        early = ingest_files(backwards, [first], show_progress=False)
        assert early.parked == len(waiting) and early.quarantined == 0
        late = ingest_files(backwards, [second], show_progress=False)
        assert late.unparked == len(waiting)
        ingest_files(forwards, [second, first], show_progress=False)
        got = answers(backwards)
        assert len(got["mapping"]) == 0 and got["plan"]  # nothing linked yet, writes planned
        assert got == answers(forwards)
        assert backwards.parked() == []
    finally:
        backwards.close()
        forwards.close()


def test_a_line_that_waits_too_long_is_a_sync_issue_until_its_item_comes(
        store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (item, save, *_) = [line for _, line in lines_of(Story("saved", 0, 0, False))]
    gone = {"kind": "graph.event", "observed_at": save["observed_at"], "mailbox": ALICE,
            "payload": {"@odata.type": "#microsoft.graph.event",
                        "id": _graph_id(ALICE, "never-seen"), "@removed": {"reason": "deleted"}}}
    # Something else happens 30 hours later: "now" is the newest observation, not the clock.
    later = lines_of(Story("series", 9, 1, False))[0][1]
    later = {**later, "observed_at": _at(30 * 60 + 11)}
    path = tmp_path / "feed.jsonl"
    path.write_bytes(feed([save, gone, later]))
    store = Store.open(store_url)
    try:
        ingest(store, path.read_bytes(), tmp_path)
        (issue,) = [i for i in queries.issues(store) if i["kind"] == "waiting-for-dependency"]
        assert issue["state"] == "open" and issue["meeting_id"] is None
        assert issue["exchange_id"] == item["payload"]["id"] and issue["mailbox"] == ALICE
        assert "has waited 30 h for the Outlook item" in issue["message"]
        assert issue["raised_at"] == "2026-11-21T09:11:00Z"  # parked at 09:11 + 24 h
        assert queries.issues(store, kind="waiting-for-dependency", state="resolved") == []
        # the removal waits too, but never becomes an issue
        assert {r["kind"]: r["overdue"] for r in queries.parked(store)} == {
            "sidebar.save": True, "exchange.removed": False}
    finally:
        store.close()

    capsys.readouterr()
    assert main(["explain", item["payload"]["id"], "--db", store_url]) == 0
    out = capsys.readouterr().out
    assert "waiting-for-dependency" in out and "parked since" in out

    longer = tmp_path / "settings.jsonl"
    longer.write_bytes(jsonl([{"kind": "org.settings", "observed_at": _at(30 * 60 + 12),
                               "payload": {"parked_max_age_hours": 48}}]))
    assert main(["ingest", str(longer), "--db", store_url]) == 0
    assert main(["issues", "--kind", "waiting-for-dependency", "--db", store_url]) == 0
    assert "no issues rows" in capsys.readouterr().out

    shorter = tmp_path / "shorter.jsonl"
    shorter.write_bytes(jsonl([{"kind": "org.settings", "observed_at": _at(30 * 60 + 13),
                                "payload": {"parked_max_age_hours": 1}}, item]))
    assert main(["ingest", str(shorter), "--db", store_url]) == 0  # the item arrives
    store = Store.open(store_url)
    try:
        assert [i for i in queries.issues(store) if i["kind"] == "waiting-for-dependency"] == []
        assert [r["kind"] for r in queries.parked(store)] == ["exchange.removed"]
    finally:
        store.close()


@pytest.mark.parametrize("value", ["24", 0, True, 1.5, 87_601])
def test_a_wrong_parked_max_age_is_quarantined_naming_the_key(
        value: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "settings.jsonl"
    path.write_bytes(jsonl([{"kind": "org.settings", "observed_at": _at(1),
                             "payload": {"parked_max_age_hours": value}}]))
    db = str(tmp_path / "l.db")
    assert main(["ingest", str(path), "--db", db]) == 3
    assert "parked_max_age_hours" in capsys.readouterr().err


def test_parked_lists_pages_and_says_when_nothing_waits(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "l.db")
    saves = [line for n in range(3) for _, line in lines_of(Story("saved", n, 0, False))
             if line["kind"] == "sidebar.save"]
    path = tmp_path / "saves.jsonl"
    path.write_bytes(feed(saves))
    assert main(["ingest", str(path), "--db", db]) == 0
    capsys.readouterr()
    assert main(["parked", "--db", db, "--limit", "1", "--offset", "1"]) == 0
    out = capsys.readouterr().out
    assert "saves.jsonl  3 " in out and "saves.jsonl  2 " not in out  # the second one
    assert "2-2 of 3 parked observations" in out
    Path(tmp_path / "none.jsonl").write_bytes(jsonl([settings_line()]))
    assert main(["ingest", str(tmp_path / "none.jsonl"), "--db", str(tmp_path / "n.db")]) == 0
    capsys.readouterr()
    assert main(["parked", "--db", str(tmp_path / "n.db")]) == 0
    assert "no parked observations" in capsys.readouterr().out


@pytest.mark.parametrize("story", ["boardprep", "forecast"])
def test_classic_occurrences_link_whichever_calendar_was_read_first(
        story: str, tmp_path: Path) -> None:
    """A Classic series' occurrences read before the Outlook occurrences they mirror (or
    before the series was saved) are linked when those arrive, as in the other order."""
    from adapters.sandbox.org import build

    org = build()
    head = [line for g, line in zip(org.groups, org.feed, strict=True) if g == "org"]
    lines = [line for g, line in zip(org.groups, org.feed, strict=True) if g == story]
    sf_first = [x for x in lines if x["kind"] == "salesforce.event"] + \
        [x for x in lines if x["kind"] != "salesforce.event"]
    clean_store = Store.open(str(tmp_path / "clean.db"))
    swapped = Store.open(str(tmp_path / "swapped.db"))
    try:
        ingest(clean_store, jsonl(head + lines), tmp_path, "clean.jsonl")
        ingest(swapped, jsonl(head + sf_first), tmp_path, "swapped.jsonl")
        links = queries.mapping(clean_store)
        assert len([r for r in links if r["occurrence_start"]]) >= 3
        assert queries.mapping(swapped) == links
    finally:
        clean_store.close()
        swapped.close()
