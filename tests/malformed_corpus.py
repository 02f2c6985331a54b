"""A corpus of malformed feed lines, each with the field a quarantine row must name.

Each case takes a valid line (a Graph single item, a Graph series master, a
Salesforce Event with relations, a getDeleted entry, a sidebar save, a settings
change), breaks one field (a wrong JSON type, text the ledger cannot hold, a
time outside the years it can hold) and says which field path the quarantine
row must name. ``tests/test_reliability.py`` and ``scripts/malformed.py`` use it.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson

from adapters.sandbox.org import (
    ALICE,
    BOB,
    _graph_id,
    _sf_id,
    graph_event,
    relation,
    sf_event,
    weekly,
)
from ledger.store import Store

AT = "2026-11-20T09:00:00Z"
FAR = "9999-12-31T23:59:59-14:00"
#: A marker for "drop this key".
DROP = object()


def _bases() -> dict[str, dict[str, Any]]:
    single = graph_event(ALICE, "corpus-single", subject="Corpus", organizer=ALICE,
                         attendees=(ALICE, BOB), start="2026-11-24T17:00:00",
                         end="2026-11-24T18:00:00", body="Agenda", location="Room 1")
    master = graph_event(ALICE, "corpus-series", subject="Weekly", organizer=ALICE,
                         attendees=(ALICE,), kind="seriesMaster", start="2026-11-23T17:00:00",
                         end="2026-11-23T17:30:00",
                         recurrence=weekly("2026-11-23", ["monday"], 4))
    event = sf_event(9001, subject="Corpus SF", start="2026-11-25T10:00:00",
                     end="2026-11-25T11:00:00", owner=ALICE,
                     modstamp="2026-11-19T08:00:00.000+0000")
    return {
        "graph": {"kind": "graph.event", "observed_at": AT, "mailbox": ALICE, "payload": single},
        "master": {"kind": "graph.event", "observed_at": AT, "mailbox": ALICE, "payload": master},
        "sf": {"kind": "salesforce.event", "observed_at": AT, "payload": event,
               "relations": [relation(event["Id"], BOB, 9001)]},
        "sfdel": {"kind": "salesforce.deleted", "observed_at": AT,
                  "payload": {"id": _sf_id("00U", 9002), "deletedDate": AT}},
        "save": {"kind": "sidebar.save", "observed_at": AT, "mailbox": ALICE,
                 "payload": {"itemId": _graph_id(ALICE, "corpus-single")}},
        "settings": {"kind": "org.settings", "observed_at": AT,
                     "payload": {"sync_private_items": False}},
        "removed": {"kind": "graph.event", "observed_at": AT, "mailbox": ALICE,
                    "payload": {"id": _graph_id(ALICE, "corpus-single"),
                                "@removed": {"reason": "deleted"}}},
    }


#: (base, where (dotted; [n] for list items), value, field the quarantine row must name)
CASES: list[tuple[str, str, Any, str]] = [
    # the envelope
    ("graph", "observed_at", 5, "observed_at"),
    ("graph", "observed_at", "tomorrow", "observed_at"),
    ("graph", "observed_at", "2026-11-20T09:00:00", "observed_at"),
    ("graph", "observed_at", FAR, "observed_at"),
    ("graph", "observed_at", "0001-01-01T00:00:00+01:00", "observed_at"),
    ("graph", "mailbox", 5, "mailbox"),
    ("graph", "mailbox", "nobody", "mailbox"),
    ("graph", "mailbox", "al\x00ice@contoso.com", "mailbox"),
    ("graph", "kind", "graph.events", "kind"),
    ("graph", "kind", 1, "kind"),
    ("graph", "extra", 1, "extra"),
    ("graph", "payload", DROP, "payload"),
    # a Graph item
    ("graph", "payload", "event", "payload"),
    ("graph", "payload.id", 5, "payload.id"),
    ("graph", "payload.id", "AAMk\x00x", "payload.id"),
    ("graph", "payload.subject", 5, "payload.subject"),
    ("graph", "payload.subject", ["a"], "payload.subject"),
    ("graph", "payload.subject", {"a": 1}, "payload.subject"),
    ("graph", "payload.subject", "bad\x00text", "payload.subject"),
    ("graph", "payload.subject", "bad\x07bell", "payload.subject"),
    ("graph", "payload.body", "just text", "payload.body"),
    ("graph", "payload.body", 5, "payload.body"),
    ("graph", "payload.body.content", 5, "payload.body.content"),
    ("graph", "payload.body.content", ["x"], "payload.body.content"),
    ("graph", "payload.body.contentType", 1, "payload.body.contentType"),
    ("graph", "payload.body.contentType", "rtf", "payload.body.contentType"),
    ("graph", "payload.location", "Room 1", "payload.location"),
    ("graph", "payload.location.displayName", 3, "payload.location.displayName"),
    ("graph", "payload.isAllDay", "yes", "payload.isAllDay"),
    ("graph", "payload.isAllDay", 1, "payload.isAllDay"),
    ("graph", "payload.isCancelled", "no", "payload.isCancelled"),
    ("graph", "payload.isOrganizer", "true", "payload.isOrganizer"),
    ("graph", "payload.sensitivity", 1, "payload.sensitivity"),
    ("graph", "payload.categories", "red", "payload.categories"),
    ("graph", "payload.categories", [1], "payload.categories[0]"),
    ("graph", "payload.attendees", "bob", "payload.attendees"),
    ("graph", "payload.attendees[0]", "bob", "payload.attendees[0]"),
    ("graph", "payload.attendees[0].status", "accepted", "payload.attendees[0].status"),
    ("graph", "payload.attendees[0].status.response", 1,
     "payload.attendees[0].status.response"),
    ("graph", "payload.attendees[0].emailAddress", "bob@x", "payload.attendees[0]"),
    ("graph", "payload.attendees[0].emailAddress.address", 5,
     "payload.attendees[0].emailAddress.address"),
    ("graph", "payload.attendees[1].emailAddress.name", True,
     "payload.attendees[1].emailAddress.name"),
    ("graph", "payload.organizer", "alice", "payload.organizer"),
    ("graph", "payload.organizer.emailAddress.name", 1, "payload.organizer.emailAddress.name"),
    ("graph", "payload.start", "2026-11-24T17:00:00", "payload.start"),
    ("graph", "payload.start.dateTime", 5, "payload.start.dateTime"),
    ("graph", "payload.start.dateTime", "24/11/2026", "payload.start.dateTime"),
    ("graph", "payload.start.timeZone", 5, "payload.start.timeZone"),
    ("graph", "payload.start.timeZone", "Mars Standard Time", "payload.start.timeZone"),
    ("graph", "payload.end.dateTime", "9999-12-31T23:59:59.0000000", "payload.end.dateTime"),
    ("graph", "payload.end.dateTime", "0001-01-01T00:00:00", "payload.end.dateTime"),
    ("graph", "payload.iCalUId", 5, "payload.iCalUId"),
    ("graph", "payload.iCalUId", "0400\x00BAD", "payload.iCalUId"),
    ("graph", "payload.iCalUId", "0400\nBAD", "payload.iCalUId"),
    ("graph", "payload.iCalUId", DROP, "payload.iCalUId"),
    ("graph", "payload.changeKey", 5, "payload.changeKey"),
    ("graph", "payload.lastModifiedDateTime", "yesterday", "payload.lastModifiedDateTime"),
    ("graph", "payload.lastModifiedDateTime", 5, "payload.lastModifiedDateTime"),
    ("graph", "payload.lastModifiedDateTime", FAR, "payload.lastModifiedDateTime"),
    ("graph", "payload.originalStartTimeZone", 5, "payload.originalStartTimeZone"),
    ("graph", "payload.type", 5, "payload.type"),
    ("graph", "payload.type", "weird", "payload.type"),
    ("graph", "payload.singleValueExtendedProperties", "x",
     "payload.singleValueExtendedProperties"),
    ("removed", "payload.@removed", "yes", "payload.@removed"),
    ("removed", "payload.@removed", True, "payload.@removed"),
    ("removed", "payload.@removed.reason", 5, "payload.@removed.reason"),
    # a Graph series master's recurrence
    ("master", "payload.recurrence", "weekly", "payload.recurrence"),
    ("master", "payload.recurrence.pattern", [], "payload.recurrence.pattern"),
    ("master", "payload.recurrence.range", "numbered", "payload.recurrence.range"),
    ("master", "payload.recurrence.pattern.daysOfWeek", "monday",
     "payload.recurrence.pattern.daysOfWeek"),
    ("master", "payload.recurrence.pattern.daysOfWeek", [1],
     "payload.recurrence.pattern.daysOfWeek[0]"),
    ("master", "payload.recurrence.pattern.interval", "two",
     "payload.recurrence.pattern.interval"),
    ("master", "payload.recurrence.pattern.interval", True,
     "payload.recurrence.pattern.interval"),
    ("master", "payload.recurrence.pattern.type", 1, "payload.recurrence.pattern.type"),
    ("master", "payload.recurrence.pattern.dayOfMonth", "1",
     "payload.recurrence.pattern.dayOfMonth"),
    ("master", "payload.recurrence.pattern.month", "1", "payload.recurrence.pattern.month"),
    ("master", "payload.recurrence.pattern.index", 1, "payload.recurrence.pattern.index"),
    ("master", "payload.recurrence.pattern.firstDayOfWeek", 0,
     "payload.recurrence.pattern.firstDayOfWeek"),
    ("master", "payload.recurrence.range.type", 1, "payload.recurrence.range.type"),
    ("master", "payload.recurrence.range.startDate", 20261123,
     "payload.recurrence.range.startDate"),
    ("master", "payload.recurrence.range.startDate", "soon",
     "payload.recurrence.range.startDate"),
    ("master", "payload.recurrence.range.numberOfOccurrences", "4",
     "payload.recurrence.range.numberOfOccurrences"),
    ("master", "payload.recurrence.range.recurrenceTimeZone", 1,
     "payload.recurrence.range.recurrenceTimeZone"),
    # a Salesforce Event and its relations
    ("sf", "payload", [], "payload"),
    ("sf", "payload.Id", 5, "payload.Id"),
    ("sf", "payload.Subject", 5, "payload.Subject"),
    ("sf", "payload.Subject", "a\x00b", "payload.Subject"),
    ("sf", "payload.Description", [], "payload.Description"),
    ("sf", "payload.Location", {}, "payload.Location"),
    ("sf", "payload.IsAllDayEvent", "false", "payload.IsAllDayEvent"),
    ("sf", "payload.IsPrivate", "no", "payload.IsPrivate"),
    ("sf", "payload.IsRecurrence", "yes", "payload.IsRecurrence"),
    ("sf", "payload.IsRecurrence2", 1, "payload.IsRecurrence2"),
    ("sf", "payload.StartDateTime", "soon", "payload.StartDateTime"),
    ("sf", "payload.EndDateTime", 5, "payload.EndDateTime"),
    ("sf", "payload.EndDateTime", FAR, "payload.EndDateTime"),
    ("sf", "payload.SystemModstamp", "x", "payload.SystemModstamp"),
    ("sf", "payload.SystemModstamp", DROP, "payload.SystemModstamp"),
    ("sf", "payload.WhatId", 5, "payload.WhatId"),
    ("sf", "payload.OwnerId", "bad", "payload.OwnerId"),
    ("sf", "payload.RecurrenceTimeZoneSidKey", 5, "payload.RecurrenceTimeZoneSidKey"),
    ("sf", "payload.SyncLedger_ICalUId__c", 5, "payload.SyncLedger_ICalUId__c"),
    ("sf", "payload.SyncLedger_ICalUId__c", "04\x00x", "payload.SyncLedger_ICalUId__c"),
    ("sf", "relations", "x", "relations"),
    ("sf", "relations[0]", "x", "relations[0]"),
    ("sf", "relations[0].IsInvitee", "no", "relations[0].IsInvitee"),
    ("sf", "relations[0].IsWhat", "false", "relations[0].IsWhat"),
    ("sf", "relations[0].Status", 1, "relations[0].Status"),
    ("sf", "relations[0].RelationId", 5, "relations[0].RelationId"),
    # a getDeleted entry, a sidebar save, a settings change
    ("sfdel", "payload.id", 5, "payload.id"),
    ("sfdel", "payload.deletedDate", "x", "payload.deletedDate"),
    ("sfdel", "payload.deletedDate", FAR, "payload.deletedDate"),
    ("save", "payload.itemId", 5, "payload.itemId"),
    ("save", "payload.whatId", "x", "payload.whatId"),
    ("settings", "payload.sync_private_items", "yes", "payload.sync_private_items"),
    ("settings", "payload.product_users", [], "payload.product_users"),
    ("settings", "payload.org_domains", "contoso.com", "payload.org_domains"),
]

#: Classic recurrence cases need a recurring Salesforce record as their base.
_RECURRING_SF = [
    ("payload.RecurrenceInterval", "two"), ("payload.RecurrenceDayOfWeekMask", "2"),
    ("payload.RecurrenceType", 1), ("payload.RecurrenceEndDateOnly", 5),
]


def _set(line: dict[str, Any], where: str, value: Any) -> None:
    parts: list[str | int] = []
    for part in where.split("."):
        while "[" in part:
            head, _, rest = part.partition("[")
            if head:
                parts.append(head)
            index, _, part = rest.partition("]")
            parts.append(int(index))
        if part:
            parts.append(part)
    target: Any = line
    for step in parts[:-1]:
        target = target[step]
    if value is DROP:
        del target[parts[-1]]
    else:
        target[parts[-1]] = value


def corpus() -> list[tuple[bytes, str, str]]:
    """(line, what was broken, field the quarantine row must name), one per case."""
    bases = _bases()
    out = []
    for base, where, value, field in CASES:
        line = copy.deepcopy(bases[base])
        _set(line, where, value)
        out.append((orjson.dumps(line), f"{base}: {where} = {value!r}", field))
    for where, value in _RECURRING_SF:
        line = copy.deepcopy(bases["sf"])
        line["payload"].update({"IsRecurrence": True, "RecurrenceType": "RecursWeekly",
                                "RecurrenceInterval": 1, "RecurrenceDayOfWeekMask": 2})
        _set(line, where, value)
        out.append((orjson.dumps(line), f"sf recurring: {where} = {value!r}", where))
    # an unpaired surrogate can only be written as a JSON escape
    good = orjson.dumps(bases["graph"])
    out.append((good.replace(b'"subject":"Corpus"', b'"subject":"Cor\\ud800pus"'),
                "graph: payload.subject with an unpaired surrogate", "payload.subject"))
    return out


def run_corpus(store: Store, tmp: Path) -> dict[str, Any]:
    """Ingest every case (after a valid settings line); how each was handled."""
    from adapters.feed.ingest import ingest_files

    cases = corpus()
    controls = tmp / "controls.jsonl"  # the unbroken lines: every one must be taken
    controls.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in _bases().values()))
    control = ingest_files(store, [controls], show_progress=False, in_child=False)
    feed = tmp / "malformed.jsonl"
    feed.write_bytes(orjson.dumps(_bases()["settings"]) + b"\n"
                     + b"".join(line + b"\n" for line, _, _ in cases))
    ingest_files(store, [feed], show_progress=False, in_child=False)
    rows = {r["line_no"]: r for r in store.quarantined() if r["source"] == feed.name}
    right, wrong_field, accepted = [], [], []
    for n, (_, what, field) in enumerate(cases, start=2):
        row = rows.get(n)
        if row is None:
            accepted.append(what)
        elif row["field"] == field:
            right.append(what)
        else:
            wrong_field.append(f"{what}: named {row['field']!r}, expected {field!r} "
                               f"({row['error']})")
    return {"controls": control.read, "controls_quarantined": control.quarantined,
            "tried": len(cases), "quarantined_right_field": len(right),
            "quarantined_other_field": wrong_field, "accepted_wrongly": accepted}
