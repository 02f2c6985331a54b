"""The emulators speak the wire formats the real clients expect (msal, simple-salesforce).

Every test drives the production clients (``GraphClient``, ``SalesforceClient``)
over HTTPS against the local emulators; nothing of ours is mocked. Sleeps are
recorded instead of slept, so back-off is asserted, not waited for.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from simple_salesforce.exceptions import SalesforceMalformedRequest

from adapters.graph.client import DeltaExpired, GraphAuthError, GraphClient, GraphError
from adapters.graph.config import GraphConfig
from adapters.salesforce.client import RequestLimitExceeded, SalesforceAuthError, SalesforceClient
from adapters.salesforce.config import SalesforceConfig
from adapters.sandbox.graph_emulator import GraphEmulator
from adapters.sandbox.org import ALICE, BOB, ICAL_FIELD, USER_IDS, graph_event, sf_event
from adapters.sandbox.salesforce_emulator import SalesforceEmulator

NOW = datetime(2026, 11, 20, 13, 0, tzinfo=UTC)
WINDOW = ("2026-11-06T00:00:00Z", "2027-01-19T00:00:00Z")


def clock() -> datetime:
    return NOW


def _alice_calendar(n: int) -> list[dict[str, Any]]:
    return [graph_event(ALICE, f"e{i}", subject=f"Meeting {i}",
                        start=f"2026-11-{10 + i:02d}T10:00:00",
                        end=f"2026-11-{10 + i:02d}T11:00:00", organizer=ALICE)
            for i in range(n)]


@pytest.fixture
def graph_em() -> Iterator[GraphEmulator]:
    with GraphEmulator({ALICE: _alice_calendar(7), BOB: []}, clock=clock) as em:
        yield em


def graph_client(em: GraphEmulator, sleeps: list[float], secret: str | None = None,
                 page_size: int = 3) -> GraphClient:
    config = GraphConfig(tenant=em.tenant, client_id=em.client_id,
                         client_secret=secret or em.client_secret, mailboxes=(ALICE,),
                         authority_host=em.url, base_url=f"{em.url}/v1.0",
                         page_size=page_size, ca_file=em.ca_file)
    return GraphClient(config, sleep=sleeps.append)


def delta_events(client: GraphClient, link: str | None = None
                 ) -> tuple[list[dict[str, Any]], str | None, int]:
    pages = list(client.delta_pages(ALICE, *WINDOW, link))
    return [e for p in pages for e in p.events], pages[-1].delta_link, len(pages)


# --- Graph -------------------------------------------------------------------------


def test_msal_gets_a_token_from_the_emulated_authority(graph_em: GraphEmulator) -> None:
    client = graph_client(graph_em, [])
    assert client.token() in graph_em.tokens
    assert [r[:2] for r in graph_em.requests] == [
        ("GET", "/contoso/v2.0/.well-known/openid-configuration"),
        ("POST", "/contoso/oauth2/v2.0/token")]
    with pytest.raises(GraphAuthError, match="invalid_client"):
        graph_client(graph_em, [], secret="wrong").token()


def test_delta_pages_then_reports_only_changes(graph_em: GraphEmulator) -> None:
    client = graph_client(graph_em, [])
    events, delta, pages = delta_events(client)
    assert pages == 3 and len(events) == 7 and delta is not None
    assert {e["subject"] for e in events} == {f"Meeting {i}" for i in range(7)}

    before = graph_em.event(ALICE, events[0]["id"])
    patched = client.patch_event(ALICE, events[0]["id"], {"categories": ["Error"]})
    assert before is not None and patched["categories"] == ["Error"]
    assert patched["changeKey"] != before["changeKey"]
    graph_em.remove_event(ALICE, events[1]["id"])

    changed, delta2, _ = delta_events(client, delta)
    assert [(e["id"], e.get("categories"), e.get("@removed")) for e in changed] == [
        (events[0]["id"], ["Error"], None), (events[1]["id"], None, {"reason": "deleted"})]
    assert delta_events(client, delta2)[0] == []  # nothing changed since


def test_a_link_to_another_origin_never_gets_the_token(graph_em: GraphEmulator) -> None:
    """A nextLink or deltaLink naming another host or port is refused before any request:
    following it would hand that server this client's bearer token."""
    with GraphEmulator({ALICE: []}, clock=clock) as elsewhere:
        graph_em.link_origin = elsewhere.url
        client = graph_client(graph_em, [])
        pages = client.delta_pages(ALICE, *WINDOW)
        with pytest.raises(GraphError, match="foreignLink") as refused:
            next(pages)
        assert elsewhere.url.split("//")[1] in str(refused.value)
        assert elsewhere.requests == []  # nothing, let alone a token, reached it
        # the first page was asked of the real endpoint, and the link is not followed
        assert len([r for r in graph_em.requests if "calendarView/delta" in r[1]]) == 1
        # a saved link from elsewhere (a checkpoint written before) is refused too
        graph_em.link_origin = None
        with pytest.raises(GraphError, match="foreignLink"):
            list(client.delta_pages(ALICE, *WINDOW, f"{elsewhere.url}/v1.0/users/x/delta"))
        assert elsewhere.requests == []
        # links under the base URL are followed as before
        assert delta_events(client)[2] == 3


