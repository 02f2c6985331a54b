"""Salesforce REST (Event, EventRelation) and the OAuth token endpoint, emulated.

Just enough for simple-salesforce 1.12 and ``adapters.salesforce.client``
(DOMAIN.md §8): ``/services/oauth2/token`` (client credentials and password
flows), ``query/`` with a SOQL subset (SELECT fields FROM object, WHERE
comparisons joined by AND, ``IN`` lists, ORDER BY, LIMIT) and
``nextRecordsUrl`` paging, ``sobjects/Event/deleted/`` and ``updated/``,
create / update / delete with Salesforce's error lists, the
``Sforce-Limit-Info`` header, and Classic recurrence: creating a master with
``IsRecurrence`` generates its child occurrences (every RecurrenceType,
expanded with dateutil's rrule in the series' zone), and a master's
Description, Location or WhatId change is written to every occurrence, as
Salesforce does. Every write bumps SystemModstamp.

Writes are refused as Salesforce refuses them (DOMAIN.md §11), with its error
codes: unknown fields and an ``Id`` in the body (INVALID_FIELD), read-only ones,
texts over their length (STRING_TOO_LONG), restricted picklist values, missing
required fields (also the recurrence fields each RecurrenceType needs), events over
24 hours / all-day over 14 days, series over the occurrence caps. The tables below
(``TEXT_LENGTHS``, ``PICKLISTS``, ``RECURRENCE_REQUIRED``, ``RECURRENCE_CAPS``)
are where a new field's rules go.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from itertools import islice
from typing import Any, Literal
from zoneinfo import ZoneInfo

from dateutil.rrule import DAILY, MONTHLY, WEEKLY, YEARLY, rrule

from adapters.sandbox.emulator import (
    Clock,
    Emulator,
    Request,
    Response,
    deep,
    json_response,
    utcnow,
)
from adapters.sandbox.tls import TestCA
from ledger.identity import salesforce_id18

EVENT_FIELDS = frozenset((
    "Id", "Subject", "StartDateTime", "EndDateTime", "ActivityDate", "ActivityDateTime",
    "DurationInMinutes", "IsAllDayEvent", "IsPrivate", "ShowAs", "Description", "Location",
    "WhatId", "WhoId", "OwnerId", "IsChild", "IsGroupEvent", "GroupEventType", "IsRecurrence",
    "RecurrenceActivityId", "RecurrenceType", "RecurrenceInterval", "RecurrenceDayOfWeekMask",
    "RecurrenceDayOfMonth", "RecurrenceInstance", "RecurrenceMonthOfYear",
    "RecurrenceStartDateTime", "RecurrenceEndDateOnly", "RecurrenceTimeZoneSidKey",
    "IsRecurrence2", "Recurrence2PatternText", "IsRecurrence2Exclusion", "SystemModstamp",
    "LastModifiedDate", "CreatedDate", "CreatedById", "LastModifiedById", "IsDeleted",
    "IsReminderSet", "ReminderDateTime", "Type"))
RELATION_FIELDS = frozenset((
    "Id", "EventId", "RelationId", "IsInvitee", "IsParent", "IsWhat", "Status", "RespondedDate",
    "Response", "SystemModstamp", "CreatedDate", "LastModifiedDate", "IsDeleted"))
#: People an EventRelation can name (DOMAIN.md §12), queried by ``Email IN (...)``.
PERSON_FIELDS = {
    "User": frozenset(("Id", "Name", "Email", "IsActive", "Username", "SystemModstamp")),
    "Contact": frozenset(("Id", "Name", "FirstName", "LastName", "Email", "AccountId",
                          "SystemModstamp")),
    "Lead": frozenset(("Id", "Name", "FirstName", "LastName", "Email", "Company",
                       "IsConverted", "SystemModstamp")),
}
PERSON_PREFIXES = {"005": "User", "003": "Contact", "00Q": "Lead"}
RELATION_STATUSES = ("New", "Accepted", "Declined")
MAX_WHO_CONTACTS = 50
NOT_WRITABLE = frozenset(("Id", "IsChild", "IsGroupEvent", "GroupEventType",
                          "RecurrenceActivityId", "SystemModstamp", "LastModifiedDate",
                          "CreatedDate", "CreatedById", "LastModifiedById", "IsDeleted",
                          "ActivityDate"))
#: A master's change of these is written to every occurrence (series-master-overwrite).
SERIES_OVERWRITE = ("Description", "Location", "WhatId")
RECURRENCE_FIELDS = ("RecurrenceType", "RecurrenceInterval", "RecurrenceDayOfWeekMask",
                     "RecurrenceDayOfMonth", "RecurrenceInstance", "RecurrenceMonthOfYear",
                     "RecurrenceStartDateTime", "RecurrenceEndDateOnly",
                     "RecurrenceTimeZoneSidKey")
PREFIXES = {"Event": "00U", "EventRelation": "0RE", "User": "005", "Contact": "003",
            "Lead": "00Q"}

# --- what Salesforce refuses (DOMAIN.md §11): one small table per kind of check -------
# Other features add their fields here (e.g. Contact/Lead lookups add their own sObjects).

#: Text fields' lengths (Object Reference, Event): a longer value is STRING_TOO_LONG.
TEXT_LENGTHS: dict[str, dict[str, int]] = {
    "Event": {"Subject": 255, "Location": 255, "Description": 32_000},
    "EventRelation": {}}
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")
#: Restricted picklists: any other value is INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST.
PICKLISTS: dict[str, dict[str, tuple[str, ...]]] = {
    "Event": {
        "RecurrenceType": ("RecursDaily", "RecursEveryWeekday", "RecursWeekly",
                           "RecursMonthly", "RecursMonthlyNth", "RecursYearly",
                           "RecursYearlyNth"),
        "RecurrenceInstance": ("First", "Second", "Third", "Fourth", "Last"),
        "RecurrenceMonthOfYear": MONTHS,
        "ShowAs": ("Busy", "OutOfOffice", "Free")},
    "EventRelation": {"Status": ("New", "Accepted", "Declined")}}
#: Fields a Classic series master needs, by RecurrenceType (every type also needs
#: RecurrenceStartDateTime and RecurrenceEndDateOnly).
RECURRENCE_REQUIRED = {
    "RecursDaily": ("RecurrenceInterval",),
    "RecursEveryWeekday": ("RecurrenceDayOfWeekMask",),
    "RecursWeekly": ("RecurrenceInterval", "RecurrenceDayOfWeekMask"),
    "RecursMonthly": ("RecurrenceInterval", "RecurrenceDayOfMonth"),
    "RecursMonthlyNth": ("RecurrenceInterval", "RecurrenceDayOfWeekMask", "RecurrenceInstance"),
    "RecursYearly": ("RecurrenceDayOfMonth", "RecurrenceMonthOfYear"),
    "RecursYearlyNth": ("RecurrenceDayOfWeekMask", "RecurrenceInstance",
                        "RecurrenceMonthOfYear")}
#: Most occurrences of a Classic series (KB 000212481), by RecurrenceType.
RECURRENCE_CAPS = {"RecursDaily": 100, "RecursEveryWeekday": 100, "RecursWeekly": 53,
                   "RecursMonthly": 59, "RecursMonthlyNth": 59, "RecursYearly": 9,
                   "RecursYearlyNth": 9}
MAX_DURATION = {"timed": timedelta(hours=24), "all-day": timedelta(days=14)}
_SETPOS = {"First": 1, "Second": 2, "Third": 3, "Fourth": 4, "Last": -1}
_FREQS: dict[str, Literal[0, 1, 2, 3, 4, 5, 6]] = {
    "RecursDaily": DAILY, "RecursEveryWeekday": WEEKLY, "RecursWeekly": WEEKLY,
    "RecursMonthly": MONTHLY, "RecursMonthlyNth": MONTHLY, "RecursYearly": YEARLY,
    "RecursYearlyNth": YEARLY}


def _label(field: str) -> str:
    """Salesforce names a field by its label in messages: ``Recurrence Type``."""
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", field)


def text_problem(sobject: str, body: dict[str, Any]) -> tuple[str, str, list[str]] | None:
    """STRING_TOO_LONG for a text over its field's length."""
    for name, limit in TEXT_LENGTHS.get(sobject, {}).items():
        value = body.get(name)
        if isinstance(value, str) and len(value) > limit:
            return ("STRING_TOO_LONG", f"{_label(name)}: data value too large: "
                    f"{value[:40]}... (max length={limit})", [name])
    return None


