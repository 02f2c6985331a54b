"""The emulators refuse what the real APIs refuse (README "Emulator strictness").

One test per row of that table, each through the production clients over HTTPS
(``SalesforceClient`` on simple-salesforce, ``GraphClient`` on requests and msal):
the error code and message are asserted as the client surfaces them
(simple-salesforce's ``SalesforceMalformedRequest.content``, our ``GraphError``),
and as the sync reads them (``adapters.sync.refusals.refusal``); the error body has
the shape of the fixtures in ``../shared/fixtures``; nothing is stored. Each case
is grounded in DOMAIN.md §11 or a fixture, and each has an accepted neighbour
(the limit itself, the complete series), so a refusal cannot pass for the wrong
reason.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest

from adapters.graph.client import GraphClient, GraphError
from adapters.graph.config import GraphConfig
from adapters.salesforce.client import SalesforceClient
from adapters.salesforce.config import SalesforceConfig
from adapters.sandbox.graph_emulator import EVENT_PROPERTIES, GraphEmulator
from adapters.sandbox.org import ALICE, BOB, ICAL_FIELD, USER_IDS, people_records, sf_event
from adapters.sandbox.salesforce_emulator import PICKLISTS, SalesforceEmulator
from adapters.sync.refusals import refusal
from tests.conftest import FIXTURES

NOW = datetime(2026, 11, 20, 13, 0, tzinfo=UTC)
SF_FIXTURES = FIXTURES / "salesforce"
CLASSIC = json.loads((SF_FIXTURES / "event_rrule_examples_and_classic_recurrence.derived.json")
                     .read_text())
#: Salesforce's error body (dome_sobject_create): a list of {"message", "errorCode"}.
SF_ERROR = json.loads((SF_FIXTURES / "create_error_invalid_field.json").read_text())
GRAPH_ERROR = json.loads((FIXTURES / "graph" / "error_example_invalidRange.json").read_text())
CSDL = json.loads((FIXTURES / "graph" / "csdl_v1.0_event_types_and_enums.derived.json")
                  .read_text())


def clock() -> datetime:
    return NOW


# --- Salesforce ----------------------------------------------------------------------

SEEDED = sf_event(1, subject="Pipeline call", start="2026-11-24T10:00:00",
                  end="2026-11-24T11:00:00", owner=ALICE,
                  modstamp="2026-11-20T09:00:00.000+0000")
EVENT_ID = SEEDED["Id"]


@pytest.fixture(scope="module")
def sf_em() -> Iterator[SalesforceEmulator]:
    with SalesforceEmulator([SEEDED], people=people_records(), clock=clock) as em:
        yield em


@pytest.fixture
def sf(sf_em: SalesforceEmulator) -> SalesforceClient:
    sf_em.writes.clear()
    config = SalesforceConfig(instance_url=sf_em.url, login_url=sf_em.url,
                              client_id=sf_em.client_id, client_secret=sf_em.client_secret,
                              ca_file=sf_em.ca_file)
    return SalesforceClient(config, ICAL_FIELD, sleep=lambda _: None)


def single(**fields: Any) -> dict[str, Any]:
    """A timed Event Salesforce accepts; ``fields`` change it (None drops a field)."""
    body: dict[str, Any] = {"Subject": "Quarterly review", "StartDateTime": "2026-11-23T17:00:00Z",
                            "EndDateTime": "2026-11-23T17:30:00Z", "OwnerId": USER_IDS[ALICE]}
    body.update(fields)
    return {k: v for k, v in body.items() if v is not None}


#: A complete Classic series master of each RecurrenceType (DOMAIN.md §11), starting on
#: Monday 2026-11-23 in New York.
SERIES: dict[str, dict[str, Any]] = {
    "RecursDaily": {"RecurrenceInterval": 1},
    "RecursEveryWeekday": {"RecurrenceDayOfWeekMask": 62},
    "RecursWeekly": {"RecurrenceInterval": 1, "RecurrenceDayOfWeekMask": 2},
    "RecursMonthly": {"RecurrenceInterval": 1, "RecurrenceDayOfMonth": 23},
    "RecursMonthlyNth": {"RecurrenceInterval": 1, "RecurrenceDayOfWeekMask": 2,
                         "RecurrenceInstance": "Fourth"},
    "RecursYearly": {"RecurrenceDayOfMonth": 23, "RecurrenceMonthOfYear": "November"},
    "RecursYearlyNth": {"RecurrenceDayOfWeekMask": 2, "RecurrenceInstance": "Fourth",
                        "RecurrenceMonthOfYear": "November"},
}


def series(kind: str, **fields: Any) -> dict[str, Any]:
    body = single(IsRecurrence=True, RecurrenceType=kind,
                  RecurrenceStartDateTime="2026-11-23T17:00:00Z",
                  RecurrenceEndDateOnly="2027-02-28" if "Yearly" not in kind else "2028-12-31",
                  RecurrenceTimeZoneSidKey="America/New_York", **SERIES[kind])
    body.update(fields)
    return {k: v for k, v in body.items() if v is not None}


def sf_refused(sf_em: SalesforceEmulator, write: Callable[[], object]) -> dict[str, Any]:
    """The one error of a refused write, checked against Salesforce's error shape; the
    org is unchanged."""
    before = sf_em.state()["records"]
    with pytest.raises(SalesforceMalformedRequest) as caught:
        write()
    exc = caught.value
    assert exc.status == 400
    errors: Any = exc.content
    assert isinstance(errors, list) and len(errors) == 1
    (error,) = errors
    shape = set(SF_ERROR[0])  # {"message", "errorCode"}
    assert shape <= set(error) <= shape | {"fields"}
    assert all(isinstance(error[k], str) and error[k] for k in shape)
    assert isinstance(error.get("fields", []), list)
    seen = refusal(exc)  # what the sync records on the meeting
    assert seen is not None and (seen.status, seen.code, seen.message) == (
        400, error["errorCode"], error["message"])
    assert sf_em.writes == [] and sf_em.state()["records"] == before
    return dict(error)


def test_the_complete_bodies_are_accepted(sf: SalesforceClient,
                                          sf_em: SalesforceEmulator) -> None:
    """The neighbours of every refusal below: each is one field away from these."""
    created = [sf.create("Event", single())]
    created += [sf.create("Event", series(kind)) for kind in SERIES]
    sf.update("Event", EVENT_ID, {"Subject": "Pipeline call (moved)"})
    relation = sf.create("EventRelation", {"EventId": EVENT_ID, "RelationId": USER_IDS[BOB],
                                           "IsInvitee": True, "Status": "Accepted"})
    for kind, master in zip(SERIES, created[1:], strict=True):
        children = [e for e in sf_em.all("Event") if e["RecurrenceActivityId"] == master]
        assert len(children) > 1, kind
    assert (sf_em.get("EventRelation", relation) or {})["Status"] == "Accepted"
    for record_id in created:
        sf.delete("Event", record_id)
    sf.delete("EventRelation", relation)


# INVALID_FIELD ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["Subjekt", "Nope__c", "Attendees"])
def test_an_unknown_field_is_invalid_field(sf: SalesforceClient, sf_em: SalesforceEmulator,
                                           name: str) -> None:
    for write in (lambda: sf.create("Event", single(**{name: "x"})),
                  lambda: sf.update("Event", EVENT_ID, {name: "x"})):
        error = sf_refused(sf_em, write)
        assert error == {"errorCode": "INVALID_FIELD", "fields": [name],
                         "message": f"No such column '{name}' on sobject of type Event"}


def test_an_id_in_the_body_is_invalid_field_as_the_fixture_shows(
        sf: SalesforceClient, sf_em: SalesforceEmulator) -> None:
    """dome_sobject_create's own example: the body is the fixture, byte for byte."""
    for write in (lambda: sf.create("Event", single(Id=EVENT_ID)),
                  lambda: sf.update("Event", EVENT_ID, {"Id": EVENT_ID, "Subject": "x"})):
        assert [sf_refused(sf_em, write)] == SF_ERROR
    assert SF_ERROR == [{"message": "The Id field should not be specified in the sobject data.",
                         "errorCode": "INVALID_FIELD"}]


