"""Microsoft Graph ``event`` JSON <-> domain values. The only module that knows Graph fields.

Reading: a Graph v1.0 event (calendarView, delta, instances, ``GET event``)
becomes an ``ExchangeItemSeen``; an ``@removed`` object becomes an
``ExchangeItemGone``. Times are turned into ISO-8601 UTC strings, zone names
are kept as Windows names (the ledger maps them), and a payload that lacks a
field the ledger cannot do without raises ``WireError`` naming that field.

Writing: the plan's fields (domain names) become a Graph request body.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

from adapters.graph.body import html_to_text
from adapters.graph.ids import checked_id
from adapters.salesforce.ids import checked_event_id
from adapters.wire import (
    WireError,
    checked_utc,
    flag,
    integer,
    kind_of,
    obj,
    opt_text,
    parse_instant,
    strings,
    text,
)
from ledger.observations import Attendee, ExchangeItemGone, ExchangeItemSeen, ItemType
from ledger.recurrence import is_classic, local, mask_days, month_number
from ledger.timezones import to_iana, to_windows

#: Graph ``type`` -> the ledger's item type.
ITEM_TYPES: dict[str, ItemType] = {
    "singleInstance": "single", "seriesMaster": "master",
    "occurrence": "occurrence", "exception": "exception",
}
#: ``@removed.reason`` -> why the item left the mailbox's view (DOMAIN.md §4 keeps them apart).
REMOVAL_REASONS = {"deleted": "deleted", "changed": "not-visible"}
#: The property set our cross-reference property lives in (a GUID of our own).
MARKER_GUID = "66f5a359-4659-4830-9070-00047ec6ac6e"
DEFAULT_MARKER = "SyncLedgerSalesforceId"
#: Graph reports UTC and floating zones with these ids instead of a Windows name.
ZONE_ALIASES = {"tzone://Microsoft/Utc": "UTC", "Coordinated Universal Time": "UTC"}
_NO_DATE = "0001-01-01"
#: Graph ``itemBody.contentType`` values.
BODY_TYPES = ("text", "html")
#: Bookkeeping fields that change without the item changing.
_NOT_CONTENT = frozenset({"@odata.etag", "@odata.context", "changeKey"})


def _zone(name: str) -> ZoneInfo | None:
    iana = to_iana(ZONE_ALIASES.get(name, name))
    if iana is None:
        return None
    try:
        return ZoneInfo(iana)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def parse_date_time_zone(value: Any, field: str, item_id: str | None) -> str:
    """A Graph ``dateTimeTimeZone`` (wall time + zone name) as ledger UTC."""
    if not isinstance(value, dict):
        raise WireError(field, f"expected an object with dateTime and timeZone, got "
                               f"{kind_of(value)}", item_id)
    wall, zone_name = value.get("dateTime"), value.get("timeZone") or "UTC"
    if not isinstance(wall, str):
        raise WireError(f"{field}.dateTime", "missing or not a string", item_id)
    if not isinstance(zone_name, str):
        raise WireError(f"{field}.timeZone", "not a string", item_id)
    try:
        parsed = datetime.fromisoformat(wall)
    except ValueError:
        raise WireError(f"{field}.dateTime", f"{wall!r} is not an ISO-8601 time",
                        item_id) from None
    if parsed.tzinfo is None:
        zone = _zone(zone_name)
        if zone is None:
            raise WireError(f"{field}.timeZone", f"unknown time zone {zone_name!r}", item_id)
        parsed = parsed.replace(tzinfo=zone)
    return checked_utc(parsed, f"{field}.dateTime", item_id)


def _email(value: Any, field: str, item_id: str | None) -> tuple[str, str]:
    """(lower-cased address, display name) of a Graph ``recipient``."""
    if value is None:
        return "", ""
    address = value.get("emailAddress") if isinstance(value, dict) else None
    if not isinstance(address, dict):
        raise WireError(field, "expected {emailAddress: {address, name}}", item_id)
    at = f"{field}.emailAddress"
    return text(address, "address", item_id, at=at).lower(), text(address, "name", item_id, at=at)


def content_version(payload: dict[str, Any]) -> str:
    """A stand-in for ``changeKey`` when the payload has none: a hash of its content."""
    content = {k: v for k, v in payload.items() if k not in _NOT_CONTENT}
    return "sha1:" + hashlib.sha1(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()


# --- reading ------------------------------------------------------------------


def marker_property_id(name: str = DEFAULT_MARKER) -> str:
    """The id of our single-value extended property holding the Salesforce Id."""
    return f"String {{{MARKER_GUID}}} Name {name}"


def _marker(payload: dict[str, Any], name: str, item_id: str | None) -> str | None:
    """Our cross-reference property: the Salesforce Event Id this item mirrors.

    Anyone who can write the item can write the property, so its value is
    checked like any outside Id: a value that is not an Event Id quarantines the
    observation (README, "Security"), it never links the item or names a write."""
    props = payload.get("singleValueExtendedProperties") or []
    if not isinstance(props, list):
        raise WireError("singleValueExtendedProperties", "expected a list", item_id)
    wanted = f" name {name.lower()}"
    for i, prop in enumerate(props):
        pid = prop.get("id") if isinstance(prop, dict) else None
        if isinstance(pid, str) and pid.lower().endswith(wanted):
            value = prop.get("value")
            if value is None or value == "":
                return None
            return checked_event_id(value, f"singleValueExtendedProperties[{i}].value",
                                    item_id)
    return None


def _recurrence(value: Any, item_id: str | None) -> dict[str, Any] | None:
    """Graph ``patternedRecurrence`` as a flat JSON-native dict (end_date None: no end)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise WireError("recurrence", f"expected an object, got {kind_of(value)}", item_id)
    pattern = obj(value, "pattern", item_id, at="recurrence") or {}
    range_ = obj(value, "range", item_id, at="recurrence") or {}
    p, r = "recurrence.pattern", "recurrence.range"
    range_type = opt_text(range_, "type", item_id, at=r)
    end_date = opt_text(range_, "endDate", item_id, at=r)
    if range_type != "endDate" or end_date in (None, "", _NO_DATE):
        end_date = None
    start_date = opt_text(range_, "startDate", item_id, at=r)
    for name, day in ((f"{r}.startDate", start_date), (f"{r}.endDate", end_date)):
        if day is not None and day != _NO_DATE:
            try:
                date.fromisoformat(day)
            except ValueError:
                raise WireError(name, f"{day!r} is not a date", item_id) from None
    return {
        "type": opt_text(pattern, "type", item_id, at=p),
        "interval": integer(pattern, "interval", item_id, at=p) or 1,
        "days_of_week": strings(pattern, "daysOfWeek", item_id, at=p),
        "day_of_month": integer(pattern, "dayOfMonth", item_id, at=p) or None,
        "month": integer(pattern, "month", item_id, at=p) or None,
        "index": opt_text(pattern, "index", item_id, at=p),
        "first_day_of_week": opt_text(pattern, "firstDayOfWeek", item_id, at=p),
        "range": range_type, "start_date": start_date, "end_date": end_date,
        "occurrences": integer(range_, "numberOfOccurrences", item_id, at=r) or None,
        "time_zone": opt_text(range_, "recurrenceTimeZone", item_id, at=r),
    }


