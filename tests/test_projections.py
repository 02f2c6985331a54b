"""The stored projections, on SQLite and PostgreSQL: exactly once, deterministic, queryable.

Ledgers are built from domain observations (``ledger.observations``) fed to
``Ledger.ingest``, so these tests exercise the projections on the events the
real aggregate records. The invariants: catching up in any number of steps,
after a crash mid-batch, or by two runners at once, gives the same tables as
one rebuild from zero; and every query answers the scenario's exact rows.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.feed.ingest import ingest_files
from adapters.sandbox.org import demo_feed_path
from ledger.identity import ical_key, meeting_id, salesforce_id18
from ledger.intake import Intake, Ledger
from ledger.observations import (
    Attendee,
    ExchangeItemGone,
    ExchangeItemSeen,
    Observation,
    SalesforceEventGone,
    SalesforceEventSeen,
    SettingsChanged,
    SidebarSave,
)
from ledger.store import Store
from projections import queries, runner
from projections.plan import PlanProjection
from tests.conftest import PG, drop_schema, require_postgres

DOMAIN = "contoso.com"
ALICE, BOB, CAROL = "alice@contoso.com", "bob@contoso.com", "carol@contoso.com"
ERIN = "erin@contoso.com"
USERS = {ALICE: "005000000000001AAA", BOB: "005000000000002AAA", CAROL: "005000000000003AAA"}
SF_REVIEW = salesforce_id18("00U5e0000000001")
USER0 = "user00@contoso.com"  # a product user of ``synthetic``
T0 = "2026-11-20T09:00:00Z"


# --- stores -----------------------------------------------------------------------


@pytest.fixture
def ledger_url(store_url: str) -> str:
    """An empty ledger on each kind of store (conftest's ``store_url``)."""
    return store_url


@pytest.fixture
def ledger(store: Store) -> Store:
    return store


def ingest(store: Store, observations: Sequence[Observation]) -> None:
    result = Ledger(store, batch_size=50).ingest(
        Intake("test", n, b"{}", o) for n, o in enumerate(observations))
    assert result.quarantined == 0, result.errors


def dump(store: Store, names: list[str] | None = None) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the projections' tables, sorted: what "identical tables" compares."""
    out = {}
    with runner.reading(store) as conn:
        for table in runner.tables_of(runner.selected(names)):
            rows = [tuple(r) for r in conn.execute(sa.select(table))]
            out[table.name] = sorted(rows, key=repr)
    return out


# --- observations -------------------------------------------------------------------


def at(minute: int) -> str:
    """Observation time: minutes after T0 (UTC)."""
    base = 1_795_165_200  # 2026-11-20T09:00:00Z
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(base + minute * 60))


def item(when: str, mailbox: str, item_id: str, **kw: Any) -> ExchangeItemSeen:
    organizer = kw.pop("organizer", ALICE)
    attendees = kw.pop("attendees", (ALICE, BOB))
    fields: dict[str, Any] = dict(
        observed_at=when, mailbox=mailbox, item_id=item_id, ical_uid="UID-" + item_id,
        item_type="single", series_master_id=None, occurrence_start=None, version="v1",
        last_modified=None, subject="Meeting", body="", location="Room 1",
        start="2026-11-25T10:00:00Z", end="2026-11-25T11:00:00Z", is_all_day=False,
        sensitivity="normal", time_zone="Pacific Standard Time", organizer=organizer,
        attendees=tuple(Attendee(a, "accepted") for a in attendees), recurrence=None,
        categories=(), is_cancelled=False, is_organizer=mailbox == organizer,
        salesforce_marker=None)
    fields.update(kw)
    return ExchangeItemSeen(**fields)


def sf(when: str, event_id: str, **kw: Any) -> SalesforceEventSeen:
    fields: dict[str, Any] = dict(
        observed_at=when, event_id=event_id, series_id=None, is_series_master=False,
        is_lightning_series=False, recurrence=None, version="m1", subject="Meeting",
        description="", location="Room 1", what_id=None, who_id=None, owner_id=USERS[ALICE],
        start="2026-11-25T10:00:00Z", end="2026-11-25T11:00:00Z", is_all_day=False,
        is_private=False, time_zone=None, ical_marker=None, invitees=None)
    fields.update(kw)
    return SalesforceEventSeen(**fields)


def org_settings(when: str = T0, users: dict[str, str] | None = None) -> SettingsChanged:
    return SettingsChanged(when, {"org_domains": [DOMAIN],
                                  "product_users": dict(users or USERS)})


