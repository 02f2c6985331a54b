"""Order independence: observations that arrive before what they depend on are parked
and taken again with it (issue 12 point 3), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import re
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from adapters.cli.main import main
from adapters.sandbox.org import ALICE, _at, _graph_id, _sf_id, graph_event
from ledger.identity import ical_key
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
from tests.scenarios import ORG, ingest, meeting_of

ANSWERS = ("mapping", "issues", "conflicts", "plan")


def answers(store: Store) -> dict[str, list[dict[str, Any]]]:
    return {name: queries.read_model(store, name) for name in ANSWERS}


def feed(lines: list[Line]) -> bytes:
    return jsonl([settings_line(), *lines])


stories = st.lists(
    st.builds(Story, shape=st.sampled_from(["series", "saved", "sf", "undeleted", "marker"]),
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


@pytest.mark.parametrize("key", ["parked_max_age_hours", "parked_removal_max_age_hours"])
@pytest.mark.parametrize("value", ["24", 0, True, 1.5, 87_601])
def test_a_wrong_parked_max_age_is_quarantined_naming_the_key(
        key: str, value: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "settings.jsonl"
    path.write_bytes(jsonl([{"kind": "org.settings", "observed_at": _at(1),
                             "payload": {key: value}}]))
    db = str(tmp_path / "l.db")
    assert main(["ingest", str(path), "--db", db]) == 3
    assert f"setting '{key}': must be a whole number" in capsys.readouterr().err


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


# --- retention of parked removals; replay of the parked table ------------------------

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def _iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def _hours(h: float, base: datetime = T0) -> str:
    return _iso(base + timedelta(hours=h))


def _settings(at: str, **changes: Any) -> Line:
    return {"kind": "org.settings", "observed_at": at, "payload": {**ORG, **changes}}


def _removed(name: str, at: str) -> Line:
    """An Outlook removal of an item the ledger never saw (created and deleted between
    two reads)."""
    return {"kind": "graph.event", "observed_at": at, "mailbox": ALICE,
            "payload": {"@odata.type": "#microsoft.graph.event",
                        "id": _graph_id(ALICE, name), "@removed": {"reason": "deleted"}}}


def _sf_deleted(n: int, at: str) -> Line:
    return {"kind": "salesforce.deleted", "observed_at": at,
            "payload": {"id": _sf_id("00U", n), "deletedDate": at}}


def _item(name: str, at: str) -> Line:
    return {"kind": "graph.event", "observed_at": at, "mailbox": ALICE,
            "payload": graph_event(ALICE, name, subject=f"Item {name}",
                                   start="2026-11-26T17:00:00", end="2026-11-26T18:00:00",
                                   organizer=ALICE, attendees=(ALICE,))}


def _save(name: str, at: str) -> Line:
    return {"kind": "sidebar.save", "observed_at": at, "mailbox": ALICE,
            "payload": {"itemId": _graph_id(ALICE, name)}}


def _ingest_json(path: Path, store_url: str, capsys: pytest.CaptureFixture[str]
                 ) -> dict[str, Any]:
    capsys.readouterr()
    assert main(["ingest", str(path), "--db", store_url, "--json"]) == 0
    summary: dict[str, Any] = json.loads(capsys.readouterr().out)
    return summary


def test_a_removal_of_something_never_seen_is_dropped_after_its_retention(
        store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Removals wait for what they remove only ``parked_removal_max_age_hours`` (default
    720) of ledger time: a later observation drops the older ones and ``ingest`` says how
    many; a younger removal and a line that needs what it waits for (a save) stay."""
    early = tmp_path / "early.jsonl"
    early.write_bytes(jsonl([_settings(_hours(-1)),
                             _removed("gone-old", _hours(0)), _sf_deleted(901, _hours(0)),
                             _save("never-read", _hours(0)),
                             _removed("gone-young", _hours(700))]))
    assert main(["ingest", str(early), "--db", store_url]) == 0
    assert len(_parked_json(store_url, capsys)) == 4  # newest 700 h: none is 720 h old

    later = tmp_path / "later.jsonl"
    later.write_bytes(jsonl([_item("other", _hours(730))]))  # 730 h after the old ones
    capsys.readouterr()
    assert main(["ingest", str(later), "--db", store_url]) == 0
    summary = capsys.readouterr().out
    waiting = {(r["kind"], r["item_id"]): r["overdue"] for r in _parked_json(store_url, capsys)}
    assert waiting == {("sidebar.save", _graph_id(ALICE, "never-read")): True,
                       ("exchange.removed", _graph_id(ALICE, "gone-young")): False}
    assert re.search(r"^dropped from parked +2 ", summary, re.M), summary

    # The same file again: its old removals are parked and dropped in one commit, nothing
    # else changes (the table does not grow back).
    again = _ingest_json(early, store_url, capsys)
    assert (again["parked"], again["parked_dropped"], again["duplicates_skipped"]) == (2, 2, 3)
    assert {(r["kind"], r["item_id"]) for r in _parked_json(store_url, capsys)} == set(waiting)

    # A shorter retention (an org setting) takes effect with the next observation.
    shorter = tmp_path / "shorter.jsonl"
    shorter.write_bytes(jsonl([_settings(_hours(731), parked_removal_max_age_hours=30),
                               _item("another", _hours(731))]))
    assert _ingest_json(shorter, store_url, capsys)["parked_dropped"] == 1  # the young one
    assert [r["kind"] for r in _parked_json(store_url, capsys)] == ["sidebar.save"]


