"""Write fidelity end to end: real bodies, every recurrence type, limits and zones,
through a live sync cycle against the emulators, asserting what the emulators stored.

Each test seeds a small org of its own (Alice and Bob are product users), runs
``run_cycle`` (msal, simple-salesforce and requests over HTTPS, as
``sync --sandbox`` does) and reads the emulated calendars afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from adapters.cli.sync import run_cycle
from adapters.sandbox import org as sandbox
from adapters.sandbox.cloud import SandboxCloud
from adapters.sandbox.org import ALICE, BOB, graph_event, sf_event
from ledger.store import Store
from projections import queries
from projections.explain import explain

NOW = datetime(2026, 11, 20, 13, 0, tzinfo=UTC)
BODIES = Path(__file__).parent / "fixtures" / "bodies"
ORG = {"org_domains": [sandbox.ORG_DOMAIN], "product_users": dict(sandbox.USER_IDS),
       "sync_private_items": False}


def clock() -> datetime:
    return NOW


def _cloud(lines: list[dict[str, Any]], **org: Any) -> SandboxCloud:
    return SandboxCloud(lines, mailboxes=[ALICE, BOB], org={**ORG, **org}, clock=clock)


def outlook(name: str, **fields: Any) -> dict[str, Any]:
    """A feed line: Alice's own meeting in her calendar (auto-saved: it is near NOW)."""
    fields.setdefault("start", "2026-11-23T17:00:00")
    fields.setdefault("end", "2026-11-23T18:00:00")
    fields.setdefault("subject", name)
    event = graph_event(ALICE, name, organizer=ALICE, **fields)
    return {"kind": "graph.event", "observed_at": "2026-11-20T09:00:00Z", "mailbox": ALICE,
            "payload": event}


def html_body(line: dict[str, Any], markup: str) -> dict[str, Any]:
    line["payload"]["body"] = {"contentType": "html", "content": markup}
    return line


def sync(store: Store, cloud: SandboxCloud) -> dict[str, Any]:
    outcome = run_cycle(store, cloud.config(), clock=clock, saves=cloud.take_saves(),
                        sleep=lambda s: None, on_step=lambda step: None)
    assert outcome["error"] is None, outcome
    return outcome


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    store = Store.open(f"sqlite:///{tmp_path / 'ledger.db'}")
    yield store
    store.close()


def sf_masters(cloud: SandboxCloud) -> list[dict[str, Any]]:
    return [e for e in cloud.salesforce.all("Event") if e.get("IsRecurrence")]


def issues(store: Store) -> dict[str, str]:
    return {i["kind"]: i["message"] for i in queries.issues(store) if i["state"] == "open"}


# --- bodies ------------------------------------------------------------------------------


def test_outlook_and_teams_bodies_reach_salesforce_as_text_and_do_not_bounce(
        sqlite_store: Store) -> None:
    table = (BODIES / "outlook_agenda_table.html").read_text()
    teams = (BODIES / "teams_meeting.html").read_text()
    with _cloud([html_body(outlook("Q4 review"), table),
                 html_body(outlook("Pipeline sync", start="2026-11-24T17:00:00",
                                   end="2026-11-24T18:00:00"), teams)]) as cloud:
        outcome = sync(sqlite_store, cloud)
        stored = {e["Subject"]: e["Description"] for e in cloud.salesforce.all("Event")}
        assert stored["Q4 review"].startswith("Hi all,\n\nAgenda for the Q4 review & renewal")
        assert "10:00  Pricing: 5 < 10 seats" in stored["Q4 review"]
        assert "<" not in stored["Q4 review"].replace("5 < 10", "")
        assert "[Click here to join the meeting](https://teams.microsoft.com/l/meetup-join/" \
            in stored["Pipeline sync"]
        assert outcome["failures"] == []
        cloud.clear_log()
        again = sync(sqlite_store, cloud)
        assert cloud.writes() == [] and again["writes"] == []