# INVALID_FIELD_FOR_INSERT_UPDATE -------------------------------------------------------

@pytest.mark.parametrize("name, value", [
    ("IsChild", True), ("RecurrenceActivityId", EVENT_ID), ("IsGroupEvent", True),
    ("SystemModstamp", "2026-11-20T09:00:00.000+0000"), ("CreatedById", USER_IDS[ALICE])])
def test_a_read_only_field_is_invalid_field_for_insert_update(
        sf: SalesforceClient, sf_em: SalesforceEmulator, name: str, value: Any) -> None:
    for write in (lambda: sf.create("Event", single(**{name: value})),
                  lambda: sf.update("Event", EVENT_ID, {name: value})):
        error = sf_refused(sf_em, write)
        assert (error["errorCode"], error["fields"]) == ("INVALID_FIELD_FOR_INSERT_UPDATE",
                                                         [name])
        assert error["message"].startswith(f"Unable to create/update fields: {name}.")


# STRING_TOO_LONG ---------------------------------------------------------------------------

@pytest.mark.parametrize("name, limit", [("Subject", 255), ("Location", 255),
                                         ("Description", 32_000)])
def test_a_text_over_its_length_is_string_too_long(
        sf: SalesforceClient, sf_em: SalesforceEmulator, name: str, limit: int) -> None:
    """DOMAIN.md §11: Subject and Location 255, Description 32,000 characters."""
    at_limit = sf.create("Event", single(**{name: "é" * limit}))  # characters, not bytes
    assert len((sf_em.get("Event", at_limit) or {})[name]) == limit
    sf.delete("Event", at_limit)
    sf_em.writes.clear()
    for write in (lambda: sf.create("Event", single(**{name: "x" * (limit + 1)})),
                  lambda: sf.update("Event", EVENT_ID, {name: "x" * (limit + 1)})):
        error = sf_refused(sf_em, write)
        assert (error["errorCode"], error["fields"]) == ("STRING_TOO_LONG", [name])
        assert error["message"].startswith(f"{name}: data value too large: ")
        assert error["message"].endswith(f"(max length={limit})")


# INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST ---------------------------------------------------

def test_the_picklists_are_the_object_references() -> None:
    """The emulator's picklists are the fixture's values (Object Reference, Event and
    EventRelation), so a value the API takes is never refused here."""
    assert set(PICKLISTS["Event"]["RecurrenceInstance"]) == set(
        CLASSIC["RecurrenceInstance_values"])
    assert list(PICKLISTS["Event"]["RecurrenceMonthOfYear"]) == CLASSIC[
        "RecurrenceMonthOfYear_values"]
    assert set(PICKLISTS["EventRelation"]["Status"]) == set(CLASSIC["EventRelation_Status_values"])
    assert set(PICKLISTS["Event"]["RecurrenceType"]) == set(
        CLASSIC["classic_RecurrenceType_required_fields"])


@pytest.mark.parametrize("name, bad", [
    ("RecurrenceType", "RecursHourly"), ("RecurrenceInstance", "Fifth"),
    ("RecurrenceMonthOfYear", "Smarch"), ("RecurrenceMonthOfYear", "11"),
    ("ShowAs", "Away")])
def test_an_event_picklist_value_outside_the_list_is_refused(
        sf: SalesforceClient, sf_em: SalesforceEmulator, name: str, bad: str) -> None:
    kind = {"RecurrenceInstance": "RecursMonthlyNth",
            "RecurrenceMonthOfYear": "RecursYearly"}.get(name, "RecursWeekly")
    body = series(kind, **{name: bad}) if name != "ShowAs" else single(ShowAs=bad)
    for write in (lambda: sf.create("Event", body),
                  lambda: sf.update("Event", EVENT_ID, {name: bad})):
        error = sf_refused(sf_em, write)
        assert (error["errorCode"], error["fields"]) == (
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", [name])
        assert error["message"].endswith(f": bad value for restricted picklist field: {bad}")


@pytest.mark.parametrize("bad", ["Maybe", "Uninvited", "accepted"])
def test_an_event_relation_status_outside_the_list_is_refused(
        sf: SalesforceClient, sf_em: SalesforceEmulator, bad: str) -> None:
    """The fixture's note: Uninvited and Maybe aren't supported; the values are cased."""
    error = sf_refused(sf_em, lambda: sf.create("EventRelation", {
        "EventId": EVENT_ID, "RelationId": USER_IDS[BOB], "IsInvitee": True, "Status": bad}))
    assert error == {"errorCode": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "fields": ["Status"],
                     "message": f"Status: bad value for restricted picklist field: {bad}"}


# REQUIRED_FIELD_MISSING --------------------------------------------------------------------

@pytest.mark.parametrize("name", ["StartDateTime", "EndDateTime"])
def test_a_missing_start_or_end_is_required_field_missing(
        sf: SalesforceClient, sf_em: SalesforceEmulator, name: str) -> None:
    error = sf_refused(sf_em, lambda: sf.create("Event", single(**{name: None})))
    assert error == {"errorCode": "REQUIRED_FIELD_MISSING", "fields": [name],
                     "message": f"Required fields are missing: [{name}]"}


RECURRENCE_NEEDS = [(kind, name) for kind, needs in
                    CLASSIC["classic_RecurrenceType_required_fields"].items()
                    for name in ["RecurrenceStartDateTime", "RecurrenceEndDateOnly", *needs]]


@pytest.mark.parametrize("kind, name", RECURRENCE_NEEDS)
def test_a_series_without_a_field_its_type_needs_is_required_field_missing(
        sf: SalesforceClient, sf_em: SalesforceEmulator, kind: str, name: str) -> None:
    """Every RecurrenceType's required fields, from the Object Reference (the fixture),
    plus RecurrenceStartDateTime and RecurrenceEndDateOnly, required for every type
    (DOMAIN.md §11: a noEnd / numbered Graph range must be given an end date)."""
    error = sf_refused(sf_em, lambda: sf.create("Event", series(kind, **{name: None})))
    assert error == {"errorCode": "REQUIRED_FIELD_MISSING", "fields": [name],
                     "message": f"Required fields are missing: [{name}]"}


def test_a_series_without_a_type_is_required_field_missing(
        sf: SalesforceClient, sf_em: SalesforceEmulator) -> None:
    error = sf_refused(sf_em, lambda: sf.create("Event", series("RecursDaily",
                                                                RecurrenceType=None)))
    assert (error["errorCode"], error["fields"]) == ("REQUIRED_FIELD_MISSING",
                                                     ["RecurrenceType"])


# FIELD_INTEGRITY_EXCEPTION -----------------------------------------------------------------

def test_an_end_before_the_start_is_field_integrity_exception(
        sf: SalesforceClient, sf_em: SalesforceEmulator) -> None:
    for write in (
            lambda: sf.create("Event", single(EndDateTime="2026-11-23T16:59:00Z")),
            lambda: sf.update("Event", EVENT_ID, {"EndDateTime": "2026-11-24T09:00:00Z"})):
        error = sf_refused(sf_em, write)
        assert error == {"errorCode": "FIELD_INTEGRITY_EXCEPTION", "fields": ["EndDateTime"],
                         "message": "End Date Time: The end time must be after the start "
                         "time."}


@pytest.mark.parametrize("all_day, longest", [(False, timedelta(hours=24)),
                                              (True, timedelta(days=14))])
def test_an_event_over_its_longest_duration_is_field_integrity_exception(
        sf: SalesforceClient, sf_em: SalesforceEmulator, all_day: bool,
        longest: timedelta) -> None:
    """DOMAIN.md §11: a timed Event lasts at most 24 hours, an all-day one 14 days."""
    start = datetime(2026, 11, 23, tzinfo=UTC)

    def body(length: timedelta) -> dict[str, Any]:
        return single(IsAllDayEvent=all_day, StartDateTime=start.isoformat(),
                      EndDateTime=(start + length).isoformat())

    longest_id = sf.create("Event", body(longest))
    assert (sf_em.get("Event", longest_id) or {})["DurationInMinutes"] == \
        longest.total_seconds() // 60
    sf.delete("Event", longest_id)
    sf_em.writes.clear()
    error = sf_refused(sf_em, lambda: sf.create("Event", body(longest + timedelta(minutes=1))))
    assert error == {"errorCode": "FIELD_INTEGRITY_EXCEPTION", "fields": ["EndDateTime"],
                     "message": "Event duration cannot exceed 24 hours (14 days for all-day "
                     "events)."}


@pytest.mark.parametrize("kind", ["RecursYearly", "RecursYearlyNth"])
def test_an_interval_on_a_yearly_series_is_field_integrity_exception(
        sf: SalesforceClient, sf_em: SalesforceEmulator, kind: str) -> None:
    """DOMAIN.md §11: yearly series have no interval ("every 2 years" cannot be sent)."""
    error = sf_refused(sf_em, lambda: sf.create("Event", series(kind, RecurrenceInterval=2)))
    assert error == {"errorCode": "FIELD_INTEGRITY_EXCEPTION", "fields": ["RecurrenceInterval"],
                     "message": "Recurrence Interval: yearly recurring events have no interval"}


#: KB 000212481 (DOMAIN.md §11): Daily 100 occurrences, Weekly 53, Monthly 59, Yearly 9;
#: with the last date that still fits the cap, from Monday 2026-11-23.
CAPS = {"RecursDaily": (100, date(2027, 3, 2)), "RecursEveryWeekday": (100, date(2027, 4, 9)),
        "RecursWeekly": (53, date(2027, 11, 22)), "RecursMonthly": (59, date(2031, 9, 23)),
        "RecursMonthlyNth": (59, date(2031, 9, 22)), "RecursYearly": (9, date(2034, 11, 23)),
        "RecursYearlyNth": (9, date(2034, 11, 27))}


@pytest.mark.parametrize("kind", list(CAPS))
def test_a_series_over_its_occurrence_cap_is_field_integrity_exception(
        sf: SalesforceClient, sf_em: SalesforceEmulator, kind: str) -> None:
    cap, last = CAPS[kind]
    master = sf.create("Event", series(kind, RecurrenceEndDateOnly=last.isoformat()))
    children = sorted(e["ActivityDate"] for e in sf_em.all("Event")
                      if e["RecurrenceActivityId"] == master and e["Id"] != master)
    assert (len(children), children[-1]) == (cap, last.isoformat())
    sf.delete("Event", master)
    sf_em.writes.clear()
    beyond = (last + timedelta(days=400)).isoformat()
    error = sf_refused(sf_em, lambda: sf.create("Event", series(
        kind, RecurrenceEndDateOnly=beyond)))
    assert error == {"errorCode": "FIELD_INTEGRITY_EXCEPTION",
                     "fields": ["RecurrenceEndDateOnly"],
                     "message": f"Recurrence End: a series of this type can have at most "
                     f"{cap} occurrences"}


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "Pacific Standard Time", "../etc/passwd"])
def test_a_series_in_an_unknown_zone_is_field_integrity_exception(
        sf: SalesforceClient, sf_em: SalesforceEmulator, zone: str) -> None:
    """RecurrenceTimeZoneSidKey is an IANA / Java id (DOMAIN.md §5): a Windows name is
    not one."""
    error = sf_refused(sf_em, lambda: sf.create("Event", series(
        "RecursWeekly", RecurrenceTimeZoneSidKey=zone)))
    assert error == {"errorCode": "FIELD_INTEGRITY_EXCEPTION",
                     "fields": ["RecurrenceTimeZoneSidKey"],
                     "message": "Recurrence: invalid time zone, date or pattern"}