def _body_text(body: Any, item_id: str | None) -> str:
    """The item's body as plain text (HTML converted here, so the ledger records text)."""
    if body is None:
        return ""
    if not isinstance(body, dict):
        raise WireError("body", f"expected an object (itemBody), got {kind_of(body)}", item_id)
    content = text(body, "content", item_id, at="body")
    kind = text(body, "contentType", item_id, at="body") or "html"
    if kind not in BODY_TYPES:
        raise WireError("body.contentType", f"expected text or html, got {kind!r}", item_id)
    return html_to_text(content) if kind == "html" else content


def to_observation(
    payload: Any, mailbox: str, observed_at: str, *, marker: str = DEFAULT_MARKER
) -> ExchangeItemSeen | ExchangeItemGone:
    """One Graph event (or ``@removed`` entry) seen in ``mailbox`` at ``observed_at``."""
    if not isinstance(payload, dict):
        raise WireError("payload", f"expected a Graph event object, got {kind_of(payload)}")
    item_id = checked_id(payload.get("id"), "id")
    mailbox = mailbox.lower()
    removed = payload.get("@removed")
    if removed is not None:
        if not isinstance(removed, dict):
            raise WireError("@removed", f"expected an object {{reason}}, got {kind_of(removed)}",
                            item_id)
        reason = text(removed, "reason", item_id, at="@removed")
        return ExchangeItemGone(observed_at=observed_at, mailbox=mailbox, item_id=item_id,
                                reason=REMOVAL_REASONS.get(str(reason), "not-visible"))
    graph_type = text(payload, "type", item_id) or "singleInstance"
    item_type = ITEM_TYPES.get(graph_type)
    if item_type is None:
        raise WireError("type", f"unknown event type {graph_type!r} (expected one of "
                                f"{', '.join(ITEM_TYPES)})", item_id)
    master_id = payload.get("seriesMasterId")
    if item_type in ("occurrence", "exception"):
        if not isinstance(master_id, str) or not master_id:
            raise WireError("seriesMasterId", f"an {item_type} needs its series master's id",
                            item_id)
        master_id = checked_id(master_id, "seriesMasterId", item_id)
    else:
        master_id = None
    ical_uid = text(payload, "iCalUId", item_id, is_id=True)
    if not ical_uid and item_type in ("single", "master"):
        raise WireError("iCalUId", "missing: the meeting is keyed by it (select it with "
                                   "$select or read the full event)", item_id)
    start = parse_date_time_zone(payload.get("start"), "start", item_id)
    end = parse_date_time_zone(payload.get("end"), "end", item_id)
    occurrence_start = None
    if item_type in ("occurrence", "exception"):
        original = payload.get("originalStart")
        occurrence_start = (parse_instant(original, "originalStart", item_id)
                            if original is not None else start)
    organizer, _ = _email(payload.get("organizer"), "organizer", item_id)
    attendees_raw = payload.get("attendees") or []
    if not isinstance(attendees_raw, list):
        raise WireError("attendees", "expected a list", item_id)
    attendees = []
    for i, raw in enumerate(attendees_raw):
        if not isinstance(raw, dict):
            raise WireError(f"attendees[{i}]", f"expected an attendee object, got "
                                               f"{kind_of(raw)}", item_id)
        email, name = _email(raw, f"attendees[{i}]", item_id)
        status = obj(raw, "status", item_id, at=f"attendees[{i}]") or {}
        response = text(status, "response", item_id, at=f"attendees[{i}].status")
        attendees.append(Attendee(email=email, response=response or "none", name=name))
    body = payload.get("body")
    location = obj(payload, "location", item_id) or {}
    categories = strings(payload, "categories", item_id)
    zone = opt_text(payload, "originalStartTimeZone", item_id)
    recurrence = _recurrence(payload.get("recurrence"), item_id)
    if not zone and recurrence is not None:
        zone = recurrence["time_zone"]
    if isinstance(zone, str):
        zone = ZONE_ALIASES.get(zone, zone)
    last_modified = payload.get("lastModifiedDateTime")
    return ExchangeItemSeen(
        observed_at=observed_at, mailbox=mailbox, item_id=item_id,
        ical_uid=ical_uid or None, item_type=item_type, series_master_id=master_id,
        occurrence_start=occurrence_start,
        version=text(payload, "changeKey", item_id) or content_version(payload),
        last_modified=(parse_instant(last_modified, "lastModifiedDateTime", item_id)
                       if last_modified is not None else None),
        subject=text(payload, "subject", item_id),
        body=_body_text(body, item_id),
        location=text(location, "displayName", item_id, at="location"),
        start=start, end=end,
        is_all_day=flag(payload, "isAllDay", item_id, False),
        sensitivity=text(payload, "sensitivity", item_id, "normal").strip().lower(),
        time_zone=zone if isinstance(zone, str) and zone else None,
        organizer=organizer, attendees=tuple(attendees), recurrence=recurrence,
        categories=tuple(categories),
        is_cancelled=flag(payload, "isCancelled", item_id, False),
        is_organizer=flag(payload, "isOrganizer", item_id, organizer == mailbox),
        salesforce_marker=_marker(payload, marker, item_id),
    )


