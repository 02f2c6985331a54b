"""Wire translation, grounded in the public sample payloads of ``shared/fixtures``.

What a user would notice: a real Graph or Salesforce payload lands as the
right domain values (ids, UTC times, zones, series shape), a payload the
ledger cannot key is refused with the field named, and what the sync writes
reads back as what it meant.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.feed.envelopes import FeedError, envelope, parse_line, read_feed
from adapters.graph import wire as graph_wire
from adapters.salesforce import soql
from adapters.salesforce import wire as salesforce_wire
from adapters.wire import WireError, utc_iso
from ledger.observations import ExchangeItemGone, ExchangeItemSeen, SalesforceEventGone
from tests.conftest import FIXTURES

AT = "2026-11-20T09:00:00Z"


def fixture(path: str) -> Any:
    return orjson.loads((FIXTURES / path).read_bytes())


def seen(payload: dict[str, Any], mailbox: str = "joni@contoso.onmicrosoft.com"
         ) -> ExchangeItemSeen:
    obs = graph_wire.to_observation(payload, mailbox, AT)
    assert isinstance(obs, ExchangeItemSeen)
    return obs


def test_a_graph_series_master_from_the_docs() -> None:
    master = fixture("graph/group_list_events_seriesmaster.json")["value"][0]
    obs = seen(master)
    assert obs.item_type == "master" and obs.series_master_id is None
    assert obs.ical_uid == master["iCalUId"] and obs.version == master["changeKey"]
    assert (obs.start, obs.end) == ("2017-08-14T21:00:00Z", "2017-08-14T22:00:00Z")
    assert obs.last_modified is not None and obs.last_modified.startswith("2017-09-06T04:29:38.")
    assert obs.time_zone == "Eastern Standard Time"
    assert obs.recurrence is not None
    assert obs.recurrence["days_of_week"] == ["monday", "wednesday", "friday"]
    assert obs.recurrence["end_date"] is None  # "noEnd" with the 0001-01-01 server default
    assert obs.recurrence["day_of_month"] is None and obs.recurrence["month"] is None
    assert "jonis@contoso.onmicrosoft.com" in {a.email for a in obs.attendees}
    assert obs.location == "HR Taskforce / Facilities" and obs.is_organizer


def test_graph_instances_from_the_docs_are_occurrences_of_their_master() -> None:
    rows = fixture("graph/event_list_instances_response.json")["value"]
    kinds = [seen(r).item_type for r in rows]
    assert kinds == ["exception", "occurrence", "occurrence", "occurrence"]
    first = seen(rows[1])
    assert first.series_master_id == "AAMkAGUzYRgWAAA="
    assert first.occurrence_start == first.start == "2019-04-08T20:30:00Z"
    assert first.version.startswith("sha1:")  # no changeKey selected: versioned by content


def test_graph_removed_entries_keep_deleted_and_out_of_view_apart() -> None:
    page = fixture("graph/delta_calendarview_nextround_with_removed.json")["value"]
    gone = graph_wire.to_observation(page[0], "a@contoso.com", AT)
    assert isinstance(gone, ExchangeItemGone) and gone.reason == "deleted"
    moved = graph_wire.to_observation({"id": "X", "@removed": {"reason": "changed"}},
                                      "a@contoso.com", AT)
    assert isinstance(moved, ExchangeItemGone) and moved.reason == "not-visible"


def test_a_delta_item_without_its_icaluid_is_refused_naming_the_field() -> None:
    item = fixture("graph/delta_calendarview_page1_nextlink.json")["value"][0]
    line = envelope("graph.event", AT, item, mailbox="samanthab@contoso.onmicrosoft.com")
    with pytest.raises(FeedError) as err:
        parse_line(line)
    assert err.value.field == "payload.iCalUId" and err.value.item_id == item["id"]


def test_times_in_other_zones_become_utc_and_graph_zone_aliases_are_understood() -> None:
    master = fixture("graph/group_list_events_seriesmaster.json")["value"][0]
    local = {**master, "start": {"dateTime": "2026-11-24T09:00:00.0000000",
                                 "timeZone": "Pacific Standard Time"},
             "originalStartTimeZone": "tzone://Microsoft/Utc"}
    obs = seen(local)
    assert obs.start == "2026-11-24T17:00:00Z" and obs.time_zone == "UTC"
    custom = seen({**master, "originalStartTimeZone": "tzone://Microsoft/Custom"})
    assert custom.time_zone == "tzone://Microsoft/Custom"
    with pytest.raises(WireError) as err:
        seen({**master, "end": {"dateTime": "2026-11-24T09:00:00", "timeZone": "Mars/Olympus"}})
    assert err.value.field == "end.timeZone"


def test_occurrence_stubs_are_filled_from_their_master_in_the_same_file(tmp_path: Path
                                                                        ) -> None:
    master = fixture("graph/group_list_events_seriesmaster.json")["value"][0]
    stub = {"id": "OCC1", "type": "occurrence", "seriesMasterId": master["id"],
            "start": {"dateTime": "2017-08-16T21:00:00.0000000", "timeZone": "UTC"},
            "end": {"dateTime": "2017-08-16T22:00:00.0000000", "timeZone": "UTC"}}
    mailbox = "joni@contoso.onmicrosoft.com"
    feed = tmp_path / "f.jsonl"
    feed.write_bytes(envelope("graph.event", AT, master, mailbox=mailbox) + b"\n\n"
                     + envelope("graph.event", AT, stub, mailbox=mailbox) + b"\n")
    (_, _, first), (line_no, raw, second) = list(read_feed(feed))
    assert line_no == 3 and b'"OCC1"' in raw  # blank lines keep the numbering honest
    assert isinstance(second, ExchangeItemSeen) and isinstance(first, ExchangeItemSeen)
    assert second.subject == "New Training Plans" and second.organizer == first.organizer
    assert second.item_type == "occurrence" and second.recurrence is None
    assert second.occurrence_start == "2017-08-16T21:00:00Z"
    assert second.ical_uid is None  # occurrences are keyed through their master


def test_salesforce_get_deleted_from_the_docs() -> None:
    body = fixture("salesforce/get_deleted_response.json")
    entry = body["deletedRecords"][0]
    # The docs' example lists a custom object (key prefix a00): not an Event, so refused.
    with pytest.raises(WireError, match=r"^id: .*not an Event Id"):
        salesforce_wire.deleted_to_observation(entry, AT)
    gone = salesforce_wire.deleted_to_observation({**entry, "id": "00U5e000000AbCdEAK"}, AT)
    assert isinstance(gone, SalesforceEventGone)
    assert gone.event_id == "00U5e000000AbCdEAK" and gone.deleted_at == "2013-05-07T22:07:19Z"


def event_record(**fields: Any) -> dict[str, Any]:
    base = {"attributes": {"type": "Event", "url": "/services/data/v59.0/sobjects/Event/x"},
            "Id": "00U5e000000AbCd", "Subject": "Demo", "SystemModstamp":
            "2026-11-20T09:00:00.000+0000", "StartDateTime": "2026-11-24T17:00:00.000+0000",
            "EndDateTime": "2026-11-24T18:00:00.000+0000", "IsRecurrence": False,
            "RecurrenceActivityId": None, "IsRecurrence2": False, "OwnerId": "0055e000001AbCd"}
    return {**base, **fields}


def test_salesforce_ids_are_normalised_and_series_shapes_told_apart() -> None:
    single = salesforce_wire.to_observation(event_record(), None, AT)
    assert single.event_id == "00U5e000000AbCdEAK" and single.invitees is None
    assert single.owner_id == "0055e000001AbCdAAK" and single.start == "2026-11-24T17:00:00Z"
    master = salesforce_wire.to_observation(event_record(
        IsRecurrence=True, RecurrenceActivityId="00U5e000000AbCdEAK",
        RecurrenceType="RecursWeekly", RecurrenceDayOfWeekMask=42), [], AT)
    assert master.is_series_master and master.series_id is None  # its own id is no series
    assert master.recurrence is not None and master.recurrence["day_of_week_mask"] == 42
    child = salesforce_wire.to_observation(event_record(
        Id="00U5e000000AbCe", RecurrenceActivityId="00U5e000000AbCd"), [], AT)
    assert child.series_id == "00U5e000000AbCdEAK"
    rrule = "RRULE:FREQ=WEEKLY;INTERVAL=1;BYDAY=MO,TU,WE,TH,FR"
    lightning = salesforce_wire.to_observation(event_record(
        IsRecurrence2=True, Recurrence2PatternText=rrule), None, AT)
    assert lightning.is_lightning_series and lightning.recurrence == {"rrule": rrule}


def test_event_relations_become_invitees_but_related_to_records_do_not() -> None:
    rels = [{"RelationId": "0055e000001BcDe", "Status": "Accepted", "IsInvitee": True,
             "IsWhat": False},
            {"RelationId": "0015e000004AbCd", "IsInvitee": False, "IsWhat": True}]
    obs = salesforce_wire.to_observation(event_record(), rels, AT)
    assert obs.invitees is not None
    assert [(i.relation_id, i.status) for i in obs.invitees] == [("0055e000001BcDeAAK",
                                                                  "Accepted")]


def test_a_bad_salesforce_id_is_named() -> None:
    with pytest.raises(WireError) as err:
        salesforce_wire.to_observation(event_record(WhatId="not-an-id"), None, AT)
    assert err.value.field == "WhatId"


def test_soql_id_lists_refuse_anything_but_ids() -> None:
    assert soql.soql_id_list(["00U5e000000AbCd", "00U5e000000AbCdEAK"]) == \
        "('00U5e000000AbCd','00U5e000000AbCdEAK')"
    for bad in (["x') OR Id != ('"], ["00U5e000000AbC'"], []):
        with pytest.raises(ValueError):
            soql.soql_id_list(bad)


def test_what_the_sync_writes_reads_back_as_what_it_meant() -> None:
    master = fixture("graph/group_list_events_seriesmaster.json")["value"][0]
    recurrence = seen(master).recurrence
    body = salesforce_wire.fields_to_salesforce(
        {"subject": "Plans", "start": "2017-08-14T21:00:00Z", "end": "2017-08-14T22:00:00Z",
         "recurrence": recurrence, "time_zone": "America/New_York", "ical_marker": "UID1"},
        marker_field="Ical__c")
    assert body["RecurrenceType"] == "RecursWeekly"
    assert body["RecurrenceDayOfWeekMask"] == 2 + 8 + 32  # Mon, Wed, Fri (Sun=1 ... Sat=64)
    assert body["StartDateTime"] == "2017-08-14T21:00:00Z" and body["Ical__c"] == "UID1"
    graph = graph_wire.observation_fields_to_graph(
        {"subject": "Contract", "start": "2026-12-02T20:00:00Z", "end": "2026-12-02T21:00:00Z",
         "salesforce_marker": "00U5e000000AbCdEAK", "categories": ["Error"]})
    back = seen({**graph, "id": "NEW", "iCalUId": "UID2", "type": "singleInstance"})
    assert back.salesforce_marker == "00U5e000000AbCdEAK" and back.categories == ("Error",)
    assert (back.start, back.end) == ("2026-12-02T20:00:00Z", "2026-12-02T21:00:00Z")


@pytest.mark.parametrize(("line", "field", "says"), [
    (b'{"kind":"graph.event","observed_at":"2026-11-20T09:00:00","mailbox":"a@b.c",'
     b'"payload":{"id":"X"}}', "observed_at", "no zone"),
    (b'{"kind":"graph.event","observed_at":"2026-11-20T09:00:00Z","mailbox":"a@b.c",'
     b'"payload":{"id":"X"},"extra":1}', "extra", "unknown envelope key"),
    (b'{"kind":"outlook.event","observed_at":"2026-11-20T09:00:00Z","payload":{}}', "kind",
     "unknown kind"),
    (b'{"kind":"sidebar.save","observed_at":"2026-11-20T09:00:00Z","mailbox":"a@b.c",'
     b'"payload":{"itemId":"X","whatId":"0065e0\'"}}', "payload.whatId", "not a Salesforce Id"),
    (b'{"kind":"salesforce.event","observed_at":"2026-11-20T09:00:00Z","payload":'
     b'{"Id":"00U5e000000AbCd","SystemModstamp":"yesterday"}}', "payload.SystemModstamp",
     "not an ISO-8601 time"),
])
def test_feed_errors_name_the_field(line: bytes, field: str, says: str) -> None:
    with pytest.raises(FeedError) as err:
        parse_line(line)
    assert err.value.field == field and says in str(err.value)


def test_the_stub_filler_keeps_a_bounded_number_of_masters() -> None:
    """A feed of any length is read in constant memory: old masters are dropped first."""
    from adapters.feed.envelopes import StubFiller

    master = fixture("graph/group_list_events_seriesmaster.json")["value"][0]
    fill = StubFiller(limit=2)
    for n in range(5):
        fill(envelope("graph.event", AT, {**master, "id": f"M{n}"}, mailbox="a@b.c"))
    assert [key[1] for key in fill.masters] == ["M3", "M4"]
    stub = {"id": "OCC", "type": "occurrence", "seriesMasterId": "M4",
            "start": {"dateTime": "2017-08-16T21:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2017-08-16T22:00:00", "timeZone": "UTC"}}
    filled = orjson.loads(fill(envelope("graph.event", AT, stub, mailbox="a@b.c")))
    assert filled["payload"]["subject"] == "New Training Plans"
    dropped = envelope("graph.event", AT, {**stub, "seriesMasterId": "M0"}, mailbox="a@b.c")
    assert fill(dropped) == dropped



@given(when=st.datetimes(min_value=datetime(1000, 1, 2), max_value=datetime(9999, 12, 30),
                         timezones=st.sampled_from([UTC, timezone(timedelta(hours=-11)),
                                                    timezone(timedelta(hours=5, minutes=45))])))
def test_every_time_is_written_in_the_one_ledger_format(when: datetime) -> None:
    """``utc_iso`` takes a fast path; its text is the documented format for any time:
    UTC, seconds, a six-digit fraction only when there is one, ``Z``; and it is the
    same instant."""
    utc = when.astimezone(UTC)
    fraction = f".{utc.microsecond:06d}" if utc.microsecond else ""
    text = utc_iso(when)
    assert text == (f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T{utc.hour:02d}:"
                    f"{utc.minute:02d}:{utc.second:02d}{fraction}Z")
    assert datetime.fromisoformat(text) == when