def test_a_description_typed_in_salesforce_shows_in_outlook_as_typed(
        sqlite_store: Store) -> None:
    typed = "Agenda:\n1. pricing <draft>\n2. R&D budget > 5k\n\nBring the contract."
    record = sf_event(900, subject="Pricing call", start="2026-11-24T16:00:00",
                      end="2026-11-24T17:00:00", owner=BOB, modstamp="2026-11-20T08:00:00.000+0000",
                      description=typed)
    with _cloud([{"kind": "salesforce.event", "observed_at": "2026-11-20T09:00:00Z",
                  "payload": record, "relations": []}]) as cloud:
        sync(sqlite_store, cloud)
        post = next(w for w in cloud.graph.writes if w["method"] == "POST")
        assert post["body"]["body"] == {"contentType": "text", "content": typed}
        stored = next(e for e in cloud.graph.calendar(BOB) if e["subject"] == "Pricing call")
        # Exchange keeps it as HTML, escaped, one <br> a line: Outlook shows what was typed.
        assert "pricing &lt;draft&gt;<br>" in stored["body"]["content"]
        cloud.clear_log()
        sync(sqlite_store, cloud)
        assert cloud.writes() == []  # read back as text, it compares equal: no edit


def test_a_100kb_body_is_shortened_to_32000_with_a_marker_and_a_warning(
        sqlite_store: Store) -> None:
    long = "<p>" + "Minutes of the meeting. " * 4200 + "</p>"  # ~100 KB
    with _cloud([html_body(outlook("Board minutes", subject="S" * 300), long)]) as cloud:
        outcome = sync(sqlite_store, cloud)
        [event] = cloud.salesforce.all("Event")
        assert len(event["Description"]) <= 32_000
        assert event["Description"].endswith("(shortened by the sync: the full text is in Outlook)")
        assert len(event["Subject"]) <= 255 and "shortened" in event["Subject"]
        assert outcome["failures"] == []
        found = [i for i in queries.issues(sqlite_store) if i["kind"] == "text-too-long"]
        assert [i["severity"] for i in found] == ["warning"]
        assert "Description has 100799 characters" in found[0]["message"]
        assert "Subject has 300 characters" in found[0]["message"]
        told = explain(sqlite_store, event["Id"])
        assert told["synced"] is True and "Note (text-too-long)" in told["message"]
        cloud.clear_log()
        sync(sqlite_store, cloud)
        assert cloud.writes() == []


# --- limits ----------------------------------------------------------------------------


def test_events_longer_than_salesforce_allows_are_issues_not_writes(sqlite_store: Store) -> None:
    with _cloud([outlook("Offsite", start="2026-11-23T08:00:00", end="2026-11-24T09:00:00"),
                 outlook("Trade fair", all_day=True, start="2026-11-23T00:00:00",
                         end="2026-12-08T00:00:00")]) as cloud:
        outcome = sync(sqlite_store, cloud)
        assert cloud.salesforce.writes == [] and outcome["failures"] == []
        found = issues(sqlite_store)
        assert "25 hours is longer than Salesforce's 24 hours" in found["event-too-long"]
        assert "15 days is longer than Salesforce's 14 days" in found["all-day-too-long"]
        # both Outlook items get the Error category
        assert sum(1 for w in cloud.graph.writes if w["body"] == {"categories": ["Error"]}) == 2
        told = explain(sqlite_store, sandbox._graph_id(ALICE, "Offsite"))
        assert (told["synced"], told["rule"]) == (False, "event-too-long")
        assert "24 hours or less" in told["action"]


# --- time zones ------------------------------------------------------------------------


@pytest.mark.parametrize(("windows", "org_spelling"), [
    ("India Standard Time", "Asia/Kolkata"), ("Nepal Standard Time", "Asia/Kathmandu"),
    ("Argentina Standard Time", "America/Argentina/Buenos_Aires"),
    ("US Eastern Standard Time", "America/Indiana/Indianapolis")])
def test_a_zone_in_the_org_list_under_its_new_spelling_syncs_with_that_spelling(
        sqlite_store: Store, windows: str, org_spelling: str) -> None:
    rec = sandbox.weekly("2026-11-23", ["monday"], 4, zone=windows)
    with _cloud([outlook("Standup", kind="seriesMaster", zone=windows, recurrence=rec)],
                salesforce_time_zones=[org_spelling, "UTC"]) as cloud:
        sync(sqlite_store, cloud)
        [master] = sf_masters(cloud)
        assert master["RecurrenceTimeZoneSidKey"] == org_spelling
        assert "unsupported-time-zone" not in issues(sqlite_store)