# --- Graph ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def graph_em() -> Iterator[GraphEmulator]:
    with GraphEmulator({ALICE: []}, clock=clock) as em:
        yield em


@pytest.fixture
def graph(graph_em: GraphEmulator) -> GraphClient:
    graph_em.writes.clear()
    config = GraphConfig(tenant=graph_em.tenant, client_id=graph_em.client_id,
                         client_secret=graph_em.client_secret, mailboxes=(ALICE,),
                         authority_host=graph_em.url, base_url=f"{graph_em.url}/v1.0",
                         ca_file=graph_em.ca_file)
    return GraphClient(config, sleep=lambda _: None)


def item(**props: Any) -> dict[str, Any]:
    """An event Graph accepts; ``props`` change it (None drops a property)."""
    body: dict[str, Any] = {
        "subject": "Design review", "body": {"contentType": "text", "content": "Agenda"},
        "start": {"dateTime": "2026-11-23T10:00:00", "timeZone": "Pacific Standard Time"},
        "end": {"dateTime": "2026-11-23T11:00:00", "timeZone": "Pacific Standard Time"}}
    body.update(props)
    return {k: v for k, v in body.items() if v is not None}


def recurrence(pattern: dict[str, Any], range_: dict[str, Any]) -> dict[str, Any]:
    return {"pattern": {"interval": 1, **pattern},
            "range": {"startDate": "2026-11-23", "recurrenceTimeZone": "Pacific Standard Time",
                      **range_}}