def synthetic(meetings: int, *, users: int = 12, settings_change_at: int | None = None
              ) -> list[Observation]:
    """A busy org: saves, links, updates, conflicts, issues, skips, down-syncs.

    Deterministic; about nine events per meeting. ``settings_change_at`` adds
    a product user when that meeting index is reached, so analytics must
    re-derive rows written before.
    """
    people = [f"user{n:02d}@{DOMAIN}" for n in range(users)]
    product = {p: f"0055e{n:010d}AAA" for n, p in enumerate(people[: users * 2 // 3])}
    later = people[users * 2 // 3]
    out: list[Observation] = [org_settings(at(0), product)]
    for n in range(meetings):
        minute = 1 + n * 3
        organizer, attendee = people[n % len(product)], people[(n + 1) % len(product)]
        ext = f"guest{n % 7}@fabrikam.com"
        start = f"2026-{11 + (n // 20) % 2}-{1 + n % 28:02d}T{8 + n % 9:02d}:00:00Z"
        end = start[:11] + f"{9 + n % 9:02d}:30:00Z"
        kw: dict[str, Any] = dict(organizer=organizer, attendees=(organizer, attendee, ext),
                                  start=start, end=end, ical_uid=f"UID{n}")
        eid = f"00U5e{n:010d}AAA"
        shape = n % 6
        if settings_change_at is not None and n == settings_change_at:
            product = {**product, later: "0055e9999999999AAA"}
            out.append(org_settings(at(minute), product))
        if shape == 0:  # organizer saves, Salesforce copy appears, then Outlook edits
            out.append(item(at(minute), organizer, f"X{n}o", **kw))
            out.append(item(at(minute), attendee, f"X{n}a", **kw))
            out.append(sf(at(minute + 1), eid, ical_marker=f"UID{n}", start=start, end=end,
                          owner_id=product[organizer]))
            out.append(item(at(minute + 2), organizer, f"X{n}o", version="v2",
                            **{**kw, "location": "Room 9"}))
            if n % 12 == 0:
                out.append(sf(at(minute + 2), eid, ical_marker=f"UID{n}", start=start,
                              end=end, owner_id=product[organizer], version="m2",
                              location="Room 9"))
        elif shape == 1:  # attendee saves first: a conflict until the organizer's save
            out.append(item(at(minute), attendee, f"X{n}a", **kw))
            out.append(SidebarSave(at(minute), attendee, f"X{n}a", "0015e000000AbCdAAK", None))
            if n % 4 == 1:
                out.append(item(at(minute + 2), organizer, f"X{n}o", **kw))
        elif shape == 2:  # unsupported time zone, fixed later
            out.append(item(at(minute), organizer, f"X{n}o", time_zone="Samoa Standard Time",
                            **kw))
            out.append(item(at(minute + 2), organizer, f"X{n}o", version="v2", **kw))
        elif shape == 3:  # private: a skip, content redacted
            out.append(item(at(minute), organizer, f"X{n}o", sensitivity="private", **kw))
        elif shape == 4:  # external organizer; a user saves it
            out.append(item(at(minute), attendee, f"X{n}a",
                            **{**kw, "organizer": ext, "attendees": (ext, attendee)}))
            out.append(SidebarSave(at(minute + 1), attendee, f"X{n}a", None, None))
            out.append(ExchangeItemGone(at(minute + 2), attendee, f"X{n}a", "deleted"))
        else:  # created in Salesforce by a user: goes down to Outlook
            out.append(sf(at(minute), eid, start=start, end=end,
                          owner_id=product[organizer], what_id="0065e000000XyZaAAK"))
    return out


# --- exactly once ---------------------------------------------------------------------


def test_incremental_catch_up_equals_a_rebuild(ledger: Store) -> None:
    obs = synthetic(60, settings_change_at=40)
    ingest(ledger, obs[: len(obs) // 2])
    first = runner.catch_up(ledger, batch_size=37)
    assert set(first.values()) == {ledger.max_position()}
    ingest(ledger, obs[len(obs) // 2:])
    runner.catch_up(ledger, batch_size=37)
    assert runner.catch_up(ledger) == dict.fromkeys(runner.NAMES, 0)
    incremental = dump(ledger)
    assert all(incremental.values())  # every table has rows
    counts = runner.rebuild(ledger)
    assert set(counts.values()) == {ledger.max_position()}
    assert dump(ledger) == incremental
    for name in runner.NAMES:  # one at a time, leaving the others alone
        assert runner.rebuild(ledger, name, batch_size=501)[name] == ledger.max_position()
        assert dump(ledger) == incremental


def test_a_rebuild_in_one_pass_gives_the_rows_of_catching_up_batch_by_batch(
        ledger: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On the demo feed plus a synthetic org's feed (``scripts/benchfeed.py``), every
    read model built from zero in one pass (folded in memory, each table written once)
    holds exactly the rows of the batch-by-batch catch-up, with its indexes; a crash
    before its single commit leaves the read models and their positions as they were."""
    feed = tmp_path / "org.jsonl"
    subprocess.run([sys.executable, str(Path(__file__).parents[1] / "scripts" / "benchfeed.py"),
                    "--observations", "3000", "--seed", "7", str(feed)],
                   check=True, capture_output=True)
    result = ingest_files(ledger, [demo_feed_path(), feed], show_progress=False)
    assert result.quarantined == 0
    head = ledger.max_position()
    assert runner.catch_up(ledger, bulk=False, batch_size=700) == dict.fromkeys(
        runner.NAMES, head)
    by_batches = dump(ledger)
    empty = sorted(name for name, rows in by_batches.items() if not rows)
    assert empty == ["proj_analytics_settings"] or not empty  # settings only if changed
    assert head > 5 * 700  # many batches, each upserting into what earlier ones wrote

    assert runner.rebuild(ledger) == dict.fromkeys(runner.NAMES, head)  # in one pass
    assert dump(ledger) == by_batches
    # a log longer than one pass may fold (memory) is built in one pass up to there,
    # then batch by batch: the same rows
    assert runner.rebuild(ledger, bulk_max=head // 3, batch_size=700) == dict.fromkeys(
        runner.NAMES, head)
    assert dump(ledger) == by_batches
    assert runner.positions(ledger) == dict.fromkeys(runner.NAMES, head)
    with runner.reading(ledger) as conn:
        inspector = sa.inspect(conn)
        for table in runner.tables_of(runner.NAMES):
            assert {str(i["name"]) for i in inspector.get_indexes(table.name)} >= {
                str(i.name) for i in table.indexes}
    runner.drop(ledger)  # empty read models at position 0 are built in one pass too
    assert runner.catch_up(ledger, batch_size=700) == dict.fromkeys(runner.NAMES, head)
    assert dump(ledger) == by_batches

    real_write = runner._write_all

    def crash(conn: sa.Connection, tables: Any) -> None:
        real_write(conn, tables)  # every table replaced, tracking not yet moved
        raise RuntimeError("power cut")

    monkeypatch.setattr(runner, "_write_all", crash)
    with pytest.raises(RuntimeError, match="power cut"):
        runner.rebuild(ledger, "mapping")
    assert dump(ledger) == by_batches and runner.positions(ledger)["mapping"] == head
    runner.drop(ledger)
    with pytest.raises(RuntimeError, match="power cut"):
        runner.catch_up(ledger)
    assert runner.positions(ledger) == dict.fromkeys(runner.NAMES, 0)
    assert not any(dump(ledger).values())
    monkeypatch.setattr(runner, "_write_all", real_write)
    runner.catch_up(ledger)
    assert dump(ledger) == by_batches


def test_a_read_model_stored_in_an_older_shape_is_rebuilt_by_itself(ledger: Store) -> None:
    """A ledger whose analytics table was made before the ``subject`` column existed: the
    next catch-up rebuilds that read model from the log (and only it), so the new column
    is filled for every meeting instead of failing on the missing column."""
    ingest(ledger, synthetic(30))
    runner.catch_up(ledger)
    before = dump(ledger)
    with runner.engine_for(ledger).begin() as conn:  # the table as an older version made it
        conn.execute(sa.text("ALTER TABLE proj_analytics_meetings DROP COLUMN subject"))
    # As a new process would: it checks the tables and their shape once.
    runner._shape_checked.clear()
    runner._ensured.clear()
    applied = runner.catch_up(ledger)
    assert applied["analytics"] == ledger.max_position()
    assert all(n == 0 for name, n in applied.items() if name != "analytics")
    assert dump(ledger) == before
    rows = queries.analytics_meetings(ledger)
    assert rows and sum(1 for r in rows if r["subject"] == "Meeting") > len(rows) // 2


def test_postgresql_read_model_connections_are_reused_and_closed_with_the_store() -> None:
    """A service asks the read models something in every job: on PostgreSQL the asking
    reuses a few connections instead of opening one each time (which cost more than the
    queries), and closing the store closes them (nothing left behind on the server).
    (SQLite opens the file: there is no connection to keep.)"""
    require_postgres()
    schema = f"t_{uuid.uuid4().hex[:20]}"
    try:
        _connections_reused_then_closed(
            Store.open(f"postgresql://postgres@127.0.0.1:5432/test?schema={schema}"))
    finally:
        drop_schema(schema)


def _connections_reused_then_closed(ledger: Store) -> None:
    ingest(ledger, synthetic(5))
    pids = set()
    for _ in range(6):
        assert queries.plan(ledger) is not None
        with runner.reading(ledger) as conn:
            pids.add(int(conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()))
    assert 1 <= len(pids) <= runner.POOL_SIZE
    ledger.close()
    deadline = time.monotonic() + 10
    while True:  # the server ends a backend shortly after its client hangs up
        with psycopg.connect(**PG) as pg:  # type: ignore[arg-type]
            alive = pg.execute("SELECT pid FROM pg_stat_activity WHERE pid = ANY(%s)",
                               (sorted(pids),)).fetchall()
        if not alive or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert alive == []


def test_a_crash_mid_batch_loses_the_batch_and_counts_nothing_twice(
        ledger: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    ingest(ledger, synthetic(48))
    head = ledger.max_position()
    runner.catch_up(ledger, batch_size=50, max_events=130)  # stopped, as if killed
    assert runner.positions(ledger) == dict.fromkeys(runner.NAMES, 130)
    before = dump(ledger)

    calls = Counter[str]()
    real_flush = PlanProjection.flush

    def failing_flush(self: PlanProjection, conn: sa.Connection) -> None:
        calls["flush"] += 1
        if calls["flush"] == 2:  # mapping, conflicts, issues already wrote this batch
            raise RuntimeError("power cut")
        real_flush(self, conn)

    monkeypatch.setattr(PlanProjection, "flush", failing_flush)
    with pytest.raises(RuntimeError, match="power cut"):
        runner.catch_up(ledger, batch_size=50)
    assert runner.positions(ledger) == dict.fromkeys(runner.NAMES, 180)
    monkeypatch.setattr(PlanProjection, "flush", real_flush)
    runner.catch_up(ledger, ["analytics"], batch_size=64)  # each resumes on its own
    assert runner.positions(ledger)["analytics"] == head
    runner.catch_up(ledger)
    resumed = dump(ledger)
    assert resumed != before
    runner.rebuild(ledger)
    assert dump(ledger) == resumed
    assert _daily_total(ledger, "observation") == _observations_in_log(ledger)


def test_two_runners_at_once_apply_each_event_once(ledger: Store) -> None:
    ingest(ledger, synthetic(48))
    errors: list[BaseException] = []

    def run() -> None:
        try:
            runner.catch_up(ledger, batch_size=25)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    together = dump(ledger)
    runner.rebuild(ledger)
    assert dump(ledger) == together


@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.integers(min_value=1, max_value=120), min_size=1, max_size=6),
       batch=st.integers(min_value=1, max_value=90))
def test_any_cut_of_the_log_gives_the_same_tables(ledger: Store, steps: list[int],
                                                  batch: int) -> None:
    if not ledger.max_position():
        ingest(ledger, synthetic(30, settings_change_at=20))
        runner.rebuild(ledger)
    reference = dump(ledger)
    runner.drop(ledger)
    for n in steps:
        runner.catch_up(ledger, batch_size=batch, max_events=n)
    runner.catch_up(ledger, batch_size=batch)
    assert dump(ledger) == reference


def _daily_total(store: Store, source: str) -> int:
    return sum(r["count"] for r in queries.analytics_daily(store) if r["source"] == source)


def _observations_in_log(store: Store) -> int:
    kinds = ("Observed", "Removed", "Deleted", "SettingsChanged")
    return sum(1 for topic in _topics(store) if topic.endswith(kinds))


# --- follow ---------------------------------------------------------------------------


def test_follow_picks_up_new_events_until_stopped(ledger: Store) -> None:
    ingest(ledger, synthetic(12))
    stop = threading.Event()
    seen: list[dict[str, int]] = []
    thread = threading.Thread(target=runner.follow, args=(ledger, stop, seen.append),
                              kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        _wait_for(lambda: runner.positions(ledger).get("plan") == ledger.max_position())
        ingest(ledger, [item(at(500), USER0, "late", organizer=USER0, attendees=(USER0,))])
        _wait_for(lambda: runner.positions(ledger).get("plan") == ledger.max_position())
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()
    assert sum(c["plan"] for c in seen) == ledger.max_position()
    assert [r["op"] for r in queries.plan(ledger, mailbox=USER0)
            if r["fields"].get("ical_marker") == "UID-late"] == ["create"]


def _wait_for(condition: Any, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "follow did not catch up"
        time.sleep(0.02)


# --- queries: conflict, issue, writes -------------------------------------------------


def test_queries_answer_a_conflict_an_issue_and_planned_writes(ledger: Store) -> None:
    review = dict(organizer=ALICE, attendees=(ALICE, BOB), ical_uid="REVIEW")
    apac = dict(organizer=ALICE, attendees=(ALICE, CAROL), ical_uid="APAC",
                start="2026-11-27T19:00:00Z", end="2026-11-27T20:00:00Z")
    ingest(ledger, [
        org_settings(),
        item(at(1), BOB, "B1", **review),
        SidebarSave(at(2), BOB, "B1", None, None),  # conflict: Alice has not saved
        item(at(3), ALICE, "A1", **review),  # Alice's copy: auto-saved, conflict resolved
        item(at(4), ALICE, "A2", time_zone="Samoa Standard Time", **apac),  # an issue
    ])
    review_id, apac_id = str(meeting_id(ical_key("REVIEW"))), str(meeting_id(ical_key("APAC")))
    assert queries.conflicts(ledger) == [{
        "meeting_id": review_id, "kind": "attendee-before-organizer", "attendee": BOB,
        "organizer": ALICE, "state": "resolved", "detected_at": at(2), "resolved_at": at(3)}]
    issue = {"meeting_id": apac_id, "kind": "unsupported-time-zone", "severity": "issue",
             "direction": "to-salesforce", "mailbox": ALICE, "exchange_id": "A2",
             "salesforce_id": None, "message": "can't match time zone 'Samoa Standard Time' "
             "(item A2)", "state": "open", "outlook_category": "set", "raised_at": at(4)}
    assert queries.issues(ledger) == [issue]
    plan = queries.plan(ledger)
    assert [(w["meeting_id"], w["target"], w["op"], w["id"]) for w in plan] == sorted([
        (review_id, "salesforce", "create", None), (apac_id, "exchange", "set-categories", "A2")])
    create = next(w for w in plan if w["op"] == "create")
    assert create["fields"]["invitees"] == [
        {"relation_id": USERS[BOB], "status": "Accepted", "is_parent": False}]
    assert create["fields"]["ical_marker"] == "REVIEW"
    assert create["notify_attendees"] is False and create["mailbox"] == ALICE
    assert set(create) == {"target", "op", "meeting_id", "mailbox", "id", "fields", "reason",
                           "notify_attendees"}
    assert queries.mapping(ledger) == []

    # The Salesforce copy appears (linked, create settled); the review gets the
    # "Salesforce" category, the APAC item the Error category, then the zone is fixed
    # (issue resolved, category cleared).
    ingest(ledger, [
        sf(at(5), SF_REVIEW, ical_marker="REVIEW", owner_id=USERS[ALICE]),
        item(at(6), ALICE, "A1", version="v2", categories=("Salesforce",), **review),
        item(at(6), ALICE, "A2", version="v2", categories=("Error",),
             time_zone="Samoa Standard Time", **apac),
        item(at(7), ALICE, "A2", version="v3", categories=("Error",), **apac),
    ])
    assert queries.issues(ledger, state="open") == []
    assert queries.issues(ledger) == [{**issue, "state": "resolved", "outlook_category": "clear"}]
    # The review's create is settled; the fixed APAC item now syncs (auto-save) and
    # its Error category is to come off.
    assert [(w["meeting_id"], w["op"], w["reason"]) for w in queries.plan(ledger)] == [
        (apac_id, "set-categories", "clear the Outlook Error category"),
        (apac_id, "create", f"saved by {ALICE}")]
    assert queries.plan(ledger, kind="set-categories")[0]["fields"] == {"categories": []}
    assert queries.mapping(ledger) == [{
        "meeting_id": review_id, "mailbox": ALICE, "exchange_id": "A1", "ical_uid": "REVIEW",
        "occurrence_start": None, "salesforce_id": SF_REVIEW}]
    assert queries.find_by_salesforce(ledger, SF_REVIEW[:15]) == queries.mapping(ledger)
    assert queries.find_by_exchange(ledger, "A1") == queries.mapping(ledger)
    assert queries.find_by_exchange(ledger, "A1", mailbox=BOB) == []

    # Filters.
    assert queries.conflicts(ledger, state="open") == []
    assert len(queries.conflicts(ledger, mailbox=BOB, kind="attendee-before-organizer")) == 1
    assert queries.issues(ledger, mailbox=BOB) == []
    assert len(queries.issues(ledger, kind="unsupported-time-zone", state="resolved")) == 1
    assert len(queries.plan(ledger, kind="create")) == 1
    assert queries.plan(ledger, mailbox=BOB) == []
    assert len(queries.plan(ledger, mailbox=ALICE, kind="set-categories")) == 1
    assert queries.mapping(ledger, kind="single", mailbox=ALICE.upper()) == \
        queries.mapping(ledger)
    with pytest.raises(ValueError, match="no state"):
        queries.plan(ledger, state="open")

    meetings = {r["meeting_id"]: r for r in queries.analytics_meetings(ledger)}
    assert meetings[review_id] == {
        "meeting_id": review_id, "subject": "Meeting", "organizer": ALICE,
        "organizer_is_user": True,
        "attendees_are_users": "all", "start": "2026-11-25T10:00:00Z", "recurrence": "single",
        "sync_state": "synced", "open_issue_kinds": "", "what_id": None,
        # Bob, a product user, is related as a User
        "related_users": 1, "related_contacts": 0, "related_leads": 0,
        "unresolved_attendees": 0}
    assert meetings[apac_id]["sync_state"] == "pending"  # the category write
    daily = {(r["source"], r["kind"], r["mailbox"]): r["count"]
             for r in queries.analytics_daily(ledger)}
    assert daily == {("observation", "org.settings", ""): 1,
                     ("observation", "exchange.item", BOB): 1,
                     ("observation", "sidebar.save", BOB): 1,
                     ("observation", "exchange.item", ALICE): 5,
                     ("observation", "salesforce.event", ""): 1,
                     ("conflict", "attendee-before-organizer", BOB): 1,
                     ("issue", "unsupported-time-zone", ALICE): 1}


def test_analytics_follows_the_org_settings_in_force_now(ledger: Store) -> None:
    ingest(ledger, [org_settings(users={ALICE: USERS[ALICE]}),
                    item(at(1), ALICE, "A1", organizer=ALICE, attendees=(ALICE, BOB, CAROL)),
                    item(at(1), ERIN, "E1", organizer=ERIN, attendees=(ERIN, ALICE),
                         ical_uid="E")])
    rows = {r["organizer"]: r for r in queries.analytics_meetings(ledger)}
    assert (rows[ALICE]["organizer_is_user"], rows[ALICE]["attendees_are_users"]) == \
        (True, "none")
    assert (rows[ERIN]["organizer_is_user"], rows[ERIN]["attendees_are_users"]) == \
        (False, "all")
    ingest(ledger, [org_settings(at(2), {ALICE: USERS[ALICE], BOB: USERS[BOB]})])
    rows = {r["organizer"]: r for r in queries.analytics_meetings(ledger)}
    assert rows[ALICE]["attendees_are_users"] == "some"
    ingest(ledger, [org_settings(at(3), {**USERS, ERIN: "005000000000009AAA"})])
    rows = {r["organizer"]: r for r in queries.analytics_meetings(ledger)}
    assert rows[ALICE]["attendees_are_users"] == "all"
    assert rows[ERIN]["organizer_is_user"] is True
    incremental = dump(ledger, ["analytics"])
    runner.rebuild(ledger, "analytics")
    assert dump(ledger, ["analytics"]) == incremental


def test_a_salesforce_deletion_unlinks_the_item(ledger: Store) -> None:
    review = dict(organizer=ALICE, attendees=(ALICE, BOB), ical_uid="REVIEW")
    ingest(ledger, [org_settings(), item(at(3), ALICE, "A1", **review),
                    sf(at(5), SF_REVIEW, ical_marker="REVIEW", owner_id=USERS[ALICE])])
    assert [r["salesforce_id"] for r in queries.mapping(ledger)] == [SF_REVIEW]
    ingest(ledger, [SalesforceEventGone(at(9), SF_REVIEW, at(8))])
    assert queries.mapping(ledger) == []
    assert queries.find_by_salesforce(ledger, SF_REVIEW) == []
    runner.catch_up(ledger)
    incremental = dump(ledger)
    runner.rebuild(ledger)
    assert dump(ledger) == incremental


def test_a_salesforce_deletion_does_not_recreate_the_event(ledger: Store) -> None:
    review = dict(organizer=ALICE, attendees=(ALICE, BOB), ical_uid="REVIEW")
    ingest(ledger, [org_settings(), item(at(3), ALICE, "A1", **review),
                    sf(at(5), SF_REVIEW, ical_marker="REVIEW", owner_id=USERS[ALICE]),
                    SalesforceEventGone(at(9), SF_REVIEW, at(8))])
    assert queries.plan(ledger, target="salesforce", kind="create") == []


def test_settings_changes_precede_the_decisions_made_under_them(ledger: Store) -> None:
    ingest(ledger, [org_settings(), item(at(1), ALICE, "A1"),
                    org_settings(at(2), {**USERS, ERIN: "005000000000009AAA"}),
                    item(at(3), ERIN, "E1", organizer=ERIN, attendees=(ERIN,), ical_uid="E")])
    names = [topic.rpartition(".")[2] for topic in _topics(ledger)]
    observed = [n for n in names if n in ("SettingsChanged", "ExchangeItemObserved")]
    assert observed == ["SettingsChanged", "ExchangeItemObserved", "SettingsChanged",
                        "ExchangeItemObserved"]


def test_the_store_reads_the_log_the_runner_reads(ledger: Store) -> None:
    ingest(ledger, [org_settings(), item(at(1), ALICE, "A1")])
    assert [topic for *_, topic, _ in ledger.read_log(0, 10**6)] == _topics(ledger)


def _topics(store: Store) -> list[str]:
    """The log's topics in order, read with SQL the way the runner reads them."""
    table = store.recorder.events_table_name  # type: ignore[attr-defined]
    position = "notification_id" if store.url.kind == "postgresql" else "rowid"
    with runner.reading(store) as conn:
        events = sa.Table(table, sa.MetaData(), sa.Column("topic", sa.String),
                          sa.Column(position, sa.BigInteger))
        return list(conn.execute(sa.select(events.c.topic).order_by(events.c[position]))
                    .scalars())


# --- series-master-update -------------------------------------------------------------

DAYS = ["2026-11-02", "2026-11-09", "2026-11-16", "2026-11-23", "2026-11-30", "2026-12-07"]
MASTER_SF = salesforce_id18("00U5e0000000300")


def occurrence_sf(n: int) -> str:
    return salesforce_id18(f"00U5e000000040{n}")


def weekly_series(changed_at: str) -> list[Observation]:
    """Alice's weekly series, saved and linked with Classic occurrences, then edited."""
    series = dict(organizer=ALICE, attendees=(ALICE, BOB), ical_uid="SERIES",
                  start=f"{DAYS[0]}T17:00:00Z", end=f"{DAYS[0]}T17:30:00Z",
                  subject="Weekly forecast", location="Room 4")
    rec = {"type": "weekly", "interval": 1, "days_of_week": ["monday"], "range": "endDate",
           "start_date": DAYS[0], "end_date": DAYS[-1]}
    obs: list[Observation] = [org_settings(),
                              item(T0, ALICE, "M", item_type="master", recurrence=rec, **series)]
    for d in DAYS:
        obs.append(item(T0, ALICE, "O" + d, **{
            **series, "ical_uid": None, "item_type": "occurrence", "series_master_id": "M",
            "occurrence_start": f"{d}T17:00:00Z", "start": f"{d}T17:00:00Z",
            "end": f"{d}T17:30:00Z"}))
    common = dict(ical_marker="SERIES", subject="Weekly forecast", location="Room 4")
    obs.append(sf(at(22), MASTER_SF, is_series_master=True, recurrence={"type": "weekly"},
                  start=f"{DAYS[0]}T17:00:00Z", end=f"{DAYS[0]}T17:30:00Z", **common))
    for n, d in enumerate(DAYS):
        obs.append(sf(at(22), occurrence_sf(n), series_id=MASTER_SF,
                      start=f"{d}T17:00:00Z", end=f"{d}T17:30:00Z", **common))
    edited = item(changed_at, ALICE, "M", item_type="master", recurrence=rec, version="v2",
                  last_modified=changed_at, **{**series, "location": "Room 9",
                                               "subject": "Weekly forecast (EMEA)"})
    return [*obs, edited]


def test_series_master_update_plans_future_occurrences_only(ledger: Store) -> None:
    changed_at = "2026-11-23T17:00:00Z"  # exactly the fourth occurrence's start
    ingest(ledger, weekly_series(changed_at))
    mid = str(meeting_id(ical_key("SERIES")))

    mapping = queries.mapping(ledger)
    assert [(r["exchange_id"], r["occurrence_start"], r["salesforce_id"], r["ical_uid"])
            for r in mapping] == [("M", None, MASTER_SF, "SERIES")] + [
        ("O" + d, f"{d}T17:00:00Z", occurrence_sf(n), "SERIES") for n, d in enumerate(DAYS)]
    assert queries.mapping(ledger, kind="master") == mapping[:1]
    assert len(queries.find_by_salesforce(ledger, MASTER_SF)) == 1

    plan = {w["id"]: w for w in queries.plan(ledger, target="salesforce")}
    for n, d in enumerate(DAYS):
        write = plan.get(occurrence_sf(n))
        if f"{d}T17:00:00Z" < changed_at:
            assert write is None, f"past occurrence {d} must stay as it was"
            continue
        assert write == {
            "target": "salesforce", "op": "update", "meeting_id": mid, "mailbox": None,
            "id": occurrence_sf(n), "reason": "series-master-update",
            "fields": {"subject": "Weekly forecast (EMEA)", "location": "Room 9"},
            "notify_attendees": False}, d
    assert set(plan) == {occurrence_sf(n) for n in (3, 4, 5)}
    row = queries.analytics_meetings(ledger)[0]
    assert (row["recurrence"], row["sync_state"], row["start"]) == \
        ("series", "pending", f"{DAYS[0]}T17:00:00Z")


def test_settled_occurrence_updates_leave_the_plan(ledger: Store) -> None:
    changed_at = "2026-11-20T12:00:00Z"
    ingest(ledger, weekly_series(changed_at))
    assert len(queries.plan(ledger)) == 3
    done = [sf(at(300 + n), occurrence_sf(n), series_id=MASTER_SF, version="m2",
               start=f"{DAYS[n]}T17:00:00Z", end=f"{DAYS[n]}T17:30:00Z",
               ical_marker="SERIES", subject="Weekly forecast (EMEA)", location="Room 9")
            for n in (3, 5)]
    ingest(ledger, done)
    assert [w["id"] for w in queries.plan(ledger)] == [occurrence_sf(4)]


# --- the mapping does not depend on where the log is cut -------------------------------


def _mapping_is_the_same_at_every_batch_size(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """The mapping built in one pass equals the batch-by-batch catch-up at every batch
    size from 1 to the log's length; returns the one-pass tables."""
    runner.rebuild(store, "mapping")
    one_pass = dump(store, ["mapping"])
    for size in range(1, store.max_position() + 1):
        runner.drop(store, ["mapping"])
        runner.catch_up(store, ["mapping"], bulk=False, batch_size=size)
        assert dump(store, ["mapping"]) == one_pass, f"batch size {size}"
    return one_pass


def test_an_occurrence_keeps_the_series_uid_it_was_linked_under(ledger: Store) -> None:
    """Outlook gives a series master another iCalUId before and after its occurrences
    are linked (and one occurrence becomes an exception after its link): each mapping
    row keeps the uid the series had when the row was linked, whether the read model
    was built in one pass or caught up batch by batch, wherever the batches end."""
    series = dict(organizer=ALICE, attendees=(ALICE, BOB), start=f"{DAYS[0]}T17:00:00Z",
                  end=f"{DAYS[0]}T17:30:00Z", subject="Weekly forecast")
    rec = {"type": "weekly", "interval": 1, "days_of_week": ["monday"], "range": "endDate",
           "start_date": DAYS[0], "end_date": DAYS[1]}

    def master(when: str, uid: str, version: str) -> ExchangeItemSeen:
        return item(when, ALICE, "M", item_type="master", recurrence=rec, ical_uid=uid,
                    version=version, **series)

    def occurrence(n: int, item_type: str = "occurrence", version: str = "v1"
                   ) -> ExchangeItemSeen:
        return item(T0, ALICE, f"O{n}", **{
            **series, "ical_uid": None, "item_type": item_type, "series_master_id": "M",
            "occurrence_start": f"{DAYS[n]}T17:00:00Z", "version": version,
            "start": f"{DAYS[n]}T17:00:00Z", "end": f"{DAYS[n]}T17:30:00Z"})

    common = dict(ical_marker="SERIES", subject="Weekly forecast")
    ingest(ledger, [
        org_settings(), master(T0, "SERIES", "v1"), occurrence(0), occurrence(1),
        master(at(10), "SERIES-1", "v2"),  # before the links
        sf(at(22), MASTER_SF, is_series_master=True, recurrence={"type": "weekly"},
           start=f"{DAYS[0]}T17:00:00Z", end=f"{DAYS[0]}T17:30:00Z", **common),
        *(sf(at(22), occurrence_sf(n), series_id=MASTER_SF, start=f"{d}T17:00:00Z",
             end=f"{d}T17:30:00Z", **common) for n, d in enumerate(DAYS[:2])),
        occurrence(1, "exception", "v2"),  # after its link
        master(at(30), "SERIES-2", "v3"),  # after the links
    ])
    tables = _mapping_is_the_same_at_every_batch_size(ledger)
    assert [(r["exchange_id"], r["ical_uid"]) for r in queries.mapping(ledger)] == [
        ("M", "SERIES-1"), ("O0", "SERIES-1"), ("O1", "SERIES-1")]
    assert [r["exchange_id"] for r in queries.mapping(ledger, kind="occurrence")] == \
        ["O0", "O1"]  # O1 was an occurrence when linked
    items = {(r[0], r[3], r[4]) for r in tables["proj_mapping_items"]}
    assert items == {("M", "SERIES-2", "master"), ("O0", None, "occurrence"),
                     ("O1", None, "exception")}  # the items as last observed


#: Series-master ids and iCalUIds the property test draws from (two series).
_UIDS = {"M": ("U1", "U2", "U3"), "N": ("V1", "V2")}


@settings(max_examples=25, deadline=None)
@given(steps=st.lists(st.one_of(
    st.tuples(st.just("master"), st.sampled_from(sorted(_UIDS)), st.integers(0, 2),
              st.booleans()),
    st.tuples(st.just("occurrence"), st.integers(0, 1), st.sampled_from(sorted(_UIDS)),
              st.sampled_from(("occurrence", "exception")), st.booleans()),
    st.tuples(st.just("gone"), st.sampled_from(("M", "N", "O0", "O1")))),
    min_size=1, max_size=9))
def test_any_batch_size_gives_the_mapping_of_one_pass(steps: list[tuple[Any, ...]]) -> None:
    """Series masters observed with other iCalUIds, occurrences moving between masters
    and becoming exceptions, links by marker and unlinks by Salesforce deletions, in any
    order: the mapping is the same whether built in one pass or at any batch size."""
    def marker(xid: str) -> str:
        return salesforce_id18(f"00U5e00000005{'MNOP'.index(xid[0])}{xid[1:] or '0'}")

    obs: list[Observation] = [org_settings()]
    for xid in ("M", "N"):  # an occurrence is recorded only once its master is known
        obs.append(item(T0, ALICE, xid, item_type="master", ical_uid=_UIDS[xid][0]))
    marked: set[str] = set()
    for n, step in enumerate(steps):
        when, version = at(n + 1), f"v{n + 2}"
        if step[0] == "master":
            _, xid, uid, link = step
            obs.append(item(when, ALICE, xid, item_type="master", version=version,
                            ical_uid=_UIDS[xid][uid % len(_UIDS[xid])],
                            salesforce_marker=marker(xid) if link else None))
        elif step[0] == "occurrence":
            _, k, master_id, item_type, link = step
            xid = f"O{k}"
            obs.append(item(when, ALICE, xid, ical_uid=None, item_type=item_type,
                            series_master_id=master_id, version=version,
                            occurrence_start=f"{DAYS[k]}T10:00:00Z",
                            salesforce_marker=marker(xid) if link else None))
        elif step[1] in marked:  # a deletion routes by the Event's id: a marker named it
            obs.append(SalesforceEventGone(when, marker(step[1]), when))
        if step[0] != "gone" and step[-1]:
            marked.add(obs[-1].item_id)  # type: ignore[union-attr]
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(f"sqlite:///{tmp}/ledger.db")
        try:
            ingest(store, obs)
            _mapping_is_the_same_at_every_batch_size(store)
        finally:
            store.close()


# --- measurement helpers (used by the report, not by the suite) ---------------------


def events_per_second(path: str, meetings: int = 5500) -> tuple[int, float]:
    """Ingest a synthetic ledger into a new SQLite file, then time one catch-up from zero."""
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    store = Store.open(path)
    try:
        Ledger(store).ingest(Intake("bench", n, b"{}", o)
                             for n, o in enumerate(synthetic(meetings, users=40)))
        started = time.perf_counter()
        counts = runner.catch_up(store)
        elapsed = time.perf_counter() - started
        return counts["plan"], elapsed
    finally:
        store.close()