# --- recurrence up: every Graph pattern and range --------------------------------------

MON = "2026-11-23"  # a Monday; 17:00 UTC is 09:00 in Los Angeles


def pattern(kind: str, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "interval": 1, "month": 0, "dayOfMonth": 0, "daysOfWeek": [],
            "firstDayOfWeek": "sunday", "index": "first", **extra}


def span(kind: str, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "startDate": MON, "endDate": "0001-01-01",
            "recurrenceTimeZone": "Pacific Standard Time", "numberOfOccurrences": 0, **extra}


UP: list[tuple[dict[str, Any], dict[str, Any], dict[str, Any], int]] = [  # pattern, range,
    # Classic fields stored, occurrences Salesforce created
    (pattern("daily", interval=2), span("numbered", numberOfOccurrences=5),
     {"RecurrenceType": "RecursDaily", "RecurrenceInterval": 2,
      "RecurrenceEndDateOnly": "2026-12-01"}, 5),
    (pattern("weekly", daysOfWeek=["monday", "wednesday"]), span("endDate", endDate="2026-12-09"),
     {"RecurrenceType": "RecursWeekly", "RecurrenceDayOfWeekMask": 2 + 8,
      "RecurrenceEndDateOnly": "2026-12-09"}, 6),
    (pattern("weekly", daysOfWeek=["monday"]), span("noEnd"),
     {"RecurrenceType": "RecursWeekly", "RecurrenceEndDateOnly": "2027-11-22"}, 53),
    (pattern("daily"), span("noEnd"),
     {"RecurrenceType": "RecursDaily", "RecurrenceEndDateOnly": "2027-03-02"}, 100),
    (pattern("absoluteMonthly", dayOfMonth=23), span("numbered", numberOfOccurrences=3),
     {"RecurrenceType": "RecursMonthly", "RecurrenceDayOfMonth": 23,
      "RecurrenceEndDateOnly": "2027-01-23"}, 3),
    (pattern("relativeMonthly", daysOfWeek=["monday"], index="fourth"),
     span("numbered", numberOfOccurrences=3),
     {"RecurrenceType": "RecursMonthlyNth", "RecurrenceInstance": "Fourth",
      "RecurrenceDayOfWeekMask": 2, "RecurrenceEndDateOnly": "2027-01-25"}, 3),
    (pattern("absoluteMonthly", dayOfMonth=23), span("noEnd"),
     {"RecurrenceType": "RecursMonthly", "RecurrenceEndDateOnly": "2031-09-23"}, 59),
    (pattern("absoluteYearly", dayOfMonth=23, month=11), span("numbered", numberOfOccurrences=2),
     {"RecurrenceType": "RecursYearly", "RecurrenceMonthOfYear": "November",
      "RecurrenceDayOfMonth": 23, "RecurrenceInterval": None,
      "RecurrenceEndDateOnly": "2027-11-23"}, 2),
    (pattern("relativeYearly", daysOfWeek=["monday"], index="fourth", month=11),
     span("noEnd"),
     {"RecurrenceType": "RecursYearlyNth", "RecurrenceMonthOfYear": "November",
      "RecurrenceInstance": "Fourth", "RecurrenceEndDateOnly": "2034-11-27"}, 9),
]


@pytest.mark.parametrize(("pat", "rng", "stored", "count"), UP,
                         ids=[f"{p['type']}-{r['type']}" for p, r, _, _ in UP])
def test_every_graph_pattern_goes_up_as_a_classic_series(
        sqlite_store: Store, pat: dict[str, Any], rng: dict[str, Any],
        stored: dict[str, Any], count: int) -> None:
    line = outlook("Series", kind="seriesMaster", recurrence={"pattern": pat, "range": rng})
    with _cloud([line]) as cloud:
        outcome = sync(sqlite_store, cloud)
        assert outcome["failures"] == []
        [master] = sf_masters(cloud)
        assert {k: master.get(k) for k in stored} == stored
        assert master["RecurrenceTimeZoneSidKey"] == "America/Los_Angeles"
        children = [e for e in cloud.salesforce.all("Event")
                    if e.get("RecurrenceActivityId") == master["Id"] and e["Id"] != master["Id"]]
        assert len(children) == count
        # 09:00 in Los Angeles on every occurrence, on both sides of DST
        assert {datetime.fromisoformat(c["StartDateTime"].replace("+0000", "+00:00"))
                .astimezone(ZoneInfo("America/Los_Angeles")).hour for c in children} == {9}
        capped = "recurrence-capped" in issues(sqlite_store)
        assert capped == (rng["type"] == "noEnd")