#: A complete recurrence of each pattern type and each range type (Graph v1.0).
PATTERNS: dict[str, dict[str, Any]] = {
    "daily": {}, "weekly": {"daysOfWeek": ["monday"]}, "absoluteMonthly": {"dayOfMonth": 23},
    "relativeMonthly": {"daysOfWeek": ["monday"], "index": "fourth"},
    "absoluteYearly": {"dayOfMonth": 23, "month": 11},
    "relativeYearly": {"daysOfWeek": ["monday"], "index": "fourth", "month": 11}}
RANGES: dict[str, dict[str, Any]] = {"endDate": {"endDate": "2027-12-31"}, "noEnd": {},
                                     "numbered": {"numberOfOccurrences": 3}}


def graph_refused(graph_em: GraphEmulator, graph: GraphClient, body: dict[str, Any],
                  event_id: str | None = None, code: str = "RequestBodyRead") -> str:
    """Create (or with ``event_id`` PATCH) ``body``: Graph's refusal as the client raises
    it and as the wire carries it, in the fixture's error shape; nothing stored."""
    before = graph_em.state()["events"]
    with pytest.raises(GraphError) as caught:
        if event_id is None:
            graph.create_event(ALICE, body)
        else:
            graph.patch_event(ALICE, event_id, body)
    exc = caught.value
    assert (exc.status, exc.code) == (400, code)
    assert str(exc).startswith(f"Graph 400 {code}: {exc.message}")
    seen = refusal(exc)  # what the sync records on the meeting
    assert seen is not None and (seen.status, seen.code, seen.message) == (400, code,
                                                                           exc.message)
    # The same request on the client's own session: the wire body has the shape of
    # {"error": {"code", "message", "innerError": {"request-id", "date"}}}.
    url = f"{graph.config.base_url}/users/{ALICE}/events" + (f"/{event_id}" if event_id else "")
    resp = graph.session.request("PATCH" if event_id else "POST", url, json=body, timeout=30,
                                 headers={"Authorization": f"Bearer {graph.token()}"})
    raw = resp.json()
    assert resp.status_code == 400 and set(raw) == set(GRAPH_ERROR)
    assert set(GRAPH_ERROR["error"]) <= set(raw["error"])
    assert set(GRAPH_ERROR["error"]["innerError"]) <= set(raw["error"]["innerError"])
    assert (raw["error"]["code"], raw["error"]["message"]) == (code, exc.message)
    assert graph_em.writes == [] and graph_em.state()["events"] == before
    return exc.message


