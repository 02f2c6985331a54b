"""The sandbox org: a small, realistic org whose calendars hit every rule.

Used three ways: ``syncledger demo`` ingests its feed (raw Graph and
Salesforce payloads in the DOMAIN.md §6 envelope), ``syncledger sync
--sandbox`` seeds the local emulators with the same calendars, and the tests
build scenarios from it. Payloads are shaped like the public samples in
``shared/fixtures`` (Graph v1.0 ``event``, SOQL ``Event`` records).

People (org domain contoso.com): alice, bob and carol use the sync; erin is
in the org but does not; dave@fabrikam.com is external. In Salesforce, dave,
nina and omar (Northwind) are Contacts, lena (Litware) is a Lead, and
pat@tailspin.com matches nobody: the demo's unresolved attendee.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from ledger.identity import salesforce_id18

ORG_DOMAIN = "contoso.com"
ALICE, BOB, CAROL = "alice@contoso.com", "bob@contoso.com", "carol@contoso.com"
ERIN, DAVE = "erin@contoso.com", "dave@fabrikam.com"
NINA, OMAR, LENA, PAT = ("nina@northwind.com", "omar@northwind.com", "lena@litware.com",
                         "pat@tailspin.com")
#: Ids are real 18-character Ids (checksum suffix included), so 15-character look-ups work.
USER_IDS = {ALICE: salesforce_id18("0055e000001AbCd"), BOB: salesforce_id18("0055e000001BcDe"),
            CAROL: salesforce_id18("0055e000001CdEf")}
NAMES = {ALICE: "Alice Adams", BOB: "Bob Brown", CAROL: "Carol Chen", ERIN: "Erin Evans",
         DAVE: "Dave Dunn", NINA: "Nina Novak", OMAR: "Omar Ortiz", LENA: "Lena Lund",
         PAT: "Pat Park"}
#: Salesforce Contacts and Leads (email -> (type, Id)); pat@tailspin.com is in neither.
CUSTOMERS = {DAVE: ("Contact", salesforce_id18("0035e000002DaVe")),
             NINA: ("Contact", salesforce_id18("0035e000002NiNa")),
             OMAR: ("Contact", salesforce_id18("0035e000002OmAr")),
             LENA: ("Lead", salesforce_id18("00Q5e000001LeNa"))}
MARKER_PROPERTY = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name SyncLedgerSalesforceId"
ICAL_FIELD = "SyncLedger_ICalUId__c"
START = datetime(2026, 11, 20, 9, 0)  # the feed's first observation (a Friday)


def _at(minutes: int) -> str:
    return (START + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _graph_id(mailbox: str, name: str) -> str:
    raw = hashlib.sha256(f"{mailbox}/{name}".encode()).digest()[:30]
    return "AAMkAG" + base64.b64encode(raw).decode().replace("/", "-").replace("+", "_")


def _ical(name: str) -> str:
    digest = hashlib.sha256(name.encode()).hexdigest().upper()[:32]
    return "040000008200E00074C5B7101A82E00800000000" + digest


def _change_key(seed: str) -> str:
    return base64.b64encode(hashlib.sha256(seed.encode()).digest()[:18]).decode()


def _sf_id(prefix: str, n: int) -> str:
    return salesforce_id18(f"{prefix}5e000{n:07d}")


def _dt(value: str) -> dict[str, str]:
    return {"dateTime": value + ".0000000", "timeZone": "UTC"}


def graph_event(
    mailbox: str, name: str, *, subject: str, start: str, end: str, organizer: str,
    attendees: tuple[str, ...] = (), kind: str = "singleInstance", master: str | None = None,
    sensitivity: str = "normal", all_day: bool = False, zone: str = "Pacific Standard Time",
    recurrence: dict[str, Any] | None = None, body: str = "", location: str = "",
    modified: str = "2026-11-19T08:00:00.0000000Z", revision: int = 0,
    original_start: str | None = None, categories: tuple[str, ...] = (),
    marker: str | None = None, cancelled: bool = False, ical: str | None = None,
    responses: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A Graph v1.0 event as calendarView/delta returns it (Prefer: ImmutableId)."""
    instance = name if master is None else f"{name}/{original_start or start}"
    item_id = _graph_id(mailbox, instance)
    ck = _change_key(f"{mailbox}/{instance}/{revision}")
    event: dict[str, Any] = {
        "@odata.type": "#microsoft.graph.event",
        "@odata.etag": f'W/"{ck}"',
        "id": item_id,
        "createdDateTime": "2026-11-01T08:00:00.0000000Z",
        "lastModifiedDateTime": modified,
        "changeKey": ck,
        "categories": list(categories),
        "originalStartTimeZone": zone,
        "originalEndTimeZone": zone,
        "iCalUId": ical or _ical(name if master is None else f"{name}/{start}"),
        "reminderMinutesBeforeStart": 15,
        "isReminderOn": True,
        "subject": subject,
        "bodyPreview": body[:255],
        "importance": "normal",
        "sensitivity": sensitivity,
        "isAllDay": all_day,
        "isCancelled": cancelled,
        "isOrganizer": mailbox == organizer,
        "responseRequested": True,
        "seriesMasterId": _graph_id(mailbox, master) if master else None,
        "showAs": "busy",
        "type": kind,
        "responseStatus": {"response": "organizer" if mailbox == organizer else "accepted",
                           "time": "0001-01-01T00:00:00Z"},
        "body": {"contentType": "html",
                 "content": f"<html><body><div>{body}</div></body></html>" if body else ""},
        "start": _dt(start),
        "end": _dt(end),
        "location": {"displayName": location, "locationType": "default"},
        "recurrence": recurrence,
        "attendees": [
            {"type": "required",
             "status": {"response": (responses or {}).get(
                 a, "accepted" if a != organizer else "none"),
                        "time": "2026-11-02T10:00:00.0000000Z"},
             "emailAddress": {"name": NAMES.get(a, a), "address": a}}
            for a in attendees
        ],
        "organizer": {"emailAddress": {"name": NAMES.get(organizer, organizer),
                                       "address": organizer}},
    }
    if original_start is not None:
        event["originalStart"] = original_start + "Z"
    if marker is not None:
        event["singleValueExtendedProperties"] = [{"id": MARKER_PROPERTY, "value": marker}]
    return event


