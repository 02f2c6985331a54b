"""The rule book, one scenario per rule id (DOMAIN.md §3), from raw payloads, on both stores."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from adapters.sandbox.org import (
    ALICE,
    BOB,
    CAROL,
    DAVE,
    ERIN,
    USER_IDS,
    _graph_id,
    _ical,
    _sf_id,
    graph_event,
    sf_event,
    weekly,
)
from ledger.identity import ical_key, item_key, salesforce_key
from ledger.store import Store
from tests.scenarios import decisions, ingest, meeting_of, org_with_settings, pending

SINGLE: dict[str, Any] = dict(start="2026-11-24T17:00:00", end="2026-11-24T18:00:00")


def test_private_item_is_skipped_and_its_content_never_stored(store: Store, tmp_path: Path
                                                              ) -> None:
    org = org_with_settings()
    org.graph(1, ALICE, graph_event(ALICE, "p", subject="Salary talk", organizer=ALICE,
                                    attendees=(ALICE, ERIN), sensitivity="private",
                                    body="confidential numbers", **SINGLE))
    ingest(store, org, tmp_path)
    m = meeting_of(store, ical_key(_ical("p")))
    raised = decisions(store, m.id, "SyncIssueRaised")
    assert [(r["rule"], r["severity"]) for r in raised] == [("private-item", "skip")]
    assert not pending(m, "salesforce", "create")
    raw = b"".join(state for *_, state in store.stored_events(m.id))
    assert b"Salary talk" not in raw and b"confidential numbers" not in raw and ERIN.encode() \
        not in raw


def test_private_item_syncs_once_the_org_allows_it(store: Store, tmp_path: Path) -> None:
    org = org_with_settings()
    event = graph_event(ALICE, "p", subject="Salary talk", organizer=ALICE,
                        attendees=(ALICE, ERIN), sensitivity="private", **SINGLE)
    org.graph(1, ALICE, event)
    org.settings(2, sync_private_items=True)
    org.graph(3, ALICE, {**event, "changeKey": "ck-2", "subject": "Salary talk (moved)"})
    ingest(store, org, tmp_path)
    m = meeting_of(store, ical_key(_ical("p")))
    assert [r["rule"] for r in decisions(store, m.id, "SyncIssueResolved")] == ["private-item"]
    creates = pending(m, "salesforce", "create")
    assert len(creates) == 1 and creates[0]["fields"]["subject"] == "Salary talk (moved)"


def test_attendee_before_organizer_is_a_conflict_until_the_organizer_saves(
        store: Store, tmp_path: Path) -> None:
    org = org_with_settings()
    fields = dict(subject="Review", organizer=ALICE, attendees=(ALICE, BOB), **SINGLE)
    org.graph(1, BOB, graph_event(BOB, "r", **fields))
    org.save(2, BOB, _graph_id(BOB, "r"))
    ingest(store, org, tmp_path, "a.jsonl")
    m = meeting_of(store, ical_key(_ical("r")))
    assert list(m.conflicts) == [BOB]
    assert not pending(m, "salesforce")  # nothing is written for a conflict

    later = org_with_settings()
    later.graph(3, ALICE, graph_event(ALICE, "r", **fields))
    later.salesforce(4, sf_event(1, subject="Review", owner=ALICE, ical=_ical("r"),
                                 modstamp="2026-11-20T09:04:00.000+0000", **SINGLE))
    ingest(store, later, tmp_path, "b.jsonl")
    m = meeting_of(store, ical_key(_ical("r")))
    assert m.conflicts == {}
    resolved = decisions(store, m.id, "ConflictResolved")
    assert [(r["attendee"], r["organizer"]) for r in resolved] == [(BOB, ALICE)]
    save = decisions(store, m.id, "SaveAccepted")[0]
    assert save["saver"] == ALICE and save["invitees"] == [USER_IDS[BOB]]
    assert m.links == {item_key(ALICE, _graph_id(ALICE, "r")): _sf_id("00U", 1)}


def test_organizer_not_user_saves_with_no_attendees(store: Store, tmp_path: Path) -> None:
    org = org_with_settings()
    for name, organizer in (("ext", DAVE), ("nonuser", ERIN)):
        org.graph(1, ALICE, graph_event(ALICE, name, subject=name, organizer=organizer,
                                        attendees=(organizer, ALICE, BOB), **SINGLE))
        org.save(2, ALICE, _graph_id(ALICE, name), what_id="0065e000003XyZaAAK")
    ingest(store, org, tmp_path)
    for name in ("ext", "nonuser"):
        m = meeting_of(store, ical_key(_ical(name)))
        save = decisions(store, m.id, "SaveAccepted")
        assert [(s["rule"], s["invitees"], s["owner_id"]) for s in save] == [
            ("organizer-not-user", [], USER_IDS[ALICE])]
        (create,) = pending(m, "salesforce", "create")
        assert create["fields"]["invitees"] == []
        assert create["fields"]["what_id"] == "0065e000003XyZaAAK"


DAYS = ["2026-11-02", "2026-11-09", "2026-11-16", "2026-11-23", "2026-11-30"]


def _synced_series(org_minute: int = 0) -> object:
    org = org_with_settings()
    base = dict(subject="Forecast", organizer=ALICE, attendees=(ALICE, BOB), location="Room 4")
    rec = weekly(DAYS[0], ["monday"], len(DAYS))
    org.graph(1, ALICE, graph_event(ALICE, "f", **base, kind="seriesMaster",  # type: ignore[arg-type]
                                    start=f"{DAYS[0]}T17:00:00", end=f"{DAYS[0]}T17:30:00",
                                    recurrence=rec))
    for d in DAYS:
        org.graph(2, ALICE, graph_event(ALICE, "f", **base, kind="occurrence", master="f",  # type: ignore[arg-type]
                                        start=f"{d}T17:00:00", end=f"{d}T17:30:00",
                                        original_start=f"{d}T17:00:00"))
    org.salesforce(3, sf_event(10, subject="Forecast", start=f"{DAYS[0]}T17:00:00",
                               end=f"{DAYS[0]}T17:30:00", owner=ALICE, master=True,
                               modstamp="2026-11-20T09:03:00.000+0000", ical=_ical("f"),
                               location="Room 4"))
    for i, d in enumerate(DAYS):
        org.salesforce(4, sf_event(11 + i, subject="Forecast", start=f"{d}T17:00:00",
                                   end=f"{d}T17:30:00", owner=ALICE, series=_sf_id("00U", 10),
                                   modstamp="2026-11-20T09:04:00.000+0000", ical=_ical("f"),
                                   location="Room 4"))
    org.graph(180, ALICE, graph_event(ALICE, "f", **{**base, "location": "Room 9"},  # type: ignore[arg-type]
                                      kind="seriesMaster", start=f"{DAYS[0]}T17:00:00",
                                      end=f"{DAYS[0]}T17:30:00", recurrence=rec, revision=1,
                                      modified="2026-11-20T12:00:00.0000000Z"))
    return org


def test_series_master_update_touches_future_occurrences_only(store: Store, tmp_path: Path
                                                              ) -> None:
    ingest(store, _synced_series(), tmp_path)  # type: ignore[arg-type]
    m = meeting_of(store, ical_key(_ical("f")))
    assert len(m.links) == 1 + len(DAYS)  # master + every occurrence linked
    (update,) = decisions(store, m.id, "SeriesMasterUpdated")
    assert update["rule"] == "series-master-update"
    assert update["effective_from"].startswith("2026-11-20T12:00:00")
    writes = {w["id"]: w for w in pending(m, "salesforce", "update")}
    future = {_sf_id("00U", 11 + i) for i, d in enumerate(DAYS) if d >= "2026-11-20"}
    assert set(writes) == future  # Nov 23 and Nov 30; Nov 2, 9, 16 untouched
    for w in writes.values():
        assert w["fields"] == {"location": "Room 9"}
        assert w["notify_attendees"] is False


def test_series_master_overwrite_reaches_every_exchange_occurrence(store: Store, tmp_path: Path
                                                                   ) -> None:
    org = org_with_settings()
    ical = _ical("bp")
    days = ["2026-11-25", "2026-12-02", "2026-12-09"]
    base = dict(subject="Board prep", organizer=CAROL, attendees=(CAROL,), location="Room 2",
                body="Draft deck")
    org.graph(1, CAROL, graph_event(CAROL, "bp", **base, kind="seriesMaster", ical=ical,  # type: ignore[arg-type]
                                    start=f"{days[0]}T22:00:00", end=f"{days[0]}T23:00:00",
                                    recurrence=weekly(days[0], ["wednesday"], 3)))
    for i, d in enumerate(days):
        org.graph(2, CAROL, graph_event(CAROL, "bp", **base,  # type: ignore[arg-type]
                                        kind="exception" if i == 1 else "occurrence",
                                        master="bp", start=f"{d}T22:00:00", end=f"{d}T23:00:00",
                                        original_start=f"{d}T22:00:00"))
    master = sf_event(40, subject="Board prep", start=f"{days[0]}T22:00:00",
                      end=f"{days[0]}T23:00:00", owner=CAROL, master=True, ical=ical,
                      modstamp="2026-11-20T09:03:00.000+0000", description="Draft deck",
                      location="Room 2")
    org.salesforce(3, master)
    org.salesforce(100, {**master, "Description": "Final deck", "Location": "Room 7",
                         "WhatId": "0015e000004AbCdAAK",
                         "SystemModstamp": "2026-11-20T12:00:00.000+0000"})
    ingest(store, org, tmp_path)
    m = meeting_of(store, ical_key(ical))
    (over,) = decisions(store, m.id, "SeriesMasterOverwritten")
    assert over["changes"] == {"description": "Final deck", "location": "Room 7",
                               "what_id": "0015e000004AbCdAAK"}
    writes = pending(m, "exchange", "update")
    kinds = sorted(m.items[item_key(CAROL, w["id"])]["item_type"] for w in writes)
    assert kinds == ["exception", "occurrence", "occurrence"]
    for w in writes:
        assert w["fields"] == {"body": "Final deck", "location": "Room 7",
                               "what_id": "0015e000004AbCdAAK"}


def test_recurring_all_day_is_an_issue_on_both_sides(store: Store, tmp_path: Path) -> None:
    org = org_with_settings()
    org.graph(1, ALICE, graph_event(ALICE, "off", subject="Offsite", organizer=ALICE,
                                    attendees=(ALICE,), all_day=True, kind="seriesMaster",
                                    start="2026-11-30T00:00:00", end="2026-12-01T00:00:00",
                                    recurrence=weekly("2026-11-30", ["monday"], 3)))
    all_day_sf = sf_event(50, subject="Holiday", start="2026-11-30T00:00:00",
                          end="2026-12-01T00:00:00", owner=BOB, master=True, all_day=True,
                          modstamp="2026-11-20T09:02:00.000+0000")
    org.salesforce(2, all_day_sf)
    ingest(store, org, tmp_path)
    m = meeting_of(store, ical_key(_ical("off")))
    (issue,) = decisions(store, m.id, "SyncIssueRaised")
    assert (issue["rule"], issue["direction"], issue["outlook_category"]) == (
        "recurring-all-day", "to-salesforce", True)
    (cat,) = pending(m, "exchange", "set-categories")
    assert cat["fields"] == {"categories": ["Error"]}
    assert not pending(m, "salesforce")
    sf = meeting_of(store, salesforce_key(_sf_id("00U", 50)))
    (sf_issue,) = decisions(store, sf.id, "SyncIssueRaised")
    assert (sf_issue["rule"], sf_issue["direction"]) == ("recurring-all-day", "to-exchange")
    assert not pending(sf)  # not sent down to Exchange


def test_recurrence_conversion_of_a_synced_single(store: Store, tmp_path: Path) -> None:
    org = org_with_settings()
    fields = dict(subject="QBR", organizer=ALICE, attendees=(ALICE, DAVE), **SINGLE)
    org.graph(1, ALICE, graph_event(ALICE, "q", **fields))
    org.salesforce(2, sf_event(60, subject="QBR", owner=ALICE, ical=_ical("q"),
                               modstamp="2026-11-20T09:02:00.000+0000", **SINGLE))
    org.graph(3, ALICE, graph_event(ALICE, "q", **fields, kind="seriesMaster", revision=1,
                                    recurrence=weekly("2026-11-24", ["tuesday"], 4)))
    ingest(store, org, tmp_path)
    m = meeting_of(store, ical_key(_ical("q")))
    (issue,) = decisions(store, m.id, "SyncIssueRaised")
    assert issue["rule"] == "recurrence-conversion" and issue["outlook_category"] is True
    assert "single" in issue["message"] and "series" in issue["message"]
    assert [w["op"] for w in m.pending.values()] == ["set-categories"]


def test_unsupported_time_zone_names_the_zone_and_clears_when_supported(
        store: Store, tmp_path: Path) -> None:
    org = org_with_settings()
    event = graph_event(ALICE, "tz", subject="APAC", organizer=ALICE, attendees=(ALICE,),
                        zone="Samoa Standard Time", **SINGLE)
    org.graph(1, ALICE, event)
    org.graph(1, ALICE, graph_event(ALICE, "cz", subject="Custom", organizer=ALICE,
                                    attendees=(ALICE,), zone="tzone://Microsoft/Custom",
                                    **SINGLE))
    ingest(store, org, tmp_path, "a.jsonl")
    m = meeting_of(store, ical_key(_ical("tz")))
    (issue,) = decisions(store, m.id, "SyncIssueRaised")
    assert issue["rule"] == "unsupported-time-zone"
    assert "can't match time zone 'Samoa Standard Time'" in issue["message"]
    assert _graph_id(ALICE, "tz") in issue["message"]
    custom = meeting_of(store, ical_key(_ical("cz")))
    assert [i["rule"] for i in custom.issues.values()] == ["unsupported-time-zone"]

    from ledger.timezones import DEFAULT_SALESFORCE_TIME_ZONES
    from tests.scenarios import ORG

    later = org_with_settings(**ORG)
    later.settings(5, salesforce_time_zones=[*DEFAULT_SALESFORCE_TIME_ZONES, "Pacific/Apia"])
    later.graph(6, ALICE, {**event, "changeKey": "ck-moved"})
    ingest(store, later, tmp_path, "b.jsonl")
    m = meeting_of(store, ical_key(_ical("tz")))
    assert m.issues == {}
    assert len(pending(m, "salesforce", "create")) == 1


def test_lightning_recurrence_is_not_synced_down(store: Store, tmp_path: Path) -> None:
    org = org_with_settings()
    org.salesforce(1, sf_event(70, subject="Stand-up", owner=BOB, start="2026-11-23T16:00:00",
                               end="2026-11-23T16:15:00", modstamp="2026-11-20T09:01:00.000+0000",
                               lightning="RRULE:FREQ=DAILY;INTERVAL=1;COUNT=5"))
    org.salesforce(2, sf_event(71, subject="Classic single", owner=BOB,
                               start="2026-11-23T16:00:00", end="2026-11-23T16:15:00",
                               modstamp="2026-11-20T09:02:00.000+0000"))
    ingest(store, org, tmp_path)
    m = meeting_of(store, salesforce_key(_sf_id("00U", 70)))
    (skip,) = decisions(store, m.id, "SyncIssueRaised")
    assert (skip["rule"], skip["severity"], skip["direction"]) == (
        "lightning-recurrence", "skip", "to-exchange")
    assert not pending(m)
    classic = meeting_of(store, salesforce_key(_sf_id("00U", 71)))
    (create,) = pending(classic, "exchange", "create")
    assert create["mailbox"] == BOB and create["fields"]["salesforce_marker"] == _sf_id("00U", 71)