def test_complete_graph_bodies_are_accepted(graph: GraphClient, graph_em: GraphEmulator) -> None:
    """Every pattern type with every range type, a text and an html body, IANA and
    Windows zones: the neighbours of the refusals below."""
    made = [graph.create_event(ALICE, item()),
            graph.create_event(ALICE, item(body={"contentType": "html", "content": "<b>x</b>"})),
            graph.create_event(ALICE, item(start={"dateTime": "2026-11-23T10:00:00",
                                                  "timeZone": "America/Los_Angeles"}))]
    for pattern in PATTERNS:
        for span in RANGES:
            made.append(graph.create_event(ALICE, item(recurrence=recurrence(
                {"type": pattern, **PATTERNS[pattern]}, {"type": span, **RANGES[span]}))))
            assert made[-1]["type"] == "seriesMaster", (pattern, span)
    graph.patch_event(ALICE, made[0]["id"], {"categories": ["Salesforce"]})
    for event in made:
        graph.delete_event(ALICE, event["id"])


def test_the_emulators_properties_are_graphs() -> None:
    """Nothing is accepted that Graph's event type (CSDL v1.0) does not have."""
    graph_props = set(CSDL["types"]["event"]) | set(CSDL["types"]["outlookItem"])
    assert graph_props >= EVENT_PROPERTIES
    assert set(CSDL["enums"]["bodyType"]) == {"text", "html"}
    assert set(PATTERNS) == set(CSDL["enums"]["recurrencePatternType"])
    assert set(RANGES) == set(CSDL["enums"]["recurrenceRangeType"])


@pytest.mark.parametrize("name", ["subjekt", "Attendees", "startTimeZone"])
def test_an_unknown_property_is_request_body_read(graph: GraphClient, graph_em: GraphEmulator,
                                                  name: str) -> None:
    event = graph.create_event(ALICE, item())
    graph_em.writes.clear()
    for body, target in ((item(**{name: "x"}), None), ({name: "x"}, event["id"])):
        assert graph_refused(graph_em, graph, body, target) == (
            f"The property '{name}' does not exist on type 'microsoft.graph.event'. Make sure "
            "to only use property names that are defined by the type.")
    graph.delete_event(ALICE, event["id"])


