"""Ids from outside are checked where they enter (README, "Security")."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.feed.envelopes import FeedError, envelope, parse_line
from adapters.graph import ids as graph_ids
from adapters.graph import wire as graph_wire
from adapters.salesforce import ids as sf_ids
from adapters.salesforce import soql
from adapters.salesforce import wire as salesforce_wire
from adapters.wire import WireError
from ledger.identity import salesforce_id18
from ledger.observations import ExchangeItemSeen

AT = "2026-11-20T09:00:00Z"
EVENT = salesforce_id18("00U5e000000AbCd")
ACCOUNT = salesforce_id18("0015e0000000001")
MARKER = graph_wire.marker_property_id()


def graph_event(**fields: Any) -> dict[str, Any]:
    base = {"id": "AAMkAGI2TG93AAA=", "type": "singleInstance", "iCalUId": "uid-1",
            "subject": "Demo", "changeKey": "ck1",
            "start": {"dateTime": "2026-11-24T17:00:00.0000000", "timeZone": "UTC"},
            "end": {"dateTime": "2026-11-24T18:00:00.0000000", "timeZone": "UTC"},
            "organizer": {"emailAddress": {"address": "a@x.com", "name": "A"}}}
    return {**base, **fields}


def sf_event(**fields: Any) -> dict[str, Any]:
    base = {"attributes": {"type": "Event"}, "Id": EVENT, "Subject": "Demo",
            "SystemModstamp": "2026-11-20T09:00:00.000+0000"}
    return {**base, **fields}


@pytest.mark.parametrize("value, why", [
    (EVENT, None), (EVENT[:15], None), (EVENT[:15] + EVENT[15:].lower(), None),
    (EVENT[:17] + ("A" if EVENT[17] != "A" else "B"), "case checksum"),
    (ACCOUNT, "not an Event Id"), ("../Account/0015e0000000001AAA", "not a Salesforce Id"),
    ("00U5e000000AbC", "not a Salesforce Id"), ("00U5e000000AbCd%2F", "not a Salesforce Id"),
    (18, "expected a Salesforce Id string"),
])
def test_an_event_id_is_15_or_18_characters_with_its_checksum_and_prefix(
        value: Any, why: str | None) -> None:
    problem = sf_ids.id_problem(value, prefix=sf_ids.EVENT_PREFIX)
    assert (problem is None) if why is None else (why in str(problem))


@given(st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
               min_size=15, max_size=15))
@settings(max_examples=60)
def test_every_15_character_id_has_one_valid_18_character_form(short: str) -> None:
    long = salesforce_id18(short)
    assert sf_ids.checked_id(long, "Id") == long == sf_ids.checked_id(short, "Id")
    for wrong in {c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345" if c != long[17]}:
        assert not sf_ids.is_id(long[:17] + wrong)


@pytest.mark.parametrize("value", ["", "a/b", "a?b", "a#b", "a\x00b", "a\nb", "a\x85b", "a%2Fb",
                                   "it's", 'a"b', "a\\b", "a b", "rtl\u200f", "\u202eevil",
                                   "x" * (graph_ids.MAX_LENGTH + 1), None, 7])
def test_a_graph_id_is_one_path_segment(value: Any) -> None:
    assert not graph_ids.is_id(value)
    assert graph_ids.is_id("AAMkAGI2TG93AAA=") and graph_ids.is_id("AAMk-_+=.x..c")


@pytest.mark.parametrize("payload, field", [
    (graph_event(id="../../users/x"), "id"),
    (graph_event(type="occurrence", seriesMasterId="m?x", iCalUId=None), "seriesMasterId"),
    (graph_event(singleValueExtendedProperties=[
        {"id": MARKER, "value": "../Account/0015e0000000001AAA"}]),
     "singleValueExtendedProperties[0].value"),
    (graph_event(singleValueExtendedProperties=[{"id": MARKER, "value": ACCOUNT}]),
     "singleValueExtendedProperties[0].value"),
])
def test_a_graph_payload_with_a_bad_id_is_refused_naming_the_field(
        payload: dict[str, Any], field: str) -> None:
    with pytest.raises(WireError) as caught:
        graph_wire.to_observation(payload, "a@x.com", AT)
    assert caught.value.field == field


def test_a_valid_marker_links_in_its_18_character_form() -> None:
    obs = graph_wire.to_observation(graph_event(singleValueExtendedProperties=[
        {"id": MARKER, "value": EVENT[:15]}]), "a@x.com", AT)
    assert isinstance(obs, ExchangeItemSeen) and obs.salesforce_marker == EVENT


@pytest.mark.parametrize("record, relations, field", [
    (sf_event(Id=ACCOUNT), None, "Id"),
    (sf_event(RecurrenceActivityId="../EventRelation/0RE5e0000000001GAA"), None,
     "RecurrenceActivityId"),
    (sf_event(RecurrenceActivityId=ACCOUNT), None, "RecurrenceActivityId"),
    (sf_event(WhatId="006'; DELETE"), None, "WhatId"),
    (sf_event(WhoId="003x"), None, "WhoId"),
    (sf_event(OwnerId="005/../x"), None, "OwnerId"),
    (sf_event(), [{"RelationId": "0055e000001AbCd/x"}], "relations[0].RelationId"),
    (sf_event(), [{"Id": "0RE?", "RelationId": "0055e000001AbCd"}], "relations[0].Id"),
    (sf_event(), [{"EventId": ACCOUNT, "RelationId": "0055e000001AbCd"}],
     "relations[0].EventId"),
])
def test_a_salesforce_record_with_a_bad_id_is_refused_naming_the_field(
        record: dict[str, Any], relations: Any, field: str) -> None:
    with pytest.raises(WireError) as caught:
        salesforce_wire.to_observation(record, relations, AT)
    assert caught.value.field == field


def test_feed_lines_with_bad_ids_are_refused_naming_the_field() -> None:
    cases = [
        (envelope("salesforce.deleted", AT, {"id": "../Account/0015e0000000001AAA"}),
         "payload.id"),
        (envelope("sidebar.save", AT, {"itemId": "a/b"}, mailbox="a@x.com"), "payload.itemId"),
        (envelope("sidebar.save", AT, {"itemId": "ok", "whatId": "0065e000003XyZaAAA"},
                  mailbox="a@x.com"), "payload.whatId"),
    ]
    for line, field in cases:
        with pytest.raises(FeedError) as caught:
            parse_line(line)
        assert caught.value.field == field


def test_soql_id_lists_take_ids_only() -> None:
    assert soql.soql_id_list([EVENT]) == f"('{EVENT}')"
    for bad in (["x') OR Id != ('"], [ACCOUNT[:17] + "Q"], []):
        with pytest.raises(ValueError):
            soql.soql_id_list(bad)