@example(year=2001, hours=None, waited_min=719 * 60)  # long past by the clock: kept
@example(year=2090, hours=None, waited_min=720 * 60 + 1)  # not yet by the clock: dropped
@example(year=2026, hours=5, waited_min=5 * 60)  # exactly the retention: kept
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(year=st.integers(1990, 2090), hours=st.none() | st.integers(1, 2000),
       waited_min=st.integers(0, 2100 * 60))
def test_a_removal_is_dropped_by_ledger_time_never_by_the_clock(
        year: int, hours: int | None, waited_min: int) -> None:
    """Dropped exactly when the newest observation is more than the retention (default
    720 h) after the removal, whatever the year, and whenever the test runs."""
    base = datetime(year, 3, 1, 12, 0, tzinfo=UTC)
    retention = {} if hours is None else {"parked_removal_max_age_hours": hours}
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        store = Store.open(str(t / "l.db"))
        try:
            ingest(store, jsonl([_settings(_hours(-1, base), **retention),
                                 _removed("gone", _hours(0, base))]), t, "a.jsonl")
            late = _iso(base + timedelta(minutes=waited_min))
            result = ingest(store, jsonl([_item("other", late)]), t, "b.jsonl")
            gone = waited_min > (hours or 720) * 60
            event("dropped" if gone else "kept")
            assert [line.kind for line in store.parked()] == ([] if gone else
                                                              ["exchange.removed"])
            assert result.parked_dropped == int(gone)
        finally:
            store.close()


def _refused(at: str) -> Line:
    """A refused write naming a meeting the ledger does not hold: quarantined, with its
    time."""
    return {"kind": "write.refused", "observed_at": at,
            "payload": {"meetingId": "00000000-0000-4000-8000-000000000000",
                        "writeKey": "salesforce|create|x", "digest": "d", "target": "salesforce",
                        "op": "create", "status": 400, "errorCode": "REQUIRED_FIELD_MISSING",
                        "message": "Required fields are missing", "fields": ["Subject"]}}