def weekly(first_day: str, days: list[str], count: int, zone: str = "Pacific Standard Time"
           ) -> dict[str, Any]:
    return {"pattern": {"type": "weekly", "interval": 1, "month": 0, "dayOfMonth": 0,
                        "daysOfWeek": days, "firstDayOfWeek": "sunday", "index": "first"},
            "range": {"type": "numbered", "startDate": first_day, "endDate": "0001-01-01",
                      "recurrenceTimeZone": zone, "numberOfOccurrences": count}}


def sf_event(
    n: int, *, subject: str, start: str, end: str, owner: str, modstamp: str,
    ical: str | None = None, series: str | None = None, master: bool = False,
    lightning: str | None = None, all_day: bool = False, description: str = "",
    location: str = "", what_id: str | None = None,
) -> dict[str, Any]:
    """A SOQL Event record (with ``attributes``) as simple-salesforce returns it."""
    event_id = _sf_id("00U", n)
    return {
        "attributes": {"type": "Event", "url": f"/services/data/v59.0/sobjects/Event/{event_id}"},
        "Id": event_id, "Subject": subject,
        "StartDateTime": start + ".000+0000", "EndDateTime": end + ".000+0000",
        "ActivityDate": start[:10], "DurationInMinutes": int(
            (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds() // 60),
        "IsAllDayEvent": all_day, "IsPrivate": False, "ShowAs": "Busy",
        "Description": description or None, "Location": location or None,
        "WhatId": what_id, "WhoId": None, "OwnerId": USER_IDS[owner],
        "IsChild": False, "IsGroupEvent": True,
        "IsRecurrence": master, "RecurrenceActivityId": series if series else (
            event_id if master else None),
        "RecurrenceType": "RecursWeekly" if master else None,
        "RecurrenceInterval": 1 if master else None,
        "RecurrenceDayOfWeekMask": 2 if master else None,
        "RecurrenceStartDateTime": (start + ".000+0000") if master else None,
        "RecurrenceEndDateOnly": None, "RecurrenceTimeZoneSidKey": (
            "America/Los_Angeles" if master else None),
        "IsRecurrence2": lightning is not None, "Recurrence2PatternText": lightning,
        "SystemModstamp": modstamp, "LastModifiedDate": modstamp, "IsDeleted": False,
        ICAL_FIELD: ical,
    }


def relation(event_id: str, user: str, n: int, status: str = "Accepted") -> dict[str, Any]:
    rel_id = _sf_id("0RE", n)
    return {"attributes": {"type": "EventRelation",
                           "url": f"/services/data/v59.0/sobjects/EventRelation/{rel_id}"},
            "Id": rel_id, "EventId": event_id, "RelationId": USER_IDS.get(user, user),
            "IsInvitee": True, "IsParent": False, "IsWhat": False, "Status": status}


def person_record(email: str) -> dict[str, Any]:
    """A User, Contact or Lead as the people look-up (``SELECT Id, Name, Email``) returns it."""
    kind, person_id = CUSTOMERS.get(email) or ("User", USER_IDS[email])
    return {"attributes": {"type": kind,
                           "url": f"/services/data/v59.0/sobjects/{kind}/{person_id}"},
            "Id": person_id, "Name": NAMES[email], "Email": email}


def people_records() -> list[dict[str, Any]]:
    """Everyone the sandbox Salesforce org holds: the product users and the customers."""
    return [person_record(e) for e in [*USER_IDS, *CUSTOMERS]]


@dataclass
class SandboxOrg:
    """The org's calendars and the order in which a sync first observed them."""

    feed: list[dict[str, Any]] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)  # which story each line belongs to
    group: str = "org"

    def _add(self, line: dict[str, Any]) -> None:
        self.feed.append(line)
        self.groups.append(self.group)

    def graph(self, minute: int, mailbox: str, event: dict[str, Any]) -> None:
        self._add({"kind": "graph.event", "observed_at": _at(minute),
                          "mailbox": mailbox, "payload": event})

    def removed(self, minute: int, mailbox: str, item_id: str) -> None:
        self._add({"kind": "graph.event", "observed_at": _at(minute), "mailbox": mailbox,
                          "payload": {"@odata.type": "#microsoft.graph.event", "id": item_id,
                                      "@removed": {"reason": "deleted"}}})

    def salesforce(self, minute: int, record: dict[str, Any],
                   relations: list[dict[str, Any]] | None = None) -> None:
        line: dict[str, Any] = {"kind": "salesforce.event", "observed_at": _at(minute),
                                "payload": record}
        if relations is not None:
            line["relations"] = relations
        self._add(line)

    def save(self, minute: int, mailbox: str, item_id: str, what_id: str | None = None) -> None:
        payload: dict[str, Any] = {"itemId": item_id}
        if what_id:
            payload["whatId"] = what_id
        self._add({"kind": "sidebar.save", "observed_at": _at(minute),
                          "mailbox": mailbox, "payload": payload})

    def person(self, minute: int, email: str) -> None:
        self._add({"kind": "salesforce.person", "observed_at": _at(minute),
                   "payload": person_record(email)})

    def settings(self, minute: int, **changes: Any) -> None:
        self._add({"kind": "org.settings", "observed_at": _at(minute), "payload": changes})

    def jsonl(self) -> bytes:
        return b"".join(orjson.dumps(line) + b"\n" for line in self.feed)


def build() -> SandboxOrg:
    """The demo org's history, one block per rule it demonstrates."""
    org = SandboxOrg()
    org.settings(0, org_domains=[ORG_DOMAIN], product_users=dict(USER_IDS),
                 sync_private_items=False)
    # What the people look-up found for the attendees below (pat@tailspin.com: nobody).
    for email in CUSTOMERS:
        org.person(0, email)

    org.group = "review"
    # attendee-before-organizer, then resolved: Bob saves Alice's review before she does.
    review = dict(subject="Quarterly pipeline review", start="2026-11-24T17:00:00",
                  end="2026-11-24T18:00:00", organizer=ALICE, attendees=(ALICE, BOB),
                  body="Walk through Q4 pipeline by region.", location="Board room")
    org.graph(1, BOB, graph_event(BOB, "review", **review))  # type: ignore[arg-type]
    org.save(2, BOB, _graph_id(BOB, "review"))
    org.graph(3, ALICE, graph_event(ALICE, "review", **review))  # type: ignore[arg-type]
    org.salesforce(20, sf_event(1, subject="Quarterly pipeline review",
                                start="2026-11-24T17:00:00", end="2026-11-24T18:00:00",
                                owner=ALICE, modstamp="2026-11-20T09:20:00.000+0000",
                                ical=_ical("review"), description="Walk through Q4 pipeline by "
                                "region.", location="Board room"),
                   [relation(_sf_id("00U", 1), BOB, 1)])

    org.group = "pricing"
    # attendee-before-organizer, still open: Carol's copy has not been seen yet.
    org.graph(4, BOB, graph_event(BOB, "pricing", subject="Pricing workshop",
                                  start="2026-11-26T16:00:00", end="2026-11-26T17:30:00",
                                  organizer=CAROL, attendees=(CAROL, BOB)))
    org.save(5, BOB, _graph_id(BOB, "pricing"))

    org.group = "intro"
    # organizer-not-user: an external organizer; Alice saves it against an opportunity.
    org.graph(6, ALICE, graph_event(ALICE, "intro", subject="Intro call with Fabrikam",
                                    start="2026-11-25T15:00:00", end="2026-11-25T15:30:00",
                                    organizer=DAVE, attendees=(DAVE, ALICE, ERIN)))
    org.save(7, ALICE, _graph_id(ALICE, "intro"), what_id="0065e000003XyZaAAK")

    org.group = "private"
    # private-item: Alice's private 1:1 is skipped, its content never stored.
    org.graph(8, ALICE, graph_event(ALICE, "private", subject="1:1 compensation talk",
                                    start="2026-11-23T18:00:00", end="2026-11-23T18:30:00",
                                    organizer=ALICE, attendees=(ALICE, ERIN),
                                    sensitivity="private", body="Salary review"))

    org.group = "offsite"
    # recurring-all-day: a weekly all-day series.
    org.graph(9, ALICE, graph_event(ALICE, "offsite", subject="Team offsite",
                                    start="2026-11-30T00:00:00", end="2026-12-01T00:00:00",
                                    organizer=ALICE, attendees=(ALICE, BOB), all_day=True,
                                    kind="seriesMaster",
                                    recurrence=weekly("2026-11-30", ["monday"], 4)))

    org.group = "apac"
    # unsupported-time-zone: Samoa has no Salesforce match.
    org.graph(10, ALICE, graph_event(ALICE, "apac", subject="APAC partner sync",
                                     start="2026-11-27T19:00:00", end="2026-11-27T20:00:00",
                                     organizer=ALICE, attendees=(ALICE, CAROL),
                                     zone="Samoa Standard Time"))

    org.group = "qbr"
    # recurrence-conversion: a synced single becomes a series.
    qbr = dict(subject="Customer QBR", start="2026-11-30T18:00:00", end="2026-11-30T19:00:00",
               organizer=ALICE, attendees=(ALICE, DAVE))
    org.graph(11, ALICE, graph_event(ALICE, "qbr", **qbr))  # type: ignore[arg-type]
    org.salesforce(21, sf_event(2, subject="Customer QBR", start="2026-11-30T18:00:00",
                                end="2026-11-30T19:00:00", owner=ALICE,
                                modstamp="2026-11-20T09:21:00.000+0000", ical=_ical("qbr")))
    org.graph(40, ALICE, graph_event(ALICE, "qbr", **qbr, kind="seriesMaster",  # type: ignore[arg-type]
                                     revision=1, modified="2026-11-20T09:40:00.0000000Z",
                                     recurrence=weekly("2026-11-30", ["monday"], 6)))

    org.group = "renewal"
    # Attendees related to Contacts: Alice's renewal call with Northwind (Nina is the
    # Event's Who, Omar declined) and a Tailspin guest who matches nobody (unresolved).
    org.graph(16, ALICE, graph_event(ALICE, "renewal", subject="Northwind renewal",
                                     start="2026-11-27T16:00:00", end="2026-11-27T17:00:00",
                                     organizer=ALICE, attendees=(ALICE, BOB, NINA, OMAR, PAT),
                                     responses={OMAR: "declined", PAT: "none"},
                                     location="Teams"))

    org.group = "litware"
    # A Lead as the Who: Bob's discovery call with Litware.
    org.graph(17, BOB, graph_event(BOB, "litware", subject="Litware discovery call",
                                   start="2026-11-30T21:00:00", end="2026-11-30T21:30:00",
                                   organizer=BOB, attendees=(BOB, LENA),
                                   responses={LENA: "tentativelyAccepted"}))

    org.group = "forecast"
    # series-master-update: a synced weekly series; its master changes on Nov 20.
    _weekly_forecast(org)

    org.group = "lightning"
    # lightning-recurrence: Bob's Lightning series stays in Salesforce.
    org.salesforce(24, sf_event(20, subject="Daily stand-up (Lightning)",
                                start="2026-11-23T16:00:00", end="2026-11-23T16:15:00",
                                owner=BOB, modstamp="2026-11-20T09:24:00.000+0000",
                                lightning="RRULE:FREQ=WEEKLY;INTERVAL=1;BYDAY=MO,TU,WE,TH,FR"))

    org.group = "boardprep"
    # series-master-overwrite: a Classic series in Salesforce synced to Carol's calendar.
    _board_prep(org)

    org.group = "contract"
    # Created in Salesforce by Bob: goes down to his Outlook calendar.
    org.salesforce(26, sf_event(30, subject="Contract signing", start="2026-12-02T20:00:00",
                                end="2026-12-02T21:00:00", owner=BOB,
                                modstamp="2026-11-20T09:26:00.000+0000",
                                location="Fabrikam HQ"))
    return org


def _weekly_forecast(org: SandboxOrg) -> None:
    days = ["2026-11-02", "2026-11-09", "2026-11-16", "2026-11-23", "2026-11-30", "2026-12-07"]
    base = dict(subject="Weekly forecast", organizer=ALICE, attendees=(ALICE, BOB, CAROL),
                location="Room 4")
    rec = weekly(days[0], ["monday"], len(days))
    org.graph(12, ALICE, graph_event(ALICE, "forecast", **base, kind="seriesMaster",  # type: ignore[arg-type]
                                     start=f"{days[0]}T17:00:00", end=f"{days[0]}T17:30:00",
                                     recurrence=rec))
    for d in days:
        org.graph(13, ALICE, graph_event(ALICE, "forecast", **base, kind="occurrence",  # type: ignore[arg-type]
                                         master="forecast", start=f"{d}T17:00:00",
                                         end=f"{d}T17:30:00", original_start=f"{d}T17:00:00"))
    ical = _ical("forecast")
    org.salesforce(22, sf_event(3, subject="Weekly forecast", start=f"{days[0]}T17:00:00",
                                end=f"{days[0]}T17:30:00", owner=ALICE, master=True,
                                modstamp="2026-11-20T09:22:00.000+0000", ical=ical,
                                location="Room 4"))
    for i, d in enumerate(days):
        org.salesforce(22, sf_event(4 + i, subject="Weekly forecast", start=f"{d}T17:00:00",
                                    end=f"{d}T17:30:00", owner=ALICE, series=_sf_id("00U", 3),
                                    modstamp="2026-11-20T09:22:00.000+0000", ical=ical,
                                    location="Room 4"))
    # Nov 20, 12:00 UTC: Alice moves the series to Room 9 and renames it.
    org.graph(180, ALICE, graph_event(ALICE, "forecast", **{**base, "location": "Room 9",  # type: ignore[arg-type]
                                                            "subject": "Weekly forecast (EMEA)"},
                                      kind="seriesMaster", start=f"{days[0]}T17:00:00",
                                      end=f"{days[0]}T17:30:00", recurrence=rec, revision=1,
                                      modified="2026-11-20T12:00:00.0000000Z"))


def _board_prep(org: SandboxOrg) -> None:
    days = ["2026-11-25", "2026-12-02", "2026-12-09"]
    ical = _ical("boardprep")
    master = sf_event(40, subject="Board prep", start=f"{days[0]}T22:00:00",
                      end=f"{days[0]}T23:00:00", owner=CAROL, master=True,
                      modstamp="2026-11-20T09:25:00.000+0000", ical=ical,
                      description="Draft deck", location="Room 2")
    base = dict(subject="Board prep", organizer=CAROL, attendees=(CAROL,), location="Room 2",
                body="Draft deck", ical=ical)
    org.graph(14, CAROL, graph_event(CAROL, "boardprep", **base, kind="seriesMaster",  # type: ignore[arg-type]
                                     start=f"{days[0]}T22:00:00", end=f"{days[0]}T23:00:00",
                                     recurrence=weekly(days[0], ["wednesday"], 3)))
    for i, d in enumerate(days):
        kind = "exception" if i == 1 else "occurrence"
        start = f"{d}T23:00:00" if kind == "exception" else f"{d}T22:00:00"
        org.graph(15, CAROL, graph_event(CAROL, "boardprep", **{**base, "ical": None},  # type: ignore[arg-type]
                                         kind=kind, master="boardprep", start=start,
                                         end=start[:11] + ("23:59:00" if i == 1 else "23:00:00"),
                                         original_start=f"{d}T22:00:00"))
    org.salesforce(25, master)
    for i, d in enumerate(days):
        org.salesforce(25, sf_event(41 + i, subject="Board prep", start=f"{d}T22:00:00",
                                    end=f"{d}T23:00:00", owner=CAROL, series=_sf_id("00U", 40),
                                    modstamp="2026-11-20T09:25:00.000+0000", ical=ical,
                                    description="Draft deck", location="Room 2"))
    # Carol edits the Salesforce master: new agenda, new room, linked to an account.
    org.salesforce(200, {**master, "Description": "Final deck and financials",
                         "Location": "Room 7", "WhatId": "0015e000004AbCdAAK",
                         "SystemModstamp": "2026-11-20T12:20:00.000+0000",
                         "LastModifiedDate": "2026-11-20T12:20:00.000+0000"})


def demo_feed() -> bytes:
    return build().jsonl()


def demo_feed_path() -> Path:
    """The bundled demo feed (written by ``python -m adapters.sandbox.org``)."""
    return Path(__file__).with_name("data") / "demo_feed.jsonl"


if __name__ == "__main__":  # regenerate the bundled feed: python -m adapters.sandbox.org
    target = demo_feed_path()
    target.write_bytes(demo_feed())
    print(f"wrote {target} ({len(build().feed)} observations)")