def picklist_problem(sobject: str, body: dict[str, Any]) -> tuple[str, str, list[str]] | None:
    """INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST for a value the picklist does not have."""
    for name, values in PICKLISTS.get(sobject, {}).items():
        value = body.get(name)
        if value is not None and value not in values:
            return ("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    f"{_label(name)}: bad value for restricted picklist field: {value}", [name])
    return None


def series_dates(record: dict[str, Any], limit: int) -> list[datetime]:
    """A Classic master's occurrence starts, expanded in its RecurrenceTimeZoneSidKey."""
    kind = str(record.get("RecurrenceType"))
    zone = ZoneInfo(str(record.get("RecurrenceTimeZoneSidKey") or "UTC"))
    first = parse_time(record.get("RecurrenceStartDateTime") or record["StartDateTime"]) \
        .astimezone(zone)
    mask = 62 if kind == "RecursEveryWeekday" else int(record.get("RecurrenceDayOfWeekMask")
                                                       or 0)
    days = [(bit - 1) % 7 for bit in range(7) if mask & (1 << bit)]  # Sunday = bit 0
    nth = kind.endswith("Nth")
    until = date.fromisoformat(str(record["RecurrenceEndDateOnly"])[:10])
    month = record.get("RecurrenceMonthOfYear")
    rule = rrule(
        _FREQS[kind], dtstart=first.replace(tzinfo=None),
        interval=1 if kind.startswith("RecursYearly") or kind == "RecursEveryWeekday"
        else int(record.get("RecurrenceInterval") or 1),
        until=datetime.combine(until, time(23, 59, 59)),
        byweekday=days if kind in ("RecursWeekly", "RecursEveryWeekday") or nth else None,
        bysetpos=_SETPOS.get(str(record.get("RecurrenceInstance"))) if nth else None,
        bymonthday=int(record.get("RecurrenceDayOfMonth") or first.day)
        if kind in ("RecursMonthly", "RecursYearly") else None,
        bymonth=MONTHS.index(month) + 1 if kind.startswith("RecursYearly") and month else None)
    return [d.replace(tzinfo=zone) for d in islice(rule, limit)]


def recurrence_problem(record: dict[str, Any]) -> tuple[str, str, list[str]] | None:
    """A Classic master Salesforce would refuse: missing fields, an interval on a yearly
    series, an unknown zone, more occurrences than the cap."""
    kind = str(record.get("RecurrenceType") or "")
    need = ["RecurrenceType", "RecurrenceStartDateTime", "RecurrenceEndDateOnly",
            *RECURRENCE_REQUIRED.get(kind, ())]
    absent = [f for f in need if record.get(f) in (None, "")]
    if absent:
        return ("REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(absent)}]",
                absent)
    if kind.startswith("RecursYearly") and record.get("RecurrenceInterval") not in (None, 1):
        return ("FIELD_INTEGRITY_EXCEPTION", "Recurrence Interval: yearly recurring events "
                "have no interval", ["RecurrenceInterval"])
    try:
        ZoneInfo(str(record.get("RecurrenceTimeZoneSidKey") or "UTC"))
        dates = series_dates(record, RECURRENCE_CAPS[kind] + 1)
    except (KeyError, ValueError):
        return ("FIELD_INTEGRITY_EXCEPTION", "Recurrence: invalid time zone, date or pattern",
                ["RecurrenceTimeZoneSidKey"])
    if len(dates) > RECURRENCE_CAPS[kind]:
        return ("FIELD_INTEGRITY_EXCEPTION", f"Recurrence End: a series of this type can have "
                f"at most {RECURRENCE_CAPS[kind]} occurrences", ["RecurrenceEndDateOnly"])
    if not dates:
        return ("FIELD_INTEGRITY_EXCEPTION", "Recurrence: the series has no occurrence",
                ["RecurrenceEndDateOnly"])
    return None
INTEGRATION_USER = "0055e000009ZzZzAAK"
MAX_DAYS = {"deleted": 15, "updated": 30}

_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^'\\]|\\.)*')|(?P<op>>=|<=|!=|=|<|>)|(?P<punct>[(),])"
                    r"|(?P<word>[A-Za-z0-9_.:+\-]+))")