def test_replay_keeps_what_was_parked_and_quarantined_at_the_time(
        store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``replay --until TIME`` copies the parked lines and quarantine rows observed at or
    before TIME, not later ones, and the newest time the copy holds: what waited then,
    and what had waited too long then, read the same from the copy."""
    path = tmp_path / "feed.jsonl"
    path.write_bytes(jsonl([_settings(_hours(-1), parked_max_age_hours=1),
                            _removed("gone-early", _hours(0)), _save("never-read", _hours(0)),
                            _refused(_hours(0.5)), _item("recorded", _hours(2)),
                            _removed("gone-late", _hours(5)), _refused(_hours(6)),
                            _item("recorded-late", _hours(7))]))
    assert main(["ingest", str(path), "--db", store_url]) == 3  # the refused writes
    past = f"sqlite:///{tmp_path / 'past.db'}"
    capsys.readouterr()
    assert main(["replay", "--until", _hours(3), "--db", store_url, "--db-out", past,
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)

    now, then = _parked_json(store_url, capsys), _parked_json(past, capsys)
    assert [r["item_id"] for r in now] == [_graph_id(ALICE, n) for n in
                                           ("gone-early", "never-read", "gone-late")]
    assert then == [r for r in now if r["since"] <= _hours(3)]  # overdue as it was
    capsys.readouterr()
    assert main(["quarantine", "--db", past, "--json"]) == 0
    assert [r["observed_at"] for r in json.loads(capsys.readouterr().out)] == [_hours(0.5)]
    capsys.readouterr()
    assert main(["issues", "--kind", "waiting-for-dependency", "--db", past, "--json"]) == 0
    (issue,) = json.loads(capsys.readouterr().out)
    assert "has waited 2 h" in issue["message"]  # at 11:00, the newest the copy holds
    assert main(["explain", _graph_id(ALICE, "never-read"), "--db", past]) == 0
    assert "parked since" in capsys.readouterr().out
    assert (out["parked_copied"], out["quarantined_copied"]) == (2, 1)


def test_a_deletion_parked_before_an_undeleted_event_is_not_applied(
        store_url: str, tmp_path: Path) -> None:
    """An Event deleted, then undeleted (its SystemModstamp moves past the deletion), read
    deletion first: the parked deletion is older than the Event the ledger then sees, so
    taking it would call a live Event deleted (and plan the copy's removal). Both orders
    must give the answers of the order things happened in."""
    event, deletion = [line for _, line in lines_of(Story("sf", 0, 0, False))]
    later = _stamp_minutes(event, 25)
    assert later["payload"]["SystemModstamp"] > deletion["payload"]["deletedDate"]
    answers_of: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for name, order, url in (
            ("clean", [event, deletion, later], str(tmp_path / "clean.db")),
            ("deletion first", [deletion, later], store_url),
            ("deletion before both", [deletion, event, later], str(tmp_path / "both.db"))):
        store = Store.open(url)
        try:
            ingest(store, feed(order), tmp_path, f"{len(answers_of)}.jsonl")
            answers_of[name] = answers(store)
        finally:
            store.close()
    clean_plan = answers_of["clean"]["plan"]
    assert [(w["target"], w["op"]) for w in clean_plan] == [("exchange", "create")]
    for name, got in answers_of.items():
        assert got == answers_of["clean"], name


def _stamp_minutes(line: Line, minute: int) -> Line:
    """The Event's line as Salesforce gives it after an undelete ``minute`` minutes in."""
    stamp = _at(minute).replace("Z", ".000+0000")
    return {**line, "observed_at": _at(minute),
            "payload": {**line["payload"], "SystemModstamp": stamp, "LastModifiedDate": stamp}}


def test_a_deletion_in_the_second_of_the_last_change_is_applied(
        store_url: str, tmp_path: Path) -> None:
    """getDeleted's deletedDate may lack the milliseconds SystemModstamp has: a deletion
    in the same second as the Event's last change is not taken for an older one."""
    event, deletion = [line for _, line in lines_of(Story("sf", 0, 0, False))]
    second = deletion["payload"]["deletedDate"]  # ...:00Z, whole seconds
    changed = {**event, "payload": {**event["payload"],
                                    "SystemModstamp": second.replace("Z", ".500+0000")}}
    store = Store.open(store_url)
    try:
        ingest(store, feed([deletion, changed]), tmp_path, "same-second.jsonl")
        assert answers(store)["plan"] == []  # deleted: no copy to make
    finally:
        store.close()


def test_a_version_from_the_second_of_the_deletion_does_not_bring_the_event_back(
        store_url: str, tmp_path: Path) -> None:
    """Redelivered after the deletion, a version stamped in the deletion's own second
    (deletedDate without its milliseconds) is older than the deletion, not an undelete:
    the Event stays deleted and its copy is not made again."""
    event, deletion = [line for _, line in lines_of(Story("sf", 0, 0, False))]
    second = deletion["payload"]["deletedDate"]
    same_second = {**event, "observed_at": _at(30), "payload": {
        **event["payload"], "SystemModstamp": second.replace("Z", ".400+0000")}}
    store = Store.open(store_url)
    try:
        ingest(store, feed([event, deletion, same_second]), tmp_path, "again.jsonl")
        assert answers(store)["plan"] == []  # deleted: no copy to make
    finally:
        store.close()


def test_a_version_skipped_while_deleted_does_not_overwrite_a_newer_one(
        store_url: str, tmp_path: Path) -> None:
    """A version the ledger skipped while the Event stood deleted, re-delivered after the
    undeleted (newer) one, is older content: the newer one's values stay."""
    event, deletion = [line for _, line in lines_of(Story("sf", 0, 0, False))]

    def version(minute: int, location: str) -> Line:
        stamp = _at(minute).replace("Z", ".000+0000")
        return {**event, "observed_at": _at(minute), "payload": {
            **event["payload"], "Location": location, "SystemModstamp": stamp,
            "LastModifiedDate": stamp}}

    skipped, undeleted = version(15, "Room B"), version(19, "Room C")
    assert deletion["payload"]["deletedDate"] == _at(17)
    store = Store.open(store_url)
    try:
        ingest(store, feed([event, deletion, skipped, undeleted, skipped]), tmp_path,
               "late.jsonl")
        (create,) = answers(store)["plan"]
        assert create["fields"]["location"] == "Room C"
    finally:
        store.close()


def test_an_outlook_version_older_than_the_one_held_changes_nothing(
        store_url: str, tmp_path: Path) -> None:
    """Two reads of one item delivered newest first (two files, two runs that overlap):
    the older version (by lastModifiedDateTime) must not overwrite the newer one."""
    item, save, newer = [line for _, line in lines_of(Story("saved", 0, 0, True))]
    assert newer["payload"]["lastModifiedDateTime"] > item["payload"]["lastModifiedDateTime"]
    store = Store.open(store_url)
    try:
        ingest(store, feed([newer, save, item]), tmp_path, "newest-first.jsonl")
        meeting = meeting_of(store, ical_key(newer["payload"]["iCalUId"]))
        (held,) = meeting.items.values()
        assert held["location"] == "Board room"  # the newer version's
        assert held["version"] == newer["payload"]["changeKey"]
    finally:
        store.close()


def _same_item(a: Line, b: Line) -> bool:
    def ident(line: Line) -> Any:
        return line["payload"].get("id", line["payload"].get("Id"))
    return bool(a["kind"] == b["kind"] and ident(a) == ident(b))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chosen=stories, picks=st.lists(st.integers(0, 60), min_size=1, max_size=30),
       flips=st.lists(st.booleans(), min_size=8, max_size=8))
def test_an_items_newer_read_delivered_first_gives_the_clean_answers(
        chosen: list[Story], picks: list[int], flips: list[bool]) -> None:
    """Two reads of one item (an Outlook item, a master, an Event) delivered newest first,
    as two files or two overlapping runs may: the older one is stale by its modification
    time and the answers are those of the order things happened in."""
    lines = clean(chosen)
    streams: dict[str, list[Line]] = {}
    for stream, line in lines:
        streams.setdefault(stream, []).append(line)
    swapped: list[tuple[str, Line]] = []
    for i, (stream, own) in enumerate(streams.items()):
        if flips[i % len(flips)] and len(own) >= 2 and _same_item(own[-1], own[-2]):
            own[-1], own[-2] = own[-2], own[-1]
        swapped += [(stream, line) for line in own]
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        clean_store, delivered = Store.open(str(t / "a.db")), Store.open(str(t / "b.db"))
        try:
            ingest(clean_store, feed([line for _, line in lines]), t, "clean.jsonl")
            ingest(delivered, feed(deliver(swapped, picks, [])), t, "newest-first.jsonl")
            assert answers(delivered) == answers(clean_store)
        finally:
            clean_store.close()
            delivered.close()