def is_stub(payload: dict[str, Any]) -> bool:
    """An occurrence delivered with only its ids and times (delta does this)."""
    return (payload.get("type") in ("occurrence", "exception") and "@removed" not in payload
            and "subject" not in payload and bool(payload.get("seriesMasterId")))


def occurrence_stub_master_id(payload: dict[str, Any]) -> str | None:
    """The series master a delta occurrence stub needs to be completed from (None: not one).

    The sync fills occurrences only: an exception carries its own fields."""
    if payload.get("type") != "occurrence" or not is_stub(payload):
        return None
    return str(payload["seriesMasterId"])


def master_id_of(payload: dict[str, Any]) -> str | None:
    """The id of a series master payload (None for anything else)."""
    item_id = payload.get("id")
    return item_id if payload.get("type") == "seriesMaster" and isinstance(item_id, str) \
        else None


def series_id_of(payload: dict[str, Any]) -> str:
    """The master id an occurrence names ("None" when it names none)."""
    return str(payload.get("seriesMasterId"))


def may_be_master_or_stub(raw: bytes) -> bool:
    """A cheap look at a raw line before decoding it: could it be a master or a stub?"""
    is_master = b'"seriesMaster"' in raw  # the type value; the key is "seriesMasterId"
    return is_master or (b'"seriesMasterId"' in raw and b'"subject"' not in raw)


