"""Generated feeds for the order-independence property (tests/test_parking.py).

Three shapes of story, built with the sandbox's own payload builders:

- ``series``: a weekly Outlook series master with its occurrences and one
  exception, optionally a later version of the master;
- ``saved``: a single Outlook item (an attendee copy or the organizer's), a
  sidebar save of it, optionally a later version of the item;
- ``sf``: an Event made in Salesforce by a product user (down-synced), its
  deletion, optionally a later version before the deletion;
- ``undeleted``: as ``sf``, then the Event undeleted from the recycle bin (a version
  stamped after the deletion, in the Event's stream: read first, the deletion must not
  delete it);
- ``marker``: an Event made in Salesforce and the Outlook copy the sync made of
  it (carrying our marker), optionally a later version of the copy; the copy
  follows the Event it was made from (one stream).

A line belongs to one *stream*: an Outlook item's versions (one mailbox, one
id), a Salesforce Event's versions, a sidebar save, a Salesforce deletion (read
with ``getDeleted``, apart from the Events). A delivery keeps each stream's own
order and may put the streams in any order and repeat any line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from adapters.sandbox.org import (
    ALICE,
    BOB,
    CAROL,
    _at,
    _graph_id,
    _sf_id,
    graph_event,
    sf_event,
    weekly,
)
from tests.scenarios import ORG

Line = dict[str, Any]
DAYS = ["2026-11-23", "2026-11-30", "2026-12-07", "2026-12-14"]
PEOPLE = (ALICE, BOB, CAROL)


@dataclass(frozen=True)
class Story:
    shape: str  # series | saved | sf | undeleted | marker
    n: int  # which one (ids and subjects follow from it)
    owner: int  # index into PEOPLE
    later: bool  # a later version of the master / item / Event


def settings_line() -> Line:
    return {"kind": "org.settings", "observed_at": _at(0), "payload": ORG}


def lines_of(story: Story) -> list[tuple[str, Line]]:
    """(stream, line) of one story, in the order a clean delivery has them."""
    owner = PEOPLE[story.owner]
    name = f"{story.shape}{story.n}"
    minute = 10 + 10 * story.n
    out: list[tuple[str, Line]] = []

    def graph(at: int, mailbox: str, event: dict[str, Any], stream: str | None = None
              ) -> None:
        out.append((stream or f"ex|{mailbox}|{event['id']}",
                    {"kind": "graph.event", "observed_at": _at(at), "mailbox": mailbox,
                     "payload": event}))

    if story.shape == "series":
        base = dict(subject=f"Series {story.n}", organizer=owner, attendees=(owner, ALICE),
                    location="Room 4")
        rec = weekly(DAYS[0], ["monday"], len(DAYS))
        master = dict(**base, kind="seriesMaster", start=f"{DAYS[0]}T17:00:00",
                      end=f"{DAYS[0]}T17:30:00", recurrence=rec)
        graph(minute, owner, graph_event(owner, name, **master))  # type: ignore[arg-type]
        for i, d in enumerate(DAYS):
            exception = i == 2
            start = f"{d}T18:00:00" if exception else f"{d}T17:00:00"
            graph(minute + 1, owner, graph_event(
                owner, name, **{**base, "location": "Room 7" if exception else "Room 4"},  # type: ignore[arg-type]
                kind="exception" if exception else "occurrence", master=name, start=start,
                end=start[:11] + ("18:30:00" if exception else "17:30:00"),
                original_start=f"{d}T17:00:00"))
        if story.later:
            graph(minute + 5, owner, graph_event(
                owner, name, **{**master, "location": "Room 9"},  # type: ignore[arg-type]
                revision=1, modified=_at(minute + 5).replace("Z", ".0000000Z")))
    elif story.shape == "saved":
        organizer = PEOPLE[(story.owner + 1) % len(PEOPLE)]
        item = dict(subject=f"Review {story.n}", start="2026-11-26T17:00:00",
                    end="2026-11-26T18:00:00", organizer=organizer,
                    attendees=(organizer, owner, "dave@fabrikam.com"))
        graph(minute, owner, graph_event(owner, name, **item))  # type: ignore[arg-type]
        out.append((f"save|{owner}|{name}", {
            "kind": "sidebar.save", "observed_at": _at(minute + 1), "mailbox": owner,
            "payload": {"itemId": _graph_id(owner, name)}}))
        if story.later:
            graph(minute + 5, owner, graph_event(
                owner, name, **{**item, "location": "Board room"},  # type: ignore[arg-type]
                revision=1, modified=_at(minute + 5).replace("Z", ".0000000Z")))
    elif story.shape == "marker":
        n = 700 + story.n
        record = sf_event(n, subject=f"Made in Salesforce {story.n}",
                          start="2026-12-04T20:00:00", end="2026-12-04T21:00:00", owner=owner,
                          modstamp=_stamp(minute))
        out.append((f"sf|{record['Id']}", {"kind": "salesforce.event",
                                           "observed_at": _at(minute), "payload": record}))
        copy = dict(subject=f"Made in Salesforce {story.n}", start="2026-12-04T20:00:00",
                    end="2026-12-04T21:00:00", organizer=owner, attendees=(owner,),
                    marker=record["Id"])
        # The copy is made from the Event: one stream (seen first, a down-synced copy
        # would open a meeting keyed by its iCalUId, not the Event's: README, "Order").
        stream = f"sf|{record['Id']}"
        graph(minute + 2, owner, graph_event(owner, name, **copy), stream)
        if story.later:
            graph(minute + 5, owner, graph_event(
                owner, name, **{**copy, "location": "Teams"},
                revision=1, modified=_at(minute + 5).replace("Z", ".0000000Z")), stream)
    else:
        n = 500 + story.n
        record = sf_event(n, subject=f"Made in Salesforce {story.n}",
                          start="2026-12-03T20:00:00", end="2026-12-03T21:00:00", owner=owner,
                          modstamp=_stamp(minute))
        stream = f"sf|{record['Id']}"
        out.append((stream, {"kind": "salesforce.event", "observed_at": _at(minute),
                             "payload": record}))
        if story.later:
            out.append((stream, {"kind": "salesforce.event", "observed_at": _at(minute + 5),
                                 "payload": {**record, "Location": "Fabrikam HQ",
                                             "SystemModstamp": _stamp(minute + 5),
                                             "LastModifiedDate": _stamp(minute + 5)}}))
        out.append((f"deleted|{record['Id']}", {
            "kind": "salesforce.deleted", "observed_at": _at(minute + 8),
            "payload": {"id": _sf_id("00U", n), "deletedDate": _at(minute + 7)}}))
        if story.shape == "undeleted":  # as it was last, stamped anew
            last = out[-2][1]["payload"]
            out.append((stream, {"kind": "salesforce.event", "observed_at": _at(minute + 9),
                                 "payload": {**last, "SystemModstamp": _stamp(minute + 9),
                                             "LastModifiedDate": _stamp(minute + 9)}}))
    return out


def _stamp(minute: int) -> str:
    return _at(minute).replace("Z", ".000+0000")


def clean(stories: list[Story]) -> list[tuple[str, Line]]:
    """Every story's lines, story after story."""
    return [pair for story in stories for pair in lines_of(story)]


def deliver(lines: list[tuple[str, Line]], picks: list[int], repeats: list[tuple[int, int]]
            ) -> list[Line]:
    """The lines with the streams merged in the order ``picks`` chooses (each stream's
    own order kept), then ``repeats`` (from, to): line ``from`` delivered again, ``to``
    lines later (a redelivery comes after the first delivery, never before)."""
    queues: dict[str, list[Line]] = {}
    for stream, line in lines:
        queues.setdefault(stream, []).append(line)
    out: list[Line] = []
    i = 0
    while queues:
        names = sorted(queues)
        pick = names[picks[i % len(picks)] % len(names)] if picks else names[0]
        i += 1
        out.append(queues[pick].pop(0))
        if not queues[pick]:
            del queues[pick]
    for src, dst in repeats:
        if out:
            at = src % len(out)
            out.insert(at + 1 + dst % (len(out) - at), out[at])
    return out


def jsonl(lines: list[Line]) -> bytes:
    return b"".join(orjson.dumps(line) + b"\n" for line in lines)