def test_categories_are_replaced_whole_and_a_create_is_found_by_marker(
        graph_em: GraphEmulator) -> None:
    client = graph_client(graph_em, [])
    event_id = graph_em.calendar(ALICE)[0]["id"]
    client.patch_event(ALICE, event_id, {"categories": ["Salesforce", "Error"]})
    assert client.patch_event(ALICE, event_id, {"categories": ["Salesforce"]})[
        "categories"] == ["Salesforce"]
    prop = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name SyncLedgerSalesforceId"
    created = client.create_event(BOB, {
        "subject": "From Salesforce", "start": {"dateTime": "2026-12-01T10:00:00",
                                                "timeZone": "UTC"},
        "end": {"dateTime": "2026-12-01T11:00:00", "timeZone": "UTC"},
        "singleValueExtendedProperties": [{"id": prop, "value": "00U5e0000000099EAA"}]})
    assert created["type"] == "singleInstance" and created["organizer"]["emailAddress"][
        "address"] == BOB
    assert [e["id"] for e in client.find_by_property(BOB, prop, "00U5e0000000099EAA")] == [
        created["id"]]
    assert client.find_by_property(BOB, prop, "00U5e0000000098EAA") == []
    # As in Graph, an extended property is only returned when $expand-ed by its id.
    assert "singleValueExtendedProperties" not in created
    assert "singleValueExtendedProperties" not in client.get_event(BOB, created["id"])  # type: ignore[operator]
    assert client.get_event(BOB, created["id"], property_id=prop)[  # type: ignore[index]
        "singleValueExtendedProperties"] == [{"id": prop, "value": "00U5e0000000099EAA"}]
    assert all("singleValueExtendedProperties" not in e
               for p in client.delta_pages(BOB, *WINDOW) for e in p.events)
    with pytest.raises(GraphError, match="RequestBodyRead"):
        client.create_event(BOB, {"subjekt": "typo"})
    assert [w["method"] for w in graph_em.writes] == ["PATCH", "PATCH", "POST"]


def test_a_new_weekly_series_gets_its_occurrences(graph_em: GraphEmulator) -> None:
    client = graph_client(graph_em, [])
    master = client.create_event(BOB, {
        "subject": "Weekly", "start": {"dateTime": "2026-11-23T16:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2026-11-23T16:30:00", "timeZone": "UTC"},
        "recurrence": {"pattern": {"type": "weekly", "interval": 1,
                                   "daysOfWeek": ["monday", "thursday"]},
                       "range": {"type": "numbered", "startDate": "2026-11-23",
                                 "numberOfOccurrences": 4}}})
    occurrences = sorted((e for e in graph_em.calendar(BOB) if e["type"] == "occurrence"),
                         key=lambda e: e["start"]["dateTime"])
    assert master["type"] == "seriesMaster"
    assert [e["start"]["dateTime"][:16] for e in occurrences] == [
        "2026-11-23T16:00", "2026-11-26T16:00", "2026-11-30T16:00", "2026-12-03T16:00"]
    assert {e["seriesMasterId"] for e in occurrences} == {master["id"]}
    assert len({e["iCalUId"] for e in occurrences}) == 4  # Graph: one iCalUId each


def test_throttling_is_waited_out_for_retry_after_seconds(graph_em: GraphEmulator) -> None:
    sleeps: list[float] = []
    client = graph_client(graph_em, sleeps)
    graph_em.fail(429, "TooManyRequests", "Please retry again later.", retry_after=0.25,
                  path="calendarView", times=2)
    graph_em.fail(503, "ServiceUnavailable", "busy", retry_after=0.5, path="calendarView")
    events, _, _ = delta_events(client)
    assert len(events) == 7
    assert sleeps == [0.25, 0.25, 0.5] and client.throttled == 3


