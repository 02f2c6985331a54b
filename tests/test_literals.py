"""Values from outside inside a query or a URL: one escaping helper each, tested end to end.

The production clients run against the emulators; a value full of quotes,
backslashes and newlines finds exactly the record that holds it, and an id
cannot leave its path segment.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from adapters.graph.odata import odata_string
from adapters.salesforce.soql import soql_id_list, soql_string
from adapters.sandbox.graph_emulator import GraphEmulator
from adapters.sandbox.org import ALICE, BOB, ICAL_FIELD
from adapters.sandbox.salesforce_emulator import SalesforceEmulator
from adapters.wire import path_segment
from tests.test_emulators import clock, graph_client, sf_client

HOSTILE = ["it's", "back\\slash", 'dq"x', "line\nbreak", "tab\tx", "' OR Id != '",
           "\\' OR Id != \\'", "%2F..%2F", "\u202eevil", "x" * 2000]


def test_soql_and_odata_literals_escape_what_would_end_them() -> None:
    assert soql_string("it's \\ \"x\"\n") == "'it\\'s \\\\ \\\"x\\\"\\n'"
    assert odata_string("it's") == "'it''s'"
    assert soql_id_list(["00U5e000000AbCd"]) == "('00U5e000000AbCd')"
    assert path_segment("../Account/x?y#z%") == "..%2FAccount%2Fx%3Fy%23z%25"


@pytest.fixture
def sf_em() -> Iterator[SalesforceEmulator]:
    with SalesforceEmulator([], clock=clock) as em:
        yield em


def test_a_hostile_marker_finds_only_its_own_event(sf_em: SalesforceEmulator) -> None:
    client = sf_client(sf_em, [])
    made = {value: client.create("Event", {
        "Subject": "x", "StartDateTime": "2026-11-24T10:00:00Z",
        "EndDateTime": "2026-11-24T11:00:00Z", ICAL_FIELD: value}) for value in HOSTILE}
    for value, event_id in made.items():
        assert [r["Id"] for r in client.find_by_marker(value)] == [event_id], value
    assert client.find_by_marker("' OR Name != '") == []


@pytest.fixture
def graph_em() -> Iterator[GraphEmulator]:
    with GraphEmulator({ALICE: [], BOB: []}, clock=clock) as em:
        yield em


def test_a_hostile_property_value_finds_only_its_own_item(graph_em: GraphEmulator) -> None:
    client = graph_client(graph_em, [])
    prop = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name SyncLedgerSalesforceId"
    made = {}
    for value in HOSTILE[:7]:
        made[value] = client.create_event(BOB, {
            "subject": "x", "start": {"dateTime": "2026-12-01T10:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2026-12-01T11:00:00", "timeZone": "UTC"},
            "singleValueExtendedProperties": [{"id": prop, "value": value}]})["id"]
    for value, event_id in made.items():
        assert [e["id"] for e in client.find_by_property(BOB, prop, value)] == [event_id]


def test_an_id_never_leaves_its_path_segment(graph_em: GraphEmulator,
                                             sf_em: SalesforceEmulator) -> None:
    assert graph_client(graph_em, []).get_event(BOB, "../../users/alice@x/events/1") is None
    assert graph_em.requests[-1][1].startswith("/v1.0/users/bob%40contoso.com/events/..%2F")
    client = sf_client(sf_em, [])
    assert client.delete("Event", "../EventRelation/0RE5e0000000001GAA") is False
    assert sf_em.requests[-1][:2] == (
        "DELETE", "/services/data/v59.0/sobjects/Event/..%2FEventRelation%2F0RE5e0000000001GAA")