def is_series_head(payload: dict[str, Any]) -> bool:
    """A single item or a series master that is still there: what can carry our marker."""
    return "@removed" not in payload \
        and payload.get("type", "singleInstance") in ("singleInstance", "seriesMaster")


def removed_item(item_id: str) -> dict[str, Any]:
    """What delta would deliver for an item that is gone."""
    return {"@odata.type": "#microsoft.graph.event", "id": item_id,
            "@removed": {"reason": "deleted"}}


def attendee_emails(events: list[dict[str, Any]]) -> set[str]:
    """Lower-cased attendee addresses of a page of Graph events (for the people look-up)."""
    out: set[str] = set()
    for event in events:
        for attendee in event.get("attendees") or []:
            address = attendee.get("emailAddress") if isinstance(attendee, dict) else None
            email = address.get("address") if isinstance(address, dict) else None
            if isinstance(email, str) and email:
                out.add(email.lower())
    return out


#: Where an observation's fields sit in a Graph payload, for errors that name them.
FIELD_PATHS = {"series_master_id": "payload.seriesMasterId"}


def fill_stub(stub: dict[str, Any], master: dict[str, Any]) -> dict[str, Any]:
    """An occurrence stub completed from its series master, as ``/instances`` would give it.

    The stub's own ids and times win; the rest is the master's. Without a
    changeKey of its own the filled item is versioned by its content, so a
    master change shows as a change of each occurrence.
    """
    own = ("id", "type", "seriesMasterId", "start", "end", "originalStart", "isCancelled")
    filled = {k: v for k, v in master.items()
              if k not in ("recurrence", "iCalUId", "changeKey", "@odata.etag", *own)}
    filled.update({k: stub[k] for k in own if k in stub})
    filled["recurrence"] = None
    filled["changeKey"] = content_version(filled)
    return filled


# --- writing ------------------------------------------------------------------