@pytest.mark.parametrize("kind", ["HTML", "Text", "markdown", ""])
def test_a_body_content_type_that_is_not_a_body_type_is_request_body_read(
        graph: GraphClient, graph_em: GraphEmulator, kind: str) -> None:
    """bodyType is text | html (CSDL), in lower case as the wire spells enums."""
    message = graph_refused(graph_em, graph, item(body={"contentType": kind,
                                                         "content": "Agenda"}))
    assert message == (f"Cannot convert the literal '{kind}' to the expected type "
                       "'microsoft.graph.bodyType'.")


@pytest.mark.parametrize("where", ["start", "end", "recurrence"])
def test_an_unknown_time_zone_is_time_zone_not_supported(
        graph: GraphClient, graph_em: GraphEmulator, where: str) -> None:
    """Graph answers an unknown zone with its own code, TimeZoneNotSupportedException,
    and this message (microsoft-graph-docs-contrib#7091: 'Greenwich Mean Time' is not a
    Windows zone name; 'GMT Standard Time' is)."""
    zone = "Greenwich Mean Time"
    if where == "recurrence":
        body = item(recurrence=recurrence({"type": "daily"},
                                          {"type": "noEnd", "recurrenceTimeZone": zone}))
    else:
        body = item(**{where: {"dateTime": "2026-11-23T10:30:00", "timeZone": zone}})
    message = graph_refused(graph_em, graph, body, code="TimeZoneNotSupportedException")
    assert message == ("A valid TimeZone value must be specified. The following TimeZone "
                       "value is not supported: 'Greenwich Mean Time'.")
    accepted = graph.create_event(ALICE, item(start={"dateTime": "2026-11-23T10:00:00",
                                                     "timeZone": "GMT Standard Time"}))
    graph.delete_event(ALICE, accepted["id"])


GRAPH_NEEDS = [("pattern", kind, name) for kind, needs in
               {"weekly": ["daysOfWeek"], "absoluteMonthly": ["dayOfMonth"],
                "relativeMonthly": ["daysOfWeek"], "absoluteYearly": ["dayOfMonth", "month"],
                "relativeYearly": ["daysOfWeek", "month"]}.items() for name in needs] + [
    ("range", kind, name) for kind, needs in
    {"endDate": ["startDate", "endDate"], "noEnd": ["startDate"],
     "numbered": ["startDate", "numberOfOccurrences"]}.items() for name in needs]


@pytest.mark.parametrize("part, kind, name", GRAPH_NEEDS)
def test_a_recurrence_without_what_its_type_needs_is_request_body_read(
        graph: GraphClient, graph_em: GraphEmulator, part: str, kind: str, name: str) -> None:
    pattern = {"type": kind, **PATTERNS[kind]} if part == "pattern" else {"type": "daily"}
    range_ = {"type": kind, **RANGES[kind]} if part == "range" else {"type": "noEnd"}
    rec = recurrence(pattern, range_)
    del rec[part][name]
    message = graph_refused(graph_em, graph, item(recurrence=rec))
    assert message == f"Recurrence is missing required properties: {part}.{name}."


@pytest.mark.parametrize("pattern, message", [
    ({"type": "hourly"}, "Recurrence pattern type 'hourly' is not valid."),
    ({"type": "daily", "interval": 0}, "Recurrence pattern interval must be 1 or more."),
    ({"type": "weekly", "daysOfWeek": ["Monday"]},
     "Recurrence pattern has invalid values: ['Monday']."),
    ({"type": "relativeMonthly", "daysOfWeek": ["monday"], "index": "fifth"},
     "Recurrence pattern has invalid values: fifth.")])
def test_a_recurrence_with_a_bad_enum_or_interval_is_request_body_read(
        graph: GraphClient, graph_em: GraphEmulator, pattern: dict[str, Any],
        message: str) -> None:
    rec = recurrence(pattern, {"type": "noEnd"})
    assert graph_refused(graph_em, graph, item(recurrence=rec)) == message
    rec = recurrence({"type": "daily"}, {"type": "forever"})
    assert graph_refused(graph_em, graph, item(recurrence=rec)) == \
        "Recurrence range type 'forever' is not valid."
