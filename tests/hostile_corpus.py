"""A hostile corpus: quotes, backslashes, paths, escapes, NUL, newlines, bidi marks and
1 MB strings in every id and text field of Graph and Salesforce payloads.

Used by ``tests/test_hostile.py`` (through ``ingest`` and through a live sync
against the emulators) and ``scripts/hostile.py`` (prints the figures). An id
field must refuse every one of these values naming the field; a text field may
take it as data; nothing may crash, and no request may go anywhere but the
meeting's own Event, EventRelation or Graph event.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import orjson

from adapters.graph.wire import marker_property_id
from adapters.sandbox.cloud import SandboxCloud
from adapters.sandbox.org import ALICE, BOB, graph_event, sf_event
from ledger.store import Store
from tests.malformed_corpus import _bases, _set

MB = "x" * (1 << 20)
VALUES: list[str] = ["it's \"quoted\"", "back\\slash\\", "../Account/0015e0000000001AAK",
                     "..%2F..%2Fusers%2Fbob", "nul\x00byte", "line\nbreak",
                     "rtl\u200fmark\u202eevil", MB]
#: base, field path in the line, field the refusal must name
ID_FIELDS = [
    ("graph", "payload.id", "payload.id"),
    ("marked", "payload.singleValueExtendedProperties[0].value",
     "payload.singleValueExtendedProperties[0].value"),
    ("occurrence", "payload.seriesMasterId", "payload.seriesMasterId"),
    ("sf", "payload.Id", "payload.Id"),
    ("sf", "payload.RecurrenceActivityId", "payload.RecurrenceActivityId"),
    ("sf", "payload.WhatId", "payload.WhatId"), ("sf", "payload.WhoId", "payload.WhoId"),
    ("sf", "payload.OwnerId", "payload.OwnerId"),
    ("sf", "relations[0].RelationId", "relations[0].RelationId"),
    ("sf", "relations[0].Id", "relations[0].Id"),
    ("sf", "relations[0].EventId", "relations[0].EventId"),
    ("sfdel", "payload.id", "payload.id"),
    ("save", "payload.itemId", "payload.itemId"), ("save", "payload.whatId", "payload.whatId"),
]
TEXT_FIELDS = [
    ("graph", "payload.subject"), ("graph", "payload.body.content"),
    ("graph", "payload.location.displayName"), ("graph", "payload.iCalUId"),
    ("graph", "payload.attendees[0].emailAddress.name"),
    ("graph", "payload.changeKey"),
    ("sf", "payload.Subject"), ("sf", "payload.Description"), ("sf", "payload.Location"),
    ("sf", "payload.SyncLedger_ICalUId__c"),
]


def bases() -> dict[str, dict[str, Any]]:
    out = _bases()
    marked = copy.deepcopy(out["graph"])
    marked["payload"]["singleValueExtendedProperties"] = [
        {"id": marker_property_id(), "value": "x"}]
    out["marked"] = marked
    occurrence = copy.deepcopy(out["master"])
    occurrence["payload"].update({"id": "occ-1", "type": "occurrence", "recurrence": None,
                                  "seriesMasterId": out["master"]["payload"]["id"],
                                  "originalStart": "2026-11-30T17:00:00Z"})
    out["occurrence"] = occurrence
    out["sf"]["relations"][0]["EventId"] = out["sf"]["payload"]["Id"]
    return out


def corpus() -> list[tuple[bytes, str, str | None]]:
    """(line, what was set, field a refusal must name; None: text the ledger may take)."""
    all_bases = bases()
    out: list[tuple[bytes, str, str | None]] = []
    for base, where, field in ID_FIELDS:
        for value in VALUES:
            line = copy.deepcopy(all_bases[base])
            _set(line, where, value)
            out.append((orjson.dumps(line), f"{base}: {where} = {value[:30]!r}", field))
    for base, where in TEXT_FIELDS:
        for value in VALUES:
            line = copy.deepcopy(all_bases[base])
            _set(line, where, value)
            out.append((orjson.dumps(line), f"{base}: {where} = {value[:30]!r}", None))
    return out


def run_ingest(store: Store, tmp: Path) -> dict[str, Any]:
    """Ingest the master the occurrences need, then every case; how each was handled."""
    from adapters.feed.ingest import ingest_files

    cases = corpus()
    feed = tmp / "hostile.jsonl"
    feed.write_bytes(orjson.dumps(bases()["master"]) + b"\n"
                     + b"".join(line + b"\n" for line, _, _ in cases))
    result = ingest_files(store, [feed], show_progress=False, in_child=False)
    rows = {r["line_no"]: r for r in store.quarantined() if r["source"] == feed.name}
    named, wrong, accepted_ids, text_taken, text_refused = [], [], [], 0, []
    for n, (_, what, field) in enumerate(cases, start=2):
        row = rows.get(n)
        if field is None:
            if row is None:
                text_taken += 1
            elif row["field"] and what.split(" = ")[0].split(": ")[1] == row["field"]:
                text_refused.append(what)
            else:
                wrong.append(f"{what}: named {row['field']!r} ({row['error'][:80]})")
        elif row is None:
            accepted_ids.append(what)
        elif row["field"] == field:
            named.append(what)
        else:
            wrong.append(f"{what}: named {row['field']!r}, expected {field!r}")
    return {"lines_read": result.read, "tried": len(cases),
            "ids_tried": sum(1 for *_, f in cases if f is not None),
            "ids_refused_field_named": len(named), "ids_accepted": accepted_ids,
            "text_taken_as_data": text_taken, "text_refused_field_named": len(text_refused),
            "refused_naming_another_field": wrong}


# --- through a live sync ---------------------------------------------------------------

_ID = re.compile(r"^[A-Za-z0-9_\-=+.@]+$")


def seed_cloud(cloud: SandboxCloud) -> int:
    """Hostile items in Alice's calendar (auto-saved) and Bob's Salesforce (down-synced)."""
    n = 0
    for i, value in enumerate(VALUES):
        small = value if value is not MB else value[:300_000]
        items = [
            graph_event(ALICE, f"hostile-text-{i}", subject=small, body=small, location=small[:200],
                        organizer=ALICE, start="2026-11-24T10:00:00", end="2026-11-24T11:00:00",
                        ical=f"hostile-{i}-{small[:40]}"),
            {**graph_event(ALICE, f"hostile-id-{i}", subject="x", organizer=ALICE,
                           start="2026-11-24T12:00:00", end="2026-11-24T13:00:00"),
             "id": small},
            graph_event(ALICE, f"hostile-marker-{i}", subject="m", organizer=ALICE,
                        start="2026-11-24T14:00:00", end="2026-11-24T15:00:00", marker=small),
        ]
        for item in items:
            cloud.graph.put_event(ALICE, item)
        event = sf_event(800 + i, subject=small[:5000], description=small[:30000],
                         location=small[:200], start="2026-11-25T10:00:00",
                         end="2026-11-25T11:00:00", owner=BOB,
                         modstamp="2026-11-19T08:00:00.000+0000")
        cloud.salesforce.put("Event", event)
        n += len(items) + 1
    return n


def requests_outside(cloud: SandboxCloud) -> list[str]:
    """Requests to anything but the endpoints the sync reads and its meetings' own objects."""
    graph_ids = {e["id"] for m in cloud.mailboxes for e in cloud.graph.calendar(m)}
    sf_ids = {r["Id"] for s in ("Event", "EventRelation") for r in cloud.salesforce.all(s)}
    mailboxes = set(cloud.mailboxes)
    bad = []
    for method, target, _ in cloud.graph.requests:
        path = target.split("?")[0]
        parts = [p for p in path.split("/") if p]
        if parts[0] != "v1.0":
            continue  # the identity endpoints msal uses
        from urllib.parse import unquote
        segs = [unquote(p) for p in parts]
        ok = len(segs) >= 4 and segs[1] == "users" and segs[2] in mailboxes and (
            segs[3:] == ["calendarView", "delta"] or segs[3:] == ["events"]
            or (len(segs) == 5 and segs[3] == "events" and segs[4] in graph_ids
                | _created(cloud)))
        if not ok:
            bad.append(f"graph {method} {target[:120]}")
    for method, target, _ in cloud.salesforce.requests:
        path = target.split("?")[0].rstrip("/")
        parts = [p for p in path.split("/") if p]
        if parts[:2] != ["services", "data"]:
            continue  # the OAuth token endpoint
        rest = parts[3:]
        ok = rest[:1] == ["query"] or rest in (["sobjects", "Event"],
                                               ["sobjects", "EventRelation"],
                                               ["sobjects", "Event", "deleted"],
                                               ["sobjects", "Event", "updated"]) or (
            len(rest) == 3 and rest[1] in ("Event", "EventRelation") and rest[2] in sf_ids)
        if not ok:
            bad.append(f"salesforce {method} {target[:120]}")
    return bad


def _created(cloud: SandboxCloud) -> set[str]:
    return {str(w["path"]).rsplit("/", 1)[-1] for w in cloud.graph.writes}