def test_an_expired_token_is_replaced_once(graph_em: GraphEmulator) -> None:
    client = graph_client(graph_em, [])
    client.token()
    graph_em.at(graph_em.expire_tokens, path="calendarView")
    events, _, _ = delta_events(client)
    assert len(events) == 7
    statuses = [(m, t.split("?")[0], s) for m, t, s in graph_em.requests]
    assert ("GET", f"/v1.0/users/{ALICE.replace('@', '%40')}/calendarView/delta", 401) \
        in statuses
    assert sum(1 for m, t, _ in statuses if t.endswith("/token")) == 2


def test_an_unknown_delta_token_means_resync(graph_em: GraphEmulator) -> None:
    client = graph_client(graph_em, [])
    _, delta, _ = delta_events(client)
    graph_em.expire_delta_tokens()
    with pytest.raises(DeltaExpired) as caught:
        delta_events(client, delta)
    assert caught.value.status == 410 and caught.value.code == "syncStateNotFound"


def test_a_page_cut_mid_body_is_fetched_again(graph_em: GraphEmulator) -> None:
    sleeps: list[float] = []
    client = graph_client(graph_em, sleeps)
    fault = graph_em.drop(100, path=r"\$skiptoken")
    events, _, _ = delta_events(client)
    assert fault.used == 1 and len(sleeps) == 1
    assert sorted(e["subject"] for e in events) == [f"Meeting {i}" for i in range(7)]


def test_a_create_whose_answer_is_lost_is_not_sent_again(graph_em: GraphEmulator) -> None:
    client = graph_client(graph_em, [])
    graph_em.drop(20, method="POST", path="/events")
    body = {"subject": "Once", "start": {"dateTime": "2026-12-01T10:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2026-12-01T11:00:00", "timeZone": "UTC"}}
    with pytest.raises(requests.RequestException):
        client.create_event(BOB, body)
    assert [e["subject"] for e in graph_em.calendar(BOB)] == ["Once"]
    assert len(graph_em.writes) == 1


# --- Salesforce ----------------------------------------------------------------------


def _records() -> list[dict[str, Any]]:
    return [sf_event(i, subject=f"Call {i}", start=f"2026-11-{10 + i:02d}T10:00:00",
                     end=f"2026-11-{10 + i:02d}T11:00:00", owner=ALICE,
                     modstamp=f"2026-11-20T09:{i:02d}:00.000+0000") for i in range(1, 6)]


@pytest.fixture
def sf_em() -> Iterator[SalesforceEmulator]:
    with SalesforceEmulator(_records(), clock=clock, page_size=2, username="sync@contoso.com",
                            password="pw") as em:
        yield em


def sf_client(em: SalesforceEmulator, sleeps: list[float], *, username: str | None = None,
              secret: str | None = None) -> SalesforceClient:
    config = SalesforceConfig(instance_url=em.url, login_url=em.url, client_id=em.client_id,
                              client_secret=secret or em.client_secret, username=username,
                              password="pw" if username else None, ca_file=em.ca_file)
    return SalesforceClient(config, ICAL_FIELD, sleep=sleeps.append)


def test_oauth_flows_and_a_refused_login(sf_em: SalesforceEmulator) -> None:
    assert sf_client(sf_em, []).login().sf_instance == sf_em.url.removeprefix("https://")
    assert sf_client(sf_em, [], username="sync@contoso.com").login() is not None
    with pytest.raises(SalesforceAuthError, match="invalid_client"):
        sf_client(sf_em, [], secret="nope").login()


def test_soql_paging_watermark_and_limit_header(sf_em: SalesforceEmulator) -> None:
    client = sf_client(sf_em, [])
    pages = list(client.changed_since(None))
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [r["Subject"] for p in pages for r in p] == [f"Call {i}" for i in range(1, 6)]
    later = list(client.changed_since("2026-11-20T09:03:00.000+0000"))
    assert [r["Subject"] for p in later for r in p] == ["Call 3", "Call 4", "Call 5"]
    usage = client.call(lambda sf: sf.api_usage)
    assert usage["api-usage"].used > 0 and usage["api-usage"].total == 15000
    with pytest.raises(SalesforceMalformedRequest, match="INVALID_FIELD"):
        client.call(lambda sf: sf.query("SELECT Id, Nope__c FROM Event"))