class SoqlError(ValueError):
    """A query the emulator cannot run: Salesforce's MALFORMED_QUERY / INVALID_FIELD."""

    def __init__(self, message: str, code: str = "MALFORMED_QUERY") -> None:
        super().__init__(message)
        self.code = code


def sf_time(when: datetime) -> str:
    """Salesforce's dateTime format: ``2013-05-07T22:07:19.000+0000``."""
    when = when.astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}+0000"


def parse_time(value: str) -> datetime:
    text = value.strip().replace("Z", "+00:00")
    if re.search(r"[+-]\d{4}$", text):
        text = text[:-2] + ":" + text[-2:]
    when = datetime.fromisoformat(text)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _tokens(soql: str) -> list[str]:
    out, pos = [], 0
    soql = soql.strip()
    while pos < len(soql):
        match = _TOKEN.match(soql, pos)
        if match is None or match.end() == pos:
            raise SoqlError(f"unexpected token at: {soql[pos:pos + 20]!r}")
        out.append(match.group().strip())
        pos = match.end()
    return [t for t in out if t]


#: SOQL's escape sequences in quoted strings (the SOQL reference, "Quoted String Escape
#: Sequences"); any other escaped character stands for itself.
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f"}


def _literal(token: str) -> Any:
    if token.startswith("'"):
        return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), token[1:-1],
                      flags=re.S)
    low = token.lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "null":
        return None
    if re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:.]+(Z|[+-]\d\d:?\d\d)", token):
        return parse_time(token)
    if re.fullmatch(r"-?\d+(\.\d+)?", token):
        return float(token)
    raise SoqlError(f"unexpected token: '{token}'")


def _same(field: str, value: Any, wanted: Any) -> bool:
    if isinstance(wanted, datetime):
        return value is not None and parse_time(str(value)) == wanted
    if isinstance(wanted, str) and isinstance(value, str):
        if field.endswith("Id") and len(wanted) in (15, 18) and len(value) in (15, 18):
            return value[:15] == wanted[:15]
        return value.lower() == wanted.lower()
    return bool(value == wanted)


def _compare(field: str, value: Any, op: str, wanted: Any) -> bool:
    if op == "=":
        return _same(field, value, wanted)
    if op == "!=":
        return not _same(field, value, wanted)
    if value is None or wanted is None:
        return False
    left: Any = parse_time(str(value)) if isinstance(wanted, datetime) else value
    return bool({"<": left < wanted, "<=": left <= wanted, ">": left > wanted,
                 ">=": left >= wanted}[op])


