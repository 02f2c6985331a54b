"""Salesforce ``Event`` / ``EventRelation`` records <-> domain values.

The only module that knows Salesforce field names. Reading turns a SOQL
record (with ``attributes``) into a ``SalesforceEventSeen``, a getDeleted
entry into a ``SalesforceEventGone``; writing turns the plan's fields into a
REST body. Ids are always normalised to 18 characters, and validated before
they are put in SOQL, so nothing reaches a query that is not an Id.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from adapters.salesforce.ids import EVENT_PREFIX, checked_event_id, checked_id
from adapters.salesforce.soql import soql_string
from adapters.wire import WireError, flag, integer, opt_text, parse_instant, text
from ledger.observations import (
    PERSON_TYPES,
    Invitee,
    PersonSeen,
    SalesforceEventGone,
    SalesforceEventSeen,
)
from ledger.recurrence import DAY_NAMES, GRAPH_TYPES, MONTHS, is_classic, local

DEFAULT_MARKER_FIELD = "SyncLedger_ICalUId__c"
#: Classic recurrence fields, as the ledger keeps them (JSON-native, snake_case).
CLASSIC_RECURRENCE = {
    "RecurrenceType": "type", "RecurrenceInterval": "interval",
    "RecurrenceDayOfWeekMask": "day_of_week_mask", "RecurrenceDayOfMonth": "day_of_month",
    "RecurrenceInstance": "instance", "RecurrenceMonthOfYear": "month",
    "RecurrenceStartDateTime": "start", "RecurrenceEndDateOnly": "end_date",
    "RecurrenceTimeZoneSidKey": "time_zone",
}


def _opt_id(record: dict[str, Any], field: str, item_id: str | None, *,
            event: bool = False) -> str | None:
    value = record.get(field)
    if value is None or value == "":
        return None
    return checked_event_id(value, field, item_id) if event else \
        checked_id(value, field, item_id)


def _time(record: dict[str, Any], field: str, item_id: str | None) -> str | None:
    value = record.get(field)
    return None if value is None else parse_instant(value, field, item_id)


#: Classic recurrence fields that are numbers (the others are text; the start a time).
_CLASSIC_NUMBERS = frozenset({"RecurrenceInterval", "RecurrenceDayOfWeekMask",
                              "RecurrenceDayOfMonth"})


def _recurrence(record: dict[str, Any], item_id: str | None) -> dict[str, Any] | None:
    if flag(record, "IsRecurrence2", item_id):
        return {"rrule": opt_text(record, "Recurrence2PatternText", item_id)}
    if not flag(record, "IsRecurrence", item_id):
        return None
    out: dict[str, Any] = {}
    for field, name in CLASSIC_RECURRENCE.items():
        if field == "RecurrenceStartDateTime":
            out[name] = _time(record, field, item_id)
        elif field in _CLASSIC_NUMBERS:
            out[name] = integer(record, field, item_id)
        else:
            out[name] = opt_text(record, field, item_id)
    return out


def to_observation(
    record: Any, relations: Any, observed_at: str, *, marker_field: str = DEFAULT_MARKER_FIELD
) -> SalesforceEventSeen:
    """One Event record, with its EventRelation records when they were fetched."""
    if not isinstance(record, dict):
        raise WireError("payload", "expected a Salesforce Event record object")
    event_id = checked_event_id(record.get("Id"), "Id")
    item_id = event_id
    version = record.get("SystemModstamp")
    if version is None:
        raise WireError("SystemModstamp", "missing: needed to tell versions apart", item_id)
    series = _opt_id(record, "RecurrenceActivityId", item_id, event=True)
    is_master = flag(record, "IsRecurrence", item_id)
    invitees: tuple[Invitee, ...] | None = None
    if relations is not None:
        if not isinstance(relations, list):
            raise WireError("relations", "expected a list of EventRelation records", item_id)
        found = []
        for i, rel in enumerate(relations):
            if not isinstance(rel, dict):
                raise WireError(f"relations[{i}]", "expected an EventRelation record", item_id)
            for name in ("Id", "EventId"):  # checked, not kept
                if rel.get(name) not in (None, ""):
                    checked_id(rel[name], f"relations[{i}].{name}", item_id,
                               prefix=EVENT_PREFIX if name == "EventId" else None)
            if flag(rel, "IsWhat", item_id, at=f"relations[{i}]"):
                continue  # a "related to" record, not a person
            found.append(Invitee(relation_id=checked_id(rel.get("RelationId"),
                                                        f"relations[{i}].RelationId", item_id),
                                 status=text(rel, "Status", item_id, "New",
                                             at=f"relations[{i}]"),
                                 is_invitee=flag(rel, "IsInvitee", item_id, True,
                                                 at=f"relations[{i}]")))
        invitees = tuple(found)
    marker = opt_text(record, marker_field, item_id, is_id=True)
    return SalesforceEventSeen(
        observed_at=observed_at, event_id=event_id,
        series_id=series if series and series != event_id and not is_master else None,
        is_series_master=is_master,
        is_lightning_series=flag(record, "IsRecurrence2", item_id),
        recurrence=_recurrence(record, item_id),
        version=parse_instant(version, "SystemModstamp", item_id),
        subject=text(record, "Subject", item_id),
        description=text(record, "Description", item_id),
        location=text(record, "Location", item_id),
        what_id=_opt_id(record, "WhatId", item_id), who_id=_opt_id(record, "WhoId", item_id),
        owner_id=_opt_id(record, "OwnerId", item_id),
        start=_time(record, "StartDateTime", item_id), end=_time(record, "EndDateTime", item_id),
        is_all_day=flag(record, "IsAllDayEvent", item_id),
        is_private=flag(record, "IsPrivate", item_id),
        time_zone=text(record, "RecurrenceTimeZoneSidKey", item_id) or None,
        ical_marker=marker,
        invitees=invitees,
    )


def deleted_to_observation(payload: Any, observed_at: str) -> SalesforceEventGone:
    """A getDeleted entry ``{"id", "deletedDate"}``."""
    if not isinstance(payload, dict):
        raise WireError("payload", "expected {id, deletedDate}")
    event_id = checked_event_id(payload.get("id"), "id")
    deleted = payload.get("deletedDate")
    item_id = event_id
    return SalesforceEventGone(
        observed_at=observed_at, event_id=event_id,
        deleted_at=parse_instant(deleted, "deletedDate", item_id) if deleted is not None
        else observed_at)


def person_to_observation(record: Any, observed_at: str) -> PersonSeen:
    """A User, Contact or Lead record as the people look-up returned it (with
    ``attributes``, whose ``type`` says which)."""
    if not isinstance(record, dict):
        raise WireError("payload", "expected a User, Contact or Lead record object")
    raw_id = record.get("Id")
    item_id = raw_id if isinstance(raw_id, str) else None
    person_id = checked_id(raw_id, "Id", item_id)
    attributes = record.get("attributes")
    kind = attributes.get("type") if isinstance(attributes, dict) else None
    if kind not in PERSON_TYPES:
        raise WireError("attributes.type", f"{kind!r} is not one of {', '.join(PERSON_TYPES)}",
                        item_id)
    email = record.get("Email")
    if not isinstance(email, str) or "@" not in email:
        raise WireError("Email", f"{email!r} is not an email address", item_id)
    return PersonSeen(observed_at=observed_at, person_id=person_id, person_type=str(kind),
                      email=email.strip().lower(), name=text(record, "Name", item_id))


#: Key prefixes of the people an EventRelation can name (DOMAIN.md §12).
PERSON_PREFIXES = {"005": "User", "003": "Contact", "00Q": "Lead"}
PERSON_FIELDS = "Id, Name, Email"
_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+$")


def is_lookup_email(value: str) -> bool:
    """An address safe to put in a SOQL string literal (no quote, no backslash)."""
    return bool(_EMAIL.match(value)) and "'" not in value and "\\" not in value


def soql_email_list(emails: list[str]) -> str:
    """``('a@x.com','b@y.com')`` for a SOQL ``IN``; refuses anything that is not an address."""
    bad = [e for e in emails if not isinstance(e, str) or not is_lookup_email(e)]
    if bad or not emails:
        raise ValueError(f"not email addresses: {bad!r}" if bad else "no emails given")
    return "(" + ",".join(soql_string(e) for e in emails) + ")"


# --- writing ------------------------------------------------------------------


def _sf_time(value: str) -> str:
    return datetime.fromisoformat(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def _classic(rec: dict[str, Any], start: str | None, zone: str | None) -> dict[str, Any]:
    """Salesforce Classic recurrence fields for a ledger recurrence (DOMAIN.md §11).

    From an Exchange series the ledger has decided, before this write, that Classic
    can hold it (``recurrence-unrepresentable``) and its ``end_date`` (the Nth
    occurrence of a numbered range, the last one kept under the occurrence caps)."""
    if is_classic(rec):  # already Classic (a Salesforce-side series)
        return {field: rec.get(name) for field, name in CLASSIC_RECURRENCE.items()
                if rec.get(name) is not None}
    known = GRAPH_TYPES.get(str(rec.get("type")))
    if known is None:
        return {}
    freq, kind = known
    days = [d for d in rec.get("days_of_week") or [] if d in DAY_NAMES]
    out: dict[str, Any] = {"IsRecurrence": True, "RecurrenceType": kind,
                           "RecurrenceTimeZoneSidKey": zone or "UTC"}
    if start:
        out["RecurrenceStartDateTime"] = _sf_time(start)
    if rec.get("end_date"):
        out["RecurrenceEndDateOnly"] = rec["end_date"]
    if freq != "yearly":  # yearly Classic series have no interval
        out["RecurrenceInterval"] = int(rec.get("interval") or 1)
    if kind in ("RecursWeekly", "RecursMonthlyNth", "RecursYearlyNth"):
        out["RecurrenceDayOfWeekMask"] = sum(1 << DAY_NAMES.index(d) for d in days)
    if kind in ("RecursMonthlyNth", "RecursYearlyNth"):
        out["RecurrenceInstance"] = str(rec.get("index") or "first").capitalize()
    if start and kind in ("RecursMonthly", "RecursYearly", "RecursYearlyNth"):
        first = local(start, zone)
        if kind != "RecursYearlyNth":
            out["RecurrenceDayOfMonth"] = int(rec.get("day_of_month") or first.day)
        if freq == "yearly":
            out["RecurrenceMonthOfYear"] = MONTHS[int(rec.get("month") or first.month) - 1]
    return out


_PLAIN = {"subject": "Subject", "description": "Description", "location": "Location",
          "owner_id": "OwnerId", "what_id": "WhatId", "who_id": "WhoId",
          "is_all_day": "IsAllDayEvent", "is_private": "IsPrivate"}


def fields_to_salesforce(fields: dict[str, Any], *, marker_field: str = DEFAULT_MARKER_FIELD
                         ) -> dict[str, Any]:
    """A planned write's fields (domain names) as an Event REST body."""
    body: dict[str, Any] = {}
    for name, value in fields.items():
        if name in _PLAIN:
            body[_PLAIN[name]] = value
        elif name == "body":
            body["Description"] = value
        elif name in ("start", "end") and value:
            body["StartDateTime" if name == "start" else "EndDateTime"] = _sf_time(value)
        elif name == "ical_marker" and value:
            body[marker_field] = value
    rec = fields.get("recurrence")
    if rec:
        body.update(_classic(rec, fields.get("start"), fields.get("time_zone")))
    return body


EVENT, EVENT_RELATION = "Event", "EventRelation"


def record_id(record: dict[str, Any]) -> str:
    return str(record["Id"])


def relation_person(relation: dict[str, Any]) -> str:
    """The User, Contact or Lead an EventRelation relates."""
    return str(relation["RelationId"])


def modstamp(record: dict[str, Any]) -> str:
    return str(record["SystemModstamp"])


def deleted_record(event_id: str, deleted_at: str) -> dict[str, Any]:
    """What getDeleted lists for an Event we deleted."""
    return {"id": event_id, "deletedDate": deleted_at}


def invitee_relation(event_id: str, relation_id: str, status: str = "New",
                     is_parent: bool = False) -> dict[str, Any]:
    """An EventRelation inviting a User, Contact or Lead, with its Outlook status; a
    Contact or Lead that is also the Event's Who has ``IsParent``."""
    body: dict[str, Any] = {"EventId": event_id, "RelationId": relation_id, "IsInvitee": True,
                            "Status": status}
    if is_parent:
        body["IsParent"] = True
    return body


def relation_status(status: str) -> dict[str, Any]:
    return {"Status": status}


def relation_record_id(relation: dict[str, Any]) -> str:
    return str(relation["Id"])