def test_writes_bump_systemmodstamp_and_deletes_are_reported(
        sf_em: SalesforceEmulator) -> None:
    client = sf_client(sf_em, [])
    event_id = sf_em.all("Event")[0]["Id"]
    before = sf_em.get("Event", event_id)
    client.update("Event", event_id, {"Location": "Room 1"})
    after = client.get_event(event_id)
    assert before is not None and after is not None and after["Location"] == "Room 1"
    assert after["SystemModstamp"] > before["SystemModstamp"]
    assert client.delete("Event", event_id) is True
    assert client.delete("Event", event_id) is False  # a retried delete finds it gone
    gone = client.deleted(NOW - timedelta(days=1), NOW + timedelta(minutes=1))
    assert [d["id"] for d in gone] == [event_id]
    assert [(w["method"], w["path"].rsplit("/", 1)[-1]) for w in sf_em.writes] == [
        ("PATCH", event_id), ("DELETE", event_id)]


def test_a_classic_weekly_master_generates_its_occurrences(sf_em: SalesforceEmulator) -> None:
    client = sf_client(sf_em, [])
    master = client.create("Event", {
        "Subject": "Forecast", "StartDateTime": "2026-11-23T17:00:00Z",
        "EndDateTime": "2026-11-23T17:30:00Z", "OwnerId": USER_IDS[ALICE],
        ICAL_FIELD: "UID-1", "IsRecurrence": True, "RecurrenceType": "RecursWeekly",
        "RecurrenceInterval": 1, "RecurrenceDayOfWeekMask": 2 | 16,
        "RecurrenceStartDateTime": "2026-11-23T17:00:00Z",
        "RecurrenceEndDateOnly": "2026-12-03", "RecurrenceTimeZoneSidKey": "America/New_York"})
    children = sorted((e for e in sf_em.all("Event") if e["RecurrenceActivityId"] == master
                       and e["Id"] != master), key=lambda e: e["StartDateTime"])
    assert [c["StartDateTime"] for c in children] == [
        "2026-11-23T17:00:00.000+0000", "2026-11-26T17:00:00.000+0000",
        "2026-11-30T17:00:00.000+0000", "2026-12-03T17:00:00.000+0000"]
    assert {c[ICAL_FIELD] for c in children} == {"UID-1"}
    client.update("Event", master, {"Location": "Room 7"})
    assert {c["Location"] for c in sf_em.all("Event") if c["RecurrenceActivityId"] == master
            } == {"Room 7"}  # Salesforce overwrites every occurrence
    found = client.find_by_marker("UID-1")
    assert len(found) == 5
    with pytest.raises(SalesforceMalformedRequest, match="REQUIRED_FIELD_MISSING"):
        client.create("Event", {"Subject": "x", "StartDateTime": "2026-11-23T17:00:00Z",
                                "EndDateTime": "2026-11-23T17:30:00Z", "IsRecurrence": True})


def test_an_expired_session_is_renewed(sf_em: SalesforceEmulator) -> None:
    client = sf_client(sf_em, [])
    client.login()
    sf_em.at(sf_em.expire_tokens, path="/query/")
    assert len([r for p in client.changed_since(None) for r in p]) == 5
    assert client.logins == 2
    assert any(s == 401 for _, _, s in sf_em.requests)


def test_request_limit_backs_off_then_gives_up(sf_em: SalesforceEmulator) -> None:
    sleeps: list[float] = []
    client = sf_client(sf_em, sleeps)
    sf_em.request_limit(times=2)
    assert client.get_event(sf_em.all("Event")[0]["Id"]) is not None
    assert sleeps == [1.0, 2.0] and client.limited == 2
    sf_em.request_limit(times=10)
    with pytest.raises(RequestLimitExceeded, match="request limit"):
        client.get_event(sf_em.all("Event")[0]["Id"])


def test_query_more_cut_mid_body_is_retried(sf_em: SalesforceEmulator) -> None:
    sleeps: list[float] = []
    client = sf_client(sf_em, sleeps)
    fault = sf_em.drop(50, path=r"/query/01g")
    assert len([r for p in client.changed_since(None) for r in p]) == 5
    assert fault.used == 1 and sleeps == [1.0]