def _graph_time(value: str) -> dict[str, str]:
    when = datetime.fromisoformat(value).astimezone(UTC)
    return {"dateTime": when.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": "UTC"}


def _graph_recurrence(rec: dict[str, Any], start: str | None) -> dict[str, Any] | None:
    """A ledger recurrence (Graph-shaped or Salesforce Classic) as ``patternedRecurrence``."""
    if rec.get("days_of_week") is not None and rec.get("range") is not None:  # from Exchange
        pattern = {"type": rec["type"], "interval": rec["interval"],
                   "daysOfWeek": rec["days_of_week"], "dayOfMonth": rec["day_of_month"] or 0,
                   "month": rec["month"] or 0, "index": rec["index"] or "first",
                   "firstDayOfWeek": rec["first_day_of_week"] or "sunday"}
        range_: dict[str, Any] = {"type": rec["range"], "startDate": rec["start_date"],
                                  "endDate": rec["end_date"] or _NO_DATE,
                                  "numberOfOccurrences": rec["occurrences"] or 0}
        if rec.get("time_zone"):
            range_["recurrenceTimeZone"] = rec["time_zone"]
        return {"pattern": pattern, "range": range_}
    kind = str(rec.get("type"))  # Salesforce Classic RecurrenceType
    types = {"RecursDaily": "daily", "RecursEveryWeekday": "weekly", "RecursWeekly": "weekly",
             "RecursMonthly": "absoluteMonthly", "RecursMonthlyNth": "relativeMonthly",
             "RecursYearly": "absoluteYearly", "RecursYearlyNth": "relativeYearly"}
    if kind not in types:
        return None
    zone = rec.get("time_zone") or "UTC"
    first = local(rec.get("start") or start or "", zone)
    mask = 62 if kind == "RecursEveryWeekday" else int(rec.get("day_of_week_mask") or 0)
    yearly = kind.startswith("RecursYearly")
    pat: dict[str, Any] = {
        "type": types[kind],
        "interval": 1 if yearly or kind == "RecursEveryWeekday"
        else int(rec.get("interval") or 1),
        "firstDayOfWeek": "sunday"}
    if types[kind] in ("weekly", "relativeMonthly", "relativeYearly"):
        pat["daysOfWeek"] = list(mask_days(mask))
    if kind.endswith("Nth"):
        pat["index"] = str(rec.get("instance") or "First").lower()
    if kind in ("RecursMonthly", "RecursYearly"):
        pat["dayOfMonth"] = int(rec.get("day_of_month") or first.day)
    if yearly:
        pat["month"] = month_number(rec.get("month")) or first.month
    end = rec.get("end_date")
    rng: dict[str, Any] = {"type": "endDate" if end else "noEnd",
                              "startDate": first.date().isoformat(),
                              "recurrenceTimeZone": to_windows(zone)}
    if end:
        rng["endDate"] = str(end)[:10]
    return {"pattern": pat, "range": rng}


def _series_zone(fields: dict[str, Any]) -> str | None:
    """The IANA zone a Salesforce Classic series is kept in (None: not such a series)."""
    rec = fields.get("recurrence")
    if isinstance(rec, dict) and is_classic(rec):
        return str(rec.get("time_zone") or "UTC")
    return None


def _zoned_time(value: str, zone: str) -> dict[str, str]:
    """A UTC time as wall time in the series' own zone, named as Windows names it."""
    when = local(value, zone)
    return {"dateTime": when.strftime("%Y-%m-%dT%H:%M:%S.0000000"),
            "timeZone": to_windows(zone)}


def observation_fields_to_graph(
    fields: dict[str, Any], *, marker_property: str = DEFAULT_MARKER
) -> dict[str, Any]:
    """A planned write's fields (domain names) as a Graph event request body."""
    body: dict[str, Any] = {}
    for name, value in fields.items():
        if name == "subject":
            body["subject"] = value or ""
        elif name in ("body", "description"):
            # Always text: a Salesforce Description is plain text, and "<" or a line
            # break in it must reach Outlook as typed (Exchange escapes it).
            body["body"] = {"contentType": "text", "content": value or ""}
        elif name == "location":
            body["location"] = {"displayName": value or ""}
        elif name in ("start", "end") and value:
            # A series is created in its own zone, or occurrences move at each DST change.
            zone = _series_zone(fields)
            body[name] = _zoned_time(value, zone) if zone else _graph_time(value)
        elif name == "is_all_day":
            body["isAllDay"] = bool(value)
        elif name == "sensitivity" and value:
            body["sensitivity"] = str(value)
        elif name == "categories":
            body["categories"] = list(value)
        elif name == "attendees":
            # Graph replaces the list whole; attendees added from Salesforce carry no
            # response (Graph sets "none" itself).
            body["attendees"] = [{"type": "required", "emailAddress": {
                "address": a["email"], "name": a.get("name") or a["email"]}}
                for a in value]
        elif name == "recurrence" and value:
            rec = _graph_recurrence(value, fields.get("start"))
            if rec is not None:
                body["recurrence"] = rec
    props = []
    if fields.get("salesforce_marker"):
        props.append({"id": marker_property_id(marker_property),
                      "value": fields["salesforce_marker"]})
    if "what_id" in fields:  # Graph has no "related to": kept beside the marker
        props.append({"id": marker_property_id("SyncLedgerWhatId"),
                      "value": fields["what_id"] or ""})
    if props:
        body["singleValueExtendedProperties"] = props
    return body