@pytest.mark.parametrize(("pat", "why"), [
    (pattern("absoluteYearly", interval=2, dayOfMonth=23, month=11), "every 2 years"),
    (pattern("relativeYearly", daysOfWeek=["monday", "friday"], index="first", month=11),
     "several days"),
])
def test_patterns_classic_cannot_hold_are_issues_before_any_write(
        sqlite_store: Store, pat: dict[str, Any], why: str) -> None:
    line = outlook("Series", kind="seriesMaster",
                   recurrence={"pattern": pat, "range": span("noEnd")})
    with _cloud([line]) as cloud:
        outcome = sync(sqlite_store, cloud)
        assert cloud.salesforce.writes == [] and outcome["failures"] == []
        assert why in issues(sqlite_store)["recurrence-unrepresentable"]


# --- recurrence down: every Classic type ------------------------------------------------

DOWN: list[tuple[dict[str, Any], dict[str, Any]]] = [  # Classic fields, Graph pattern
    ({"RecurrenceType": "RecursDaily", "RecurrenceInterval": 3},
     {"type": "daily", "interval": 3}),
    ({"RecurrenceType": "RecursEveryWeekday"},
     {"type": "weekly", "interval": 1,
      "daysOfWeek": ["monday", "tuesday", "wednesday", "thursday", "friday"]}),
    ({"RecurrenceType": "RecursWeekly", "RecurrenceInterval": 2, "RecurrenceDayOfWeekMask": 2},
     {"type": "weekly", "interval": 2, "daysOfWeek": ["monday"]}),
    ({"RecurrenceType": "RecursMonthly", "RecurrenceInterval": 1, "RecurrenceDayOfMonth": 23},
     {"type": "absoluteMonthly", "interval": 1, "dayOfMonth": 23}),
    ({"RecurrenceType": "RecursMonthlyNth", "RecurrenceInterval": 1,
      "RecurrenceDayOfWeekMask": 2, "RecurrenceInstance": "Last"},
     {"type": "relativeMonthly", "interval": 1, "daysOfWeek": ["monday"], "index": "last"}),
    ({"RecurrenceType": "RecursYearly", "RecurrenceDayOfMonth": 23,
      "RecurrenceMonthOfYear": "November"},
     {"type": "absoluteYearly", "interval": 1, "dayOfMonth": 23, "month": 11}),
    ({"RecurrenceType": "RecursYearlyNth", "RecurrenceDayOfWeekMask": 2,
      "RecurrenceInstance": "Fourth", "RecurrenceMonthOfYear": "November"},
     {"type": "relativeYearly", "interval": 1, "daysOfWeek": ["monday"], "index": "fourth",
      "month": 11}),
]


@pytest.mark.parametrize(("classic", "wanted"), DOWN, ids=[c["RecurrenceType"] for c, _ in DOWN])
def test_every_classic_type_goes_down_in_its_own_zone(
        sqlite_store: Store, classic: dict[str, Any], wanted: dict[str, Any]) -> None:
    record = sf_event(901, subject="Classic series", start=f"{MON}T17:00:00",
                      end=f"{MON}T17:30:00", owner=BOB, master=True,
                      modstamp="2026-11-20T08:00:00.000+0000")
    record.update({"RecurrenceInterval": None, "RecurrenceDayOfWeekMask": None, **classic,
                   "RecurrenceEndDateOnly": "2027-06-30"})
    with _cloud([{"kind": "salesforce.event", "observed_at": "2026-11-20T09:00:00Z",
                  "payload": record, "relations": []}]) as cloud:
        outcome = sync(sqlite_store, cloud)
        assert outcome["failures"] == [], outcome["failures"]
        post = next(w["body"] for w in cloud.graph.writes if w["method"] == "POST")
        assert {k: post["recurrence"]["pattern"].get(k) for k in wanted} == wanted
        assert post["recurrence"]["range"] == {
            "type": "endDate", "startDate": MON, "endDate": "2027-06-30",
            "recurrenceTimeZone": "Pacific Standard Time"}
        assert post["start"] == {"dateTime": f"{MON}T09:00:00.0000000",
                                 "timeZone": "Pacific Standard Time"}
        occurrences = [e for e in cloud.graph.calendar(BOB) if e["type"] == "occurrence"]
        assert occurrences
        hours = {datetime.fromisoformat(e["start"]["dateTime"][:19]).replace(tzinfo=UTC)
                 .astimezone(ZoneInfo("America/Los_Angeles")).hour for e in occurrences}
        assert hours == {9}  # 09:00 local before and after the March DST change