class Query:
    """A parsed SOQL query of the supported subset."""

    def __init__(self, soql: str, fields_of: dict[str, frozenset[str]]) -> None:
        toks = _tokens(soql)
        pos = 0

        def take(expected: str | None = None) -> str:
            nonlocal pos
            if pos >= len(toks):
                raise SoqlError(f"unexpected end of query, expecting {expected or 'more'}")
            tok = toks[pos]
            if expected is not None and tok.upper() != expected:
                raise SoqlError(f"unexpected token: '{tok}', expecting {expected}")
            pos += 1
            return tok

        def peek(word: str) -> bool:
            return pos < len(toks) and toks[pos].upper() == word

        take("SELECT")
        self.fields: list[str] = [take()]
        while peek(","):
            take(",")
            self.fields.append(take())
        take("FROM")
        self.sobject = take()
        if self.sobject not in fields_of:
            raise SoqlError(f"sObject type '{self.sobject}' is not supported.",
                            "INVALID_TYPE")
        known = {f.lower(): f for f in fields_of[self.sobject]}
        for name in [*self.fields]:
            if name.lower() not in known:
                raise SoqlError(f"No such column '{name}' on entity '{self.sobject}'. If you "
                                "are attempting to use a custom field, be sure to append the "
                                "'__c' after the custom field name.", "INVALID_FIELD")
        self.fields = [known[f.lower()] for f in self.fields]
        self.where: list[tuple[str, str, Any]] = []
        if peek("WHERE"):
            take("WHERE")
            while True:
                name = take()
                if name.lower() not in known:
                    raise SoqlError(f"No such column '{name}' on entity '{self.sobject}'.",
                                    "INVALID_FIELD")
                name = known[name.lower()]
                if peek("IN") or peek("NOT"):
                    negate = take().upper() == "NOT"
                    if negate:
                        take("IN")
                    take("(")
                    values = [_literal(take())]
                    while peek(","):
                        take(",")
                        values.append(_literal(take()))
                    take(")")
                    self.where.append((name, "NOT IN" if negate else "IN", values))
                else:
                    op = take()
                    if op not in ("=", "!=", "<", "<=", ">", ">="):
                        raise SoqlError(f"unexpected token: '{op}'")
                    self.where.append((name, op, _literal(take())))
                if not peek("AND"):
                    break
                take("AND")
        self.order: list[tuple[str, bool]] = []
        if peek("ORDER"):
            take("ORDER")
            take("BY")
            while True:
                column = known.get(take().lower())
                if column is None:
                    raise SoqlError("ORDER BY on an unknown field", "INVALID_FIELD")
                desc = False
                if peek("ASC") or peek("DESC"):
                    desc = take().upper() == "DESC"
                self.order.append((column, desc))
                if not peek(","):
                    break
                take(",")
        self.limit: int | None = None
        if peek("LIMIT"):
            take("LIMIT")
            self.limit = int(take())
        if pos != len(toks):
            raise SoqlError(f"unexpected token: '{toks[pos]}'")

    def matches(self, record: dict[str, Any]) -> bool:
        for name, op, wanted in self.where:
            value = record.get(name)
            if op in ("IN", "NOT IN"):
                hit = any(_same(name, value, w) for w in wanted)
                if hit == (op == "NOT IN"):
                    return False
            elif not _compare(name, value, op, wanted):
                return False
        return True

    def run(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        rows = [r for r in records if self.matches(r)]
        for name, desc in reversed(self.order):
            rows.sort(key=lambda r, n=name: (r.get(n) is None, str(r.get(n) or "")),  # type: ignore[misc]
                      reverse=desc)
        return rows[:self.limit] if self.limit is not None else rows


class SalesforceEmulator(Emulator):
    """Event and EventRelation records, query cursors, OAuth, faults."""

    name = "salesforce"

    def __init__(self, events: list[dict[str, Any]] | None = None,
                 relations: list[dict[str, Any]] | None = None, *,
                 people: list[dict[str, Any]] | None = None,
                 marker_field: str = "SyncLedger_ICalUId__c",
                 client_id: str = "sandbox-sf-client", client_secret: str = "sandbox-sf-secret",
                 username: str | None = None, password: str | None = None,
                 ca: TestCA | None = None, clock: Clock = utcnow, page_size: int = 2000,
                 api_limit: int = 15000) -> None:
        super().__init__(ca=ca, clock=clock)
        self.marker_field = marker_field
        self.client_id, self.client_secret = client_id, client_secret
        self.username, self.password = username, password
        self.page_size = page_size
        self.api_limit = api_limit
        self.api_used = 0
        self.fields_of = {"Event": EVENT_FIELDS | {marker_field},
                          "EventRelation": RELATION_FIELDS, **PERSON_FIELDS}
        self.records: dict[str, dict[str, dict[str, Any]]] = {
            name: {} for name in self.fields_of}
        self.deleted: list[dict[str, Any]] = []
        self.cursors: dict[str, tuple[list[dict[str, Any]], int]] = {}
        #: one Id sequence per object, as Salesforce numbers each key prefix on its own
        self.counters: dict[str, int] = {}
        self.last_stamp = datetime(2000, 1, 1, tzinfo=UTC)
        for record in events or []:
            self.put("Event", record)
        for record in people or []:
            self.put(record["attributes"]["type"], record)
        for record in relations or []:
            self.put("EventRelation", record)

    # --- state a test can set and read ------------------------------------------

    def put(self, sobject: str, record: dict[str, Any]) -> None:
        """Store a record as given (seeding, or an outside change)."""
        with self.lock:
            clean = {k: deep(v) for k, v in record.items() if k != "attributes"}
            self.records[sobject][clean["Id"]] = clean

    def touch(self, event_id: str, **changes: Any) -> None:
        """An outside edit: change fields and bump SystemModstamp."""
        with self.lock:
            record = self.records["Event"][event_id]
            record.update(changes)
            self._stamp(record)

    def get(self, sobject: str, record_id: str) -> dict[str, Any] | None:
        with self.lock:
            found = self.records[sobject].get(record_id)
            return deep(found) if found is not None else None

    def all(self, sobject: str) -> list[dict[str, Any]]:
        with self.lock:
            return deep(sorted(self.records[sobject].values(), key=lambda r: r["Id"]))

    def request_limit(self, times: int = 1) -> None:
        """The org's API allowance is spent for the next ``times`` data requests."""
        self.fail(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.",
                  path=r"^/services/data/", times=times)

    def state(self) -> dict[str, Any]:
        with self.lock:
            return deep({"records": self.records, "deleted": self.deleted,
                         "counter": self.counters, "api_used": self.api_used,
                         "last_stamp": self.last_stamp.isoformat()})

    def load_state(self, state: dict[str, Any]) -> None:
        with self.lock:
            self.records = {name: {} for name in self.fields_of}
            self.records.update(deep(state["records"]))
            self.deleted = deep(state["deleted"])
            counter = state["counter"]  # an int in clouds saved before per-object sequences
            self.counters = dict(counter) if isinstance(counter, dict) else {
                name: int(counter) for name in self.fields_of}
            self.api_used = int(state["api_used"])
            self.last_stamp = datetime.fromisoformat(state["last_stamp"])

    def _stamp(self, record: dict[str, Any]) -> None:
        """SystemModstamp advances on every write, never twice to the same millisecond."""
        record["SystemModstamp"] = record["LastModifiedDate"] = self._next_time()

    def _next_time(self) -> str:
        """The server's time of a write or a deletion: after every earlier one (a deletion's
        ``deletedDate`` is never before the SystemModstamp of the write it follows)."""
        now = max(self.clock().astimezone(UTC), self.last_stamp + timedelta(milliseconds=1))
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        self.last_stamp = now
        return sf_time(now)

    def _new_id(self, sobject: str) -> str:
        """A fresh 18-character Id whose 15-character form no record has."""
        taken = {i[:15] for i in self.records[sobject]}
        while True:
            self.counters[sobject] = n = self.counters.get(sobject, 0) + 1
            short = f"{PREFIXES[sobject]}5eE{n:09d}"
            if short not in taken:
                return salesforce_id18(short)

    # --- HTTP -------------------------------------------------------------------

    def error(self, status: int, code: str, message: str,
              fields: list[str] | None = None) -> Response:
        item: dict[str, Any] = {"message": message, "errorCode": code}
        if fields is not None:
            item["fields"] = fields
        return json_response(status, [item])

    def is_write(self, req: Request) -> bool:
        return super().is_write(req) and req.path.startswith("/services/data/")

    def decorate(self, resp: Response) -> None:
        resp.headers["Sforce-Limit-Info"] = f"api-usage={self.api_used}/{self.api_limit}"

    def handle(self, req: Request) -> Response:
        if req.path == "/services/oauth2/token":
            return self._token(req) if req.method == "POST" else self.error(
                405, "METHOD_NOT_ALLOWED", "HTTP Method not allowed")
        match = re.fullmatch(r"/services/data/(v\d+\.\d)/(.*)", req.path)
        if match is None:
            return self.error(404, "NOT_FOUND", "The requested resource does not exist")
        if not self.authorized(req):
            return self.error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        self.api_used += 1
        version, parts = match.group(1), req.segments()[3:]
        if parts[0] == "query":
            if len(parts) == 2:
                return self._more(version, parts[1])
            return self._query(version, req.param("q") or "", req)
        if parts[0] == "sobjects" and len(parts) >= 2 and parts[1] in self.records:
            sobject = parts[1]
            if len(parts) == 2 and req.method == "POST":
                return self._create(sobject, req)
            if len(parts) == 3 and parts[2] in ("deleted", "updated") and req.method == "GET":
                return self._replication(sobject, parts[2], req)
            if len(parts) == 3:
                return self._record(version, sobject, parts[2], req)
        return self.error(404, "NOT_FOUND", "The requested resource does not exist")

    def _token(self, req: Request) -> Response:
        form = req.form()
        if (form.get("client_id"), form.get("client_secret")) != (self.client_id,
                                                                  self.client_secret):
            return json_response(400, {"error": "invalid_client",
                                       "error_description": "invalid client credentials"})
        grant = form.get("grant_type")
        if grant == "password":
            if self.username is None or (form.get("username"), form.get("password")) != (
                    self.username, self.password):
                return json_response(400, {"error": "invalid_grant",
                                           "error_description": "authentication failure"})
        elif grant != "client_credentials":
            return json_response(400, {"error": "unsupported_grant_type",
                                       "error_description": "grant type not supported"})
        issued = int(self.clock().timestamp() * 1000)
        return json_response(200, {
            "access_token": self.issue_token(), "instance_url": self.url,
            "id": f"{self.url}/id/00D5e0000000001EAA/{INTEGRATION_USER}",
            "token_type": "Bearer", "issued_at": str(issued), "scope": "api",
            "signature": self.new_token_id()})

    # --- reads ----------------------------------------------------------------------

    def _wire(self, version: str, sobject: str, record: dict[str, Any],
              fields: list[str] | None = None) -> dict[str, Any]:
        names = fields or sorted(self.fields_of[sobject])
        out: dict[str, Any] = {"attributes": {
            "type": sobject, "url": f"/services/data/{version}/sobjects/{sobject}/{record['Id']}"}}
        out.update({n: deep(record.get(n)) for n in names})
        return out

    def _query(self, version: str, soql: str, req: Request) -> Response:
        try:
            query = Query(soql, self.fields_of)
        except SoqlError as exc:
            return self.error(400, exc.code, str(exc))
        rows = [self._wire(version, query.sobject, r, query.fields)
                for r in query.run(list(self.records[query.sobject].values()))]
        size = self.page_size
        match = re.search(r"batchSize=(\d+)", req.headers.get("Sforce-Query-Options") or "")
        if match:
            size = max(200, min(int(match.group(1)), 2000))
        return self._page(version, rows, 0, size)

    def _page(self, version: str, rows: list[dict[str, Any]], offset: int, size: int
              ) -> Response:
        page = rows[offset:offset + size]
        body: dict[str, Any] = {"totalSize": len(rows), "done": offset + size >= len(rows)}
        if not body["done"]:
            cursor = f"01g5e{self.new_token_id()[:10]}"
            self.cursors[cursor] = (rows, size)
            body["nextRecordsUrl"] = f"/services/data/{version}/query/{cursor}-{offset + size}"
        body["records"] = page
        return json_response(200, body)

    def _more(self, version: str, locator: str) -> Response:
        cursor, _, offset = locator.rpartition("-")
        found = self.cursors.get(cursor)
        if found is None or not offset.isdigit():
            return self.error(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        rows, size = found
        return self._page(version, rows, int(offset), size)

    def _replication(self, sobject: str, which: str, req: Request) -> Response:
        try:
            start = parse_time(req.param("start") or "")
            end = parse_time(req.param("end") or "")
        except ValueError:
            return self.error(400, "MALFORMED_QUERY",
                              "start and end must be valid dateTime values")
        now = self.clock()
        earliest = now - timedelta(days=MAX_DAYS[which], hours=1)
        if end < start:
            return self.error(400, "INVALID_REPLICATION_DATE", "end date is before start date")
        if start < earliest:
            return self.error(400, "INVALID_REPLICATION_DATE",
                              f"start date cannot be more than {MAX_DAYS[which]} days ago")
        covered = sf_time(min(end, now).replace(second=0, microsecond=0))
        if which == "updated":
            ids = [r["Id"] for r in self.records[sobject].values()
                   if start <= parse_time(r["SystemModstamp"]) <= end]
            return json_response(200, {"ids": ids, "latestDateCovered": covered})
        gone = [{"id": d["id"], "deletedDate": d["deletedDate"]} for d in self.deleted
                if d["sobject"] == sobject and start <= parse_time(d["deletedDate"]) <= end]
        return json_response(200, {"deletedRecords": gone,
                                   "earliestDateAvailable": sf_time(earliest),
                                   "latestDateCovered": covered})

    # --- writes ------------------------------------------------------------------

    def _record(self, version: str, sobject: str, record_id: str, req: Request) -> Response:
        found = next((r for i, r in self.records[sobject].items()
                      if i[:15] == record_id[:15]), None)
        if found is None:
            return self.error(404, "NOT_FOUND", "The requested resource does not exist")
        if req.method == "GET":
            return json_response(200, self._wire(version, sobject, found))
        if req.method == "DELETE":
            self._delete(sobject, found["Id"])
            return Response(204)
        if req.method == "PATCH":
            body = req.json() or {}
            problem = self._check(sobject, body, found)
            if problem is not None:
                return problem
            self._update(sobject, found, body)
            return Response(204)
        return self.error(405, "METHOD_NOT_ALLOWED", "HTTP Method not allowed")

    def _check(self, sobject: str, body: Any, current: dict[str, Any] | None
               ) -> Response | None:
        """Salesforce's validation, as far as the sync can trip over it."""
        if not isinstance(body, dict):
            return self.error(400, "JSON_PARSER_ERROR", "the body must be a JSON object")
        if "Id" in body:  # the record's Id is the URL's, never the body's (create fixture)
            return self.error(400, "INVALID_FIELD",
                              "The Id field should not be specified in the sobject data.")
        for name in body:
            if name not in self.fields_of[sobject]:
                return self.error(400, "INVALID_FIELD", f"No such column '{name}' on sobject "
                                  f"of type {sobject}", [name])
            if name in NOT_WRITABLE:
                return self.error(400, "INVALID_FIELD_FOR_INSERT_UPDATE",
                                  f"Unable to create/update fields: {name}. Please check the "
                                  "security settings of this field and verify that it is "
                                  "read/write for your profile or permission set.", [name])
        for found in (text_problem(sobject, body), picklist_problem(sobject, body)):
            if found is not None:
                return self.error(400, *found)
        merged = {**(current or {}), **body}
        if sobject in PERSON_FIELDS:
            return None
        if sobject == "EventRelation":
            missing = [f for f in ("EventId", "RelationId") if not merged.get(f)]
        else:
            missing = [f for f in ("StartDateTime", "EndDateTime") if not merged.get(f)]
        if missing:
            return self.error(400, "REQUIRED_FIELD_MISSING",
                              f"Required fields are missing: [{', '.join(missing)}]", missing)
        if sobject == "EventRelation":
            return self._check_relation(merged, current)
        who = merged.get("WhoId")
        if "WhoId" in body and who and self._person(str(who), ("Contact", "Lead")) is None:
            return self.error(400, "INVALID_CROSS_REFERENCE_KEY",
                              "Name ID: id value of incorrect type: " + str(who), ["WhoId"])
        try:
            start, end = parse_time(merged["StartDateTime"]), parse_time(merged["EndDateTime"])
        except (TypeError, ValueError):
            return self.error(400, "INVALID_TYPE_ON_FIELD_IN_RECORD",
                              "StartDateTime / EndDateTime: not a valid dateTime",
                              ["StartDateTime", "EndDateTime"])
        limit = MAX_DURATION["all-day" if merged.get("IsAllDayEvent") else "timed"]
        if end < start:
            return self.error(400, "FIELD_INTEGRITY_EXCEPTION",
                              "End Date Time: The end time must be after the start time.",
                              ["EndDateTime"])
        if end - start > limit:
            return self.error(400, "FIELD_INTEGRITY_EXCEPTION",
                              "Event duration cannot exceed 24 hours (14 days for all-day "
                              "events).", ["EndDateTime"])
        if body.get("IsRecurrence") and current is None:
            found = recurrence_problem(merged)
            if found is not None:
                return self.error(400, *found)
        return None

    def _person(self, record_id: str, types: tuple[str, ...] = ("User", "Contact", "Lead")
                ) -> dict[str, Any] | None:
        kind = PERSON_PREFIXES.get(record_id[:3])
        if kind not in types:
            return None
        return next((r for i, r in self.records[str(kind)].items()
                     if i[:15] == record_id[:15]), None)

    def _check_relation(self, merged: dict[str, Any], current: dict[str, Any] | None
                        ) -> Response | None:
        """EventRelation as Salesforce checks it (DOMAIN.md §12): an existing Event that
        is not a Classic occurrence, an existing User / Contact / Lead, a Status of the
        picklist, and a Who of up to 50 Contacts or one Lead."""
        event = next((r for i, r in self.records["Event"].items()
                      if i[:15] == str(merged["EventId"])[:15]), None)
        if event is None:
            return self.error(400, "INVALID_CROSS_REFERENCE_KEY",
                              "invalid cross reference id", ["EventId"])
        if current is None and event.get("RecurrenceActivityId") not in (None, event["Id"]):
            return self.error(400, "FIELD_INTEGRITY_EXCEPTION",
                              "You can't add invitees or related records to an occurrence of "
                              "a recurring event: relate them to the series", ["EventId"])
        relation_id = str(merged["RelationId"])
        person = self._person(relation_id)
        if person is None:
            return self.error(400, "INVALID_CROSS_REFERENCE_KEY",
                              "Relation ID: id value of incorrect type: " + relation_id,
                              ["RelationId"])
        status = merged.get("Status")
        if status is not None and status not in RELATION_STATUSES:
            return self.error(400, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                              f"Status: bad value for restricted picklist field: {status}",
                              ["Status"])
        if current is None and any(
                r["EventId"] == event["Id"] and r["RelationId"][:15] == relation_id[:15]
                for r in self.records["EventRelation"].values()):
            return self.error(400, "DUPLICATE_VALUE", "duplicate value found: RelationId "
                              "duplicates value on record with id", ["RelationId"])
        if merged.get("IsParent"):
            kind = PERSON_PREFIXES[relation_id[:3]]
            parents = [PERSON_PREFIXES.get(r["RelationId"][:3])
                       for r in self.records["EventRelation"].values()
                       if r["EventId"] == event["Id"] and r.get("IsParent")
                       and r is not current] + [kind]
            if kind == "User" or ("Lead" in parents and len(parents) > 1) \
                    or parents.count("Contact") > MAX_WHO_CONTACTS:
                return self.error(400, "FIELD_INTEGRITY_EXCEPTION",
                                  "An event can be related to up to 50 contacts or one lead",
                                  ["IsParent"])
        return None

    def _create(self, sobject: str, req: Request) -> Response:
        body = req.json() or {}
        problem = self._check(sobject, body, None)
        if problem is not None:
            return problem
        record_id = self._new_id(sobject)
        now = sf_time(self.clock())
        record: dict[str, Any] = {name: None for name in self.fields_of[sobject]}
        record.update(Id=record_id, CreatedDate=now, IsDeleted=False)
        if sobject in PERSON_FIELDS:
            record.update(body)
            self._stamp(record)
            self.records[sobject][record_id] = record
            return json_response(201, {"id": record_id, "success": True, "errors": []})
        if sobject == "EventRelation":
            record.update(IsInvitee=False, IsParent=False, IsWhat=False, Status="New")
            record.update(body)
            record["EventId"] = self.records["Event"][record["EventId"]]["Id"]
            self._stamp(record)
            self.records[sobject][record_id] = record
            event = self.records["Event"][record["EventId"]]
            if record["IsInvitee"] and not event["IsGroupEvent"]:
                event["IsGroupEvent"] = True
                self._stamp(event)
            return json_response(201, {"id": record_id, "success": True, "errors": []})
        record.update(IsAllDayEvent=False, IsPrivate=False, ShowAs="Busy", IsChild=False,
                      IsGroupEvent=False, IsRecurrence=False, IsRecurrence2=False,
                      OwnerId=INTEGRATION_USER)
        record.update(body)
        self._derive(record)
        self._stamp(record)
        self.records[sobject][record_id] = record
        if record["IsRecurrence"]:
            record["RecurrenceActivityId"] = record_id
            self._children(record)
        return json_response(201, {"id": record_id, "success": True, "errors": []})

    @staticmethod
    def _derive(record: dict[str, Any]) -> None:
        """Normalised times, ActivityDate and DurationInMinutes, as Salesforce stores them."""
        start, end = parse_time(record["StartDateTime"]), parse_time(record["EndDateTime"])
        record["StartDateTime"], record["EndDateTime"] = sf_time(start), sf_time(end)
        record["ActivityDateTime"] = record["StartDateTime"]
        record["ActivityDate"] = start.date().isoformat()
        record["DurationInMinutes"] = int((end - start).total_seconds() // 60)
        if record.get("RecurrenceStartDateTime"):
            record["RecurrenceStartDateTime"] = sf_time(parse_time(
                record["RecurrenceStartDateTime"]))

    def _children(self, master: dict[str, Any]) -> None:
        """Classic recurrence: one child Event per occurrence, every RecurrenceType,
        expanded in the series' own zone (its wall time holds across DST)."""
        length = parse_time(master["EndDateTime"]) - parse_time(master["StartDateTime"])
        for start in series_dates(master, RECURRENCE_CAPS[str(master["RecurrenceType"])]):
            child = {k: deep(v) for k, v in master.items() if k not in RECURRENCE_FIELDS}
            child.update(Id=self._new_id("Event"), IsRecurrence=False,
                         RecurrenceActivityId=master["Id"],
                         StartDateTime=sf_time(start), EndDateTime=sf_time(start + length))
            self._derive(child)
            self._stamp(child)
            self.records["Event"][child["Id"]] = child

    def _update(self, sobject: str, record: dict[str, Any], body: dict[str, Any]) -> None:
        record.update(deep(body))
        if sobject == "Event":
            self._derive(record)
        self._stamp(record)
        if sobject == "Event" and record.get("IsRecurrence"):
            carried = {k: body[k] for k in SERIES_OVERWRITE if k in body}
            for child in self.records["Event"].values():
                if carried and child.get("RecurrenceActivityId") == record["Id"] \
                        and child["Id"] != record["Id"]:
                    child.update(deep(carried))
                    self._stamp(child)

    def _delete(self, sobject: str, record_id: str) -> None:
        doomed = [record_id]
        if sobject == "Event" and self.records["Event"][record_id].get("IsRecurrence"):
            doomed += [i for i, r in self.records["Event"].items()
                       if r.get("RecurrenceActivityId") == record_id and i != record_id]
        when = self._next_time()
        for gone in doomed:
            self.records[sobject].pop(gone)
            self.deleted.append({"sobject": sobject, "id": gone, "deletedDate": when})
            if sobject == "Event":
                for rel in [i for i, r in self.records["EventRelation"].items()
                            if r["EventId"] == gone]:
                    self.records["EventRelation"].pop(rel)


def sandbox_records(feed: list[dict[str, Any]]) -> tuple[list[dict[str, Any]],
                                                          list[dict[str, Any]]]:
    """Events and EventRelations: the last payload the feed shows per record."""
    events: dict[str, dict[str, Any]] = {}
    relations: dict[str, list[dict[str, Any]]] = {}
    for line in feed:
        if line["kind"] == "salesforce.event":
            payload = line["payload"]
            events[payload["Id"]] = payload
            if line.get("relations") is not None:
                relations[payload["Id"]] = line["relations"]
        elif line["kind"] == "salesforce.deleted":
            events.pop(line["payload"]["id"], None)
            relations.pop(line["payload"]["id"], None)
    return list(events.values()), [r for rels in relations.values() for r in rels]