# --- refused writes ---------------------------------------------------------------------


def test_a_refused_write_is_a_sync_issue_not_a_retry_loop(sqlite_store: Store,
                                                         capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    from adapters.cli.sync import _print

    line = outlook("Renewal")
    with _cloud([line]) as cloud:
        cloud.salesforce.fail(400, "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                              "Events need a Type before they can be saved", method="POST",
                              path=r"/sobjects/Event/$", times=1)
        first = sync(sqlite_store, cloud)
        assert cloud.salesforce.all("Event") == []
        assert first["failures"] == [] and len(first["refused_writes"]) == 1
        assert _print(first, False) == 0  # only refused writes: the cycle did its job
        assert "refused writes: 1" in capsys.readouterr().err
        [issue] = [i for i in queries.issues(sqlite_store) if i["kind"] == "write-refused"]
        assert issue["state"] == "open" and issue["severity"] == "refused"
        assert "Salesforce refused the create (400 FIELD_CUSTOM_VALIDATION_EXCEPTION): " \
               "Events need a Type before they can be saved" in issue["message"]
        assert issue["outlook_category"] == "set"  # Outlook shows "Error" on the item

        cloud.clear_log()
        second = sync(sqlite_store, cloud)  # same item, same write: not sent again
        assert [w for w in cloud.salesforce.writes if w["method"] == "POST"] == []
        assert second["failures"] == [] and len(second["refused_writes"]) == 1

        # The user changes the item: a different write, tried again (and accepted now).
        changed = {**line["payload"], "subject": "Renewal (with Type)", "changeKey": "ck-2"}
        cloud.graph.put_event(ALICE, changed)
        third = sync(sqlite_store, cloud)
        assert third["refused_writes"] == [] and third["failures"] == []
        assert [e["Subject"] for e in cloud.salesforce.all("Event")] == ["Renewal (with Type)"]
        [issue] = [i for i in queries.issues(sqlite_store) if i["kind"] == "write-refused"]
        assert issue["state"] == "resolved"


def test_a_refused_write_replays_from_the_recorded_feed(sqlite_store: Store,
                                                        tmp_path: Path) -> None:
    """The refusal is an observation (``write.refused``): ingest rebuilds the same issue."""
    from adapters.feed.ingest import ingest_files

    recorded = tmp_path / "traffic.jsonl"
    with _cloud([outlook("Renewal")]) as cloud, recorded.open("wb") as out:
        cloud.salesforce.fail(400, "REQUIRED_FIELD_MISSING", "Required fields are missing: "
                              "[Type__c]", method="POST", path=r"/sobjects/Event/$", times=1)
        run_cycle(sqlite_store, cloud.config(), clock=clock, saves=cloud.take_saves(),
                  sleep=lambda s: None, on_step=lambda step: None, record=out)
    assert b'"kind":"write.refused"' in recorded.read_bytes()
    replayed = Store.open(f"sqlite:///{tmp_path / 'replayed.db'}")
    try:
        ingest_files(replayed, [recorded])
        runner_issues = [(i["kind"], i["state"], i["message"]) for i in queries.issues(replayed)]
        live = [(i["kind"], i["state"], i["message"]) for i in queries.issues(sqlite_store)]
        assert ("write-refused", "open") in {(k, s) for k, s, _ in runner_issues}
        assert sorted(runner_issues) == sorted(live)
    finally:
        replayed.close()
