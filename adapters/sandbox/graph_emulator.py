"""Microsoft Graph v1.0 calendar and the Entra ID token endpoints, emulated.

Just enough of both for msal 1.39 and ``adapters.graph.client.GraphClient``
(DOMAIN.md §7): the OpenID configuration and client-credentials token
endpoint under ``/{tenant}``, ``calendarView/delta`` with
``odata.maxpagesize`` paging (``$skiptoken`` links, then a ``$deltatoken``
link whose next use returns only what changed, ``@removed`` included),
``GET``/``POST``/``PATCH``/``DELETE`` of events, the extended-property
``$filter``, Graph's error bodies, and change notifications:
``POST``/``PATCH``/``DELETE``/``GET /subscriptions`` refused as Graph refuses
them (HTTP notification URLs, an expiry past Graph's 10,080 minutes for
events or in the past, unknown change types or resources, a clientState over
255 characters), created only after the validation handshake against each
URL succeeds (the token echoed as text/plain with 200 within 10 s), and a
notification POSTed over HTTPS from a thread of its own whenever a subscribed
calendar changes; :meth:`GraphEmulator.lifecycle` sends the lifecycle events.
Writes are refused as Graph refuses them: unknown properties, an
``itemBody.contentType`` that is not text or html, a recurrence missing what
its pattern or range type needs (``RequestBodyRead``), unknown time zones
(``TimeZoneNotSupportedException``).
Text bodies are stored as Exchange stores them (HTML, escaped, ``<br>``), and
series are expanded with dateutil's rrule in their own zone. Writes change the emulated calendars,
so the next delta reports them, with a new ``changeKey`` every time.
"""

from __future__ import annotations

import base64
import hashlib
import html
import queue
import re
import threading
import time as clock_time
import uuid
from datetime import date, datetime, time, timedelta
from itertools import islice
from typing import Any, Literal
from urllib.parse import quote, unquote, urlencode
from zoneinfo import ZoneInfo

import requests
from dateutil.rrule import DAILY, MONTHLY, WEEKLY, YEARLY, rrule
from tzlocal.windows_tz import win_tz

from adapters.sandbox.emulator import (
    WEEKDAYS,
    Clock,
    Emulator,
    Request,
    Response,
    deep,
    json_response,
    utcnow,
)
from adapters.sandbox.tls import TestCA

EVENT_PROPERTIES = frozenset((
    "allowNewTimeProposals", "attendees", "body", "bodyPreview", "cancelledOccurrences", "end",
    "hideAttendees", "iCalUId", "importance", "isAllDay", "isCancelled", "isDraft",
    "isOnlineMeeting", "isOrganizer", "isReminderOn", "location", "locations",
    "multiValueExtendedProperties", "onlineMeetingProvider", "organizer", "originalEndTimeZone",
    "originalStart", "originalStartTimeZone", "recurrence", "reminderMinutesBeforeStart",
    "responseRequested", "responseStatus", "sensitivity", "seriesMasterId", "showAs",
    "singleValueExtendedProperties", "start", "subject", "transactionId", "type", "webLink"))
READ_ONLY = frozenset(("id", "changeKey", "createdDateTime", "lastModifiedDateTime",
                       "@odata.etag", "@odata.type"))
#: What a change of the series master carries to its plain occurrences.
SERIES_FIELDS = ("subject", "body", "bodyPreview", "location", "sensitivity", "showAs",
                 "categories", "importance", "singleValueExtendedProperties")
STUB_FIELDS = ("@odata.type", "@odata.etag", "id", "type", "seriesMasterId", "start", "end")
FILTER = re.compile(r"singleValueExtendedProperties/any\(\s*(\w+):\s*\1/id eq '((?:[^']|'')*)'"
                    r"\s+and\s+\1/value eq '((?:[^']|'')*)'\s*\)", re.IGNORECASE)
ICAL_FILTER = re.compile(r"iCalUId eq '((?:[^']|'')*)'", re.IGNORECASE)
DEFAULT_PAGE = 10
#: Change notifications: Graph's limits for subscriptions to Outlook events.
SUBSCRIPTION_MAX_MINUTES = 10080
SUBSCRIPTION_CHANGE_TYPES = ("created", "updated", "deleted")
SUBSCRIPTION_FIELDS = frozenset((
    "changeType", "notificationUrl", "lifecycleNotificationUrl", "resource",
    "expirationDateTime", "clientState", "latestSupportedTlsVersion", "includeResourceData",
    "encryptionCertificate", "encryptionCertificateId", "notificationQueryOptions",
    "notificationUrlAppId"))
VALIDATION_TIMEOUT = 10.0
EVENTS_RESOURCE = re.compile(r"^/?users/([^/]+)/events$", re.IGNORECASE)
#: ``$expand=singleValueExtendedProperties($filter=id eq '...')``: the only way Graph
#: returns an extended property; delta, create and update answers never carry them.
EXPAND = re.compile(r"singleValueExtendedProperties\(\s*\$filter=id eq '((?:[^']|'')*)'\s*\)",
                    re.IGNORECASE)


def graph_time(when: datetime) -> str:
    """``lastModifiedDateTime`` style: seven fractional digits and ``Z``."""
    return when.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def _parse_time(value: Any) -> datetime | None:
    """A ``lastModifiedDateTime`` (Python reads its seven fractional digits), or None."""
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _instant(value: dict[str, Any] | None) -> datetime | None:
    if not isinstance(value, dict) or not value.get("dateTime"):
        return None
    try:
        when = datetime.fromisoformat(str(value["dateTime"])[:26])
    except ValueError:
        return None
    zone = _zone(str(value.get("timeZone") or "UTC"))
    return when.replace(tzinfo=zone or ZoneInfo("UTC"))


def _zone(name: str) -> ZoneInfo | None:
    """A Windows (or IANA) zone name as Exchange knows it (CLDR's table); None: unknown."""
    if name in ("UTC", "tzone://Microsoft/Utc", "Coordinated Universal Time"):
        return ZoneInfo("UTC")
    try:
        return ZoneInfo(win_tz.get(name, name))
    except (KeyError, ValueError):
        return None


#: recurrencePattern / recurrenceRange (Graph v1.0): the enums and what each type needs.
PATTERN_TYPES = {"daily": (), "weekly": ("daysOfWeek",), "absoluteMonthly": ("dayOfMonth",),
                 "relativeMonthly": ("daysOfWeek",),
                 "absoluteYearly": ("dayOfMonth", "month"),
                 "relativeYearly": ("daysOfWeek", "month")}
RANGE_TYPES = {"endDate": ("startDate", "endDate"), "noEnd": ("startDate",),
               "numbered": ("startDate", "numberOfOccurrences")}
INDEXES = {"first": 1, "second": 2, "third": 3, "fourth": 4, "last": -1}
_FREQS: dict[str, Literal[0, 1, 2, 3, 4, 5, 6]] = {
    "daily": DAILY, "weekly": WEEKLY, "absoluteMonthly": MONTHLY, "relativeMonthly": MONTHLY,
    "absoluteYearly": YEARLY, "relativeYearly": YEARLY}


def _recurrence_problem(rec: Any) -> str | None:
    """What Graph says of a patternedRecurrence it cannot store."""
    if rec is None:
        return None
    if not isinstance(rec, dict) or not isinstance(rec.get("pattern"), dict) \
            or not isinstance(rec.get("range"), dict):
        return "Recurrence: pattern and range are required."
    pattern, range_ = rec["pattern"], rec["range"]
    kind, span = pattern.get("type"), range_.get("type")
    if kind not in PATTERN_TYPES:
        return f"Recurrence pattern type '{kind}' is not valid."
    if span not in RANGE_TYPES:
        return f"Recurrence range type '{span}' is not valid."
    missing = [f"pattern.{n}" for n in PATTERN_TYPES[kind] if not pattern.get(n)]
    missing += [f"range.{n}" for n in RANGE_TYPES[span] if not range_.get(n)]
    if missing:
        return f"Recurrence is missing required properties: {', '.join(missing)}."
    if int(pattern.get("interval") or 0) < 1:
        return "Recurrence pattern interval must be 1 or more."
    bad = [d for d in pattern.get("daysOfWeek") or [] if d not in WEEKDAYS]
    if bad or (pattern.get("index") or "first") not in INDEXES:
        return f"Recurrence pattern has invalid values: {bad or pattern.get('index')}."
    return None


def occurrence_starts(rec: dict[str, Any], start: datetime, limit: int) -> list[datetime]:
    """A series' occurrence starts (aware), expanded in its zone with dateutil's rrule."""
    pattern, range_ = rec["pattern"], rec["range"]
    kind = pattern["type"]
    zone = _zone(str(range_.get("recurrenceTimeZone") or "")) or start.tzinfo or ZoneInfo("UTC")
    local = start.astimezone(zone)
    first = date.fromisoformat(range_.get("startDate") or local.date().isoformat())
    days = [WEEKDAYS.index(d) for d in pattern.get("daysOfWeek") or []]  # Monday = 0
    relative = kind.startswith("relative")
    rule = rrule(
        _FREQS[kind], dtstart=datetime.combine(first, local.time()),
        interval=int(pattern.get("interval") or 1),
        wkst=WEEKDAYS.index(pattern.get("firstDayOfWeek") or "sunday"),
        count=int(range_["numberOfOccurrences"]) if range_["type"] == "numbered" else None,
        until=datetime.combine(date.fromisoformat(range_["endDate"]), time(23, 59, 59))
        if range_["type"] == "endDate" else None,
        byweekday=days if kind == "weekly" or relative else None,
        bysetpos=INDEXES[pattern.get("index") or "first"] if relative else None,
        bymonthday=int(pattern["dayOfMonth"]) if kind.startswith("absolute") else None,
        bymonth=int(pattern["month"]) if kind.endswith("Yearly") else None)
    return [d.replace(tzinfo=zone) for d in islice(rule, limit)]


#: ``itemBody.contentType`` (Graph's ``bodyType`` enum).
BODY_TYPES = ("text", "html")


def _body_problem(body: Any) -> str | None:
    """Graph refuses an itemBody whose contentType is not a bodyType."""
    if body is None:
        return None
    if not isinstance(body, dict):
        return "Invalid body: an itemBody object is required."
    kind = body.get("contentType", "text")
    if kind not in BODY_TYPES:
        return (f"Cannot convert the literal '{kind}' to the expected type "
                "'microsoft.graph.bodyType'.")
    if not isinstance(body.get("content", ""), str):
        return "Invalid body: content must be a string."
    return None


def _stored_body(body: dict[str, Any]) -> dict[str, Any]:
    """Exchange keeps bodies as HTML: a text body is escaped, its line breaks become <br>."""
    content = str(body.get("content") or "")
    if body.get("contentType", "text") == "html":
        return {"contentType": "html", "content": content}
    markup = html.escape(content).replace("\r\n", "\n").replace("\n", "<br>\r\n")
    return {"contentType": "html", "content": "<html><head><meta http-equiv=\"Content-Type\" "
            "content=\"text/html; charset=utf-8\"></head><body><div class=\"PlainText\">"
            + markup + "</div></body></html>"}


def _expanded(req: Request) -> str | None:
    """The extended property id a request asks to see, if any."""
    match = EXPAND.fullmatch((req.param("$expand") or "").strip())
    return match.group(1).replace("''", "'") if match else None


def _window_time(value: str) -> datetime:
    when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=ZoneInfo("UTC"))


class GraphEmulator(Emulator):
    """Mailboxes of Graph events, delta sessions, msal's endpoints, faults."""

    name = "graph"

    def __init__(self, mailboxes: dict[str, list[dict[str, Any]]] | None = None, *,
                 tenant: str = "contoso", client_id: str = "sandbox-graph-client",
                 client_secret: str = "sandbox-graph-secret", ca: TestCA | None = None,
                 clock: Clock = utcnow, occurrence_stubs: bool = False) -> None:
        super().__init__(ca=ca, clock=clock)
        self.tenant = tenant
        self.client_id, self.client_secret = client_id, client_secret
        self.occurrence_stubs = occurrence_stubs
        self.events: dict[str, dict[str, dict[str, Any]]] = {}
        self.changes: dict[str, list[tuple[int, str]]] = {}
        self.seq = 0
        self.delta_tokens: dict[str, dict[str, Any]] = {}
        self.skip_tokens: dict[str, dict[str, Any]] = {}
        self.counter = 0
        #: Change notifications: subscriptions by id, events each mailbox has shown
        #: (so a change is "created" or "updated"), and every delivery made (a test's
        #: timeline: monotonic time, subscription, what, the endpoint's HTTP status).
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.known: dict[str, set[str]] = {}
        self.deliveries: list[dict[str, Any]] = []
        #: The CA file the endpoints' certificates are checked against (None: this
        #: emulator's own CA, which a test's endpoint uses too).
        self.notify_ca: str | None = None
        #: Where next and delta links point (None: this emulator). A test sets another
        #: origin to play a server whose links lead elsewhere (the client must refuse).
        self.link_origin: str | None = None
        self._outgoing: queue.Queue[tuple[str, dict[str, Any]] | None] = queue.Queue()
        self._sender: threading.Thread | None = None
        for mailbox, events in (mailboxes or {}).items():
            self.add_mailbox(mailbox)
            for event in events:
                self.put_event(mailbox, event)

    # --- state a test can set and read ------------------------------------------

    def add_mailbox(self, mailbox: str) -> None:
        with self.lock:
            self.events.setdefault(mailbox.lower(), {})
            self.changes.setdefault(mailbox.lower(), [])

    def put_event(self, mailbox: str, event: dict[str, Any]) -> None:
        """Store an event as given (an outside change the next delta reports). A save is
        never modified before the version it replaces: a ``lastModifiedDateTime`` older
        than the stored one (a test edited a payload it read earlier) becomes the later
        of the stored one and now, as Exchange would stamp it."""
        with self.lock:
            box = mailbox.lower()
            self.add_mailbox(box)
            event = deep(event)
            stored = self.events[box].get(event["id"])
            given, held = (_parse_time(e.get("lastModifiedDateTime"))
                           for e in (event, stored or {}))
            if given is not None and held is not None and given < held:
                event["lastModifiedDateTime"] = graph_time(max(held, self.clock()))
            self.events[box][event["id"]] = event
            self._changed(box, event["id"])

    def remove_event(self, mailbox: str, event_id: str) -> None:
        with self.lock:
            box = mailbox.lower()
            self.events[box].pop(event_id, None)
            self._changed(box, event_id)

    def event(self, mailbox: str, event_id: str) -> dict[str, Any] | None:
        with self.lock:
            found = self.events.get(mailbox.lower(), {}).get(event_id)
            return deep(found) if found is not None else None

    def calendar(self, mailbox: str) -> list[dict[str, Any]]:
        with self.lock:
            return deep(list(self.events.get(mailbox.lower(), {}).values()))

    def expire_delta_tokens(self) -> None:
        """Every delta and skip token becomes unknown: the next use gets 410."""
        with self.lock:
            self.delta_tokens.clear()
            self.skip_tokens.clear()

    def state(self) -> dict[str, Any]:
        """Everything needed to resume later (``from_state``): calendars and delta tokens."""
        with self.lock:
            return deep({"events": self.events, "changes": self.changes, "seq": self.seq,
                         "delta_tokens": self.delta_tokens, "skip_tokens": self.skip_tokens,
                         "counter": self.counter})

    def load_state(self, state: dict[str, Any]) -> None:
        with self.lock:
            self.events = deep(state["events"])
            self.changes = {k: [(int(s), str(i)) for s, i in v]
                            for k, v in state["changes"].items()}
            self.seq, self.counter = int(state["seq"]), int(state["counter"])
            self.delta_tokens = deep(state["delta_tokens"])
            self.skip_tokens = deep(state["skip_tokens"])
            self.known = {m: set(box) for m, box in self.events.items()}

    def _changed(self, mailbox: str, event_id: str) -> None:
        self.seq += 1
        self.changes[mailbox].append((self.seq, event_id))
        known = self.known.setdefault(mailbox, set())
        event = self.events[mailbox].get(event_id)
        change = "deleted" if event is None else "updated" if event_id in known else "created"
        if event is None:
            known.discard(event_id)
        else:
            known.add(event_id)
        self._notify_change(mailbox, event_id, change, event)

    # --- change notifications -------------------------------------------------------

    def stop(self) -> None:
        if self._sender is not None:
            self._outgoing.put(None)
            self._sender.join(timeout=15)
            self._sender = None
        super().stop()

    def _live_subscriptions(self, mailbox: str | None = None) -> list[dict[str, Any]]:
        """Subscriptions not yet expired (an expired one is gone, as in Graph)."""
        now = self.clock()
        for sub_id, sub in list(self.subscriptions.items()):
            if _window_time(sub["expirationDateTime"]) <= now:
                del self.subscriptions[sub_id]
        return [s for s in self.subscriptions.values()
                if mailbox is None or s["_mailbox"] == mailbox]

    def _notify_change(self, mailbox: str, event_id: str, change: str,
                       event: dict[str, Any] | None) -> None:
        for sub in self._live_subscriptions(mailbox):
            if change not in sub["changeType"].split(","):
                continue
            path = f"Users/{mailbox}/Events/{event_id}"
            item = {"subscriptionId": sub["id"],
                    "subscriptionExpirationDateTime": sub["expirationDateTime"],
                    "changeType": change, "resource": path, "tenantId": self.tenant,
                    "resourceData": {"@odata.type": "#Microsoft.Graph.Event",
                                     "@odata.id": path, "id": event_id,
                                     **({"@odata.etag": event["@odata.etag"]}
                                        if event and event.get("@odata.etag") else {})}}
            if sub.get("clientState") is not None:
                item["clientState"] = sub["clientState"]
            self._send(sub["notificationUrl"], item)

    def lifecycle(self, subscription_id: str, event: str) -> None:
        """Send a lifecycle notification (``reauthorizationRequired``, ``missed`` or
        ``subscriptionRemoved``, which also deletes the subscription, as Graph does) to
        the subscription's lifecycleNotificationUrl."""
        with self.lock:
            sub = self.subscriptions[subscription_id]
            if event == "subscriptionRemoved":
                del self.subscriptions[subscription_id]
            url = sub.get("lifecycleNotificationUrl")
            if not url:
                return  # Graph sends lifecycle events only to that URL
            item = {"lifecycleEvent": event, "subscriptionId": sub["id"],
                    "subscriptionExpirationDateTime": sub["expirationDateTime"],
                    "resource": sub["resource"], "tenantId": self.tenant,
                    "resourceData": {"@odata.type": "#microsoft.graph.subscription",
                                     "@odata.id": f"subscriptions/{sub['id']}",
                                     "id": sub["id"]}}
            if sub.get("clientState") is not None:
                item["clientState"] = sub["clientState"]
            self._send(url, item)

    def _send(self, url: str, item: dict[str, Any]) -> None:
        if self._sender is None:
            self._sender = threading.Thread(target=self._deliver, name="graph-notify",
                                            daemon=True)
            self._sender.start()
        self._outgoing.put((url, item))

    def _deliver(self) -> None:
        """POST what is queued, batched per URL as Graph batches (a ``value`` array)."""
        session = requests.Session()
        while True:
            first = self._outgoing.get()
            if first is None:
                return
            batch = [first]
            while True:
                try:
                    more = self._outgoing.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._outgoing.put(None)
                    break
                batch.append(more)
            by_url: dict[str, list[dict[str, Any]]] = {}
            for url, item in batch:
                by_url.setdefault(url, []).append(item)
            for url, items in by_url.items():
                try:
                    status = session.post(url, json={"value": items}, timeout=10,
                                          verify=self.notify_ca or self.ca_file).status_code
                except requests.RequestException:
                    status = 0  # Graph retries a while, then drops it: a "missed" later
                with self.lock:
                    for item in items:
                        self.deliveries.append({
                            "at": clock_time.monotonic(), "subscription": item["subscriptionId"],
                            "what": item.get("changeType") or item.get("lifecycleEvent"),
                            "resource": item["resource"], "status": status})

    def _validate_endpoint(self, url: str) -> str | None:
        """Graph's handshake: POST ?validationToken=...; 200 text/plain with it, within 10 s."""
        token = f"Validation: Testing client application reachability {uuid.uuid4()}"
        try:
            resp = requests.post(url, params={"validationToken": token}, data=b"",
                                 headers={"Content-Type": "text/plain; charset=utf-8"},
                                 timeout=VALIDATION_TIMEOUT, verify=self.notify_ca or self.ca_file)
        except requests.Timeout:
            return "Subscription validation request timed out."
        except requests.RequestException as exc:
            return f"Subscription validation request failed. {type(exc).__name__}"
        kind = resp.headers.get("Content-Type", "")
        if resp.status_code != 200 or resp.text != token or not kind.startswith("text/plain"):
            return ("Subscription validation request failed. Notification endpoint must "
                    "respond with 200 OK to validation request.")
        return None

    def _expiry_problem(self, value: Any) -> str | None:
        try:
            when = _window_time(str(value))
        except ValueError:
            return f"Invalid expirationDateTime: '{str(value)[:40]}'."
        now = self.clock()
        if when <= now:
            return "Subscription expiration must be in the future."
        if when > now + timedelta(minutes=SUBSCRIPTION_MAX_MINUTES):
            return (f"Subscription expiration can only be {SUBSCRIPTION_MAX_MINUTES} minutes "
                    "in the future.")
        return None

    def _subscription_wire(self, sub: dict[str, Any]) -> dict[str, Any]:
        return {"@odata.context": f"{self.url}/v1.0/$metadata#subscriptions/$entity",
                **{k: v for k, v in sub.items() if not k.startswith("_")}}

    def _subscriptions(self, req: Request, rest: list[str]) -> Response:
        if not rest and req.method == "GET":
            return json_response(200, {
                "@odata.context": f"{self.url}/v1.0/$metadata#subscriptions",
                "value": [self._subscription_wire(s) for s in self._live_subscriptions()]})
        if not rest and req.method == "POST":
            return self._subscribe(req)
        if len(rest) != 1:
            return self.error(400, "BadRequest", f"Unsupported segment in {req.path}")
        live = {s["id"]: s for s in self._live_subscriptions()}
        sub = live.get(rest[0])
        if sub is None:
            return self.error(404, "ResourceNotFound", "The object was not found.")
        if req.method == "GET":
            return json_response(200, self._subscription_wire(sub))
        if req.method == "DELETE":
            del self.subscriptions[sub["id"]]
            return Response(204)
        if req.method == "PATCH":
            body = req.json() if req.body else {}
            if not isinstance(body, dict) or set(body) - {"expirationDateTime",
                                                          "notificationUrl"}:
                return self.error(400, "ValidationError", "Only expirationDateTime and "
                                  "notificationUrl can be updated.")
            problem = self._expiry_problem(body.get("expirationDateTime"))
            if problem:
                return self.error(400, "ValidationError", problem)
            sub["expirationDateTime"] = body["expirationDateTime"]
            return json_response(200, self._subscription_wire(sub))
        return self.error(405, "ErrorInvalidRequest",
                          f"{req.method} {req.path} is not supported by the emulator")

    def _subscribe(self, req: Request) -> Response:
        body = req.json() if req.body else None
        if not isinstance(body, dict):
            return self.error(400, "InvalidRequest", "The request body must be a JSON object.")
        unknown = set(body) - SUBSCRIPTION_FIELDS
        if unknown:
            return self.error(400, "InvalidRequest", f"The property '{sorted(unknown)[0]}' "
                              "does not exist on type 'microsoft.graph.subscription'.")
        for name in ("changeType", "notificationUrl", "resource", "expirationDateTime"):
            if not body.get(name):
                return self.error(400, "ValidationError", f"{name} is a required property.")
        changes = str(body["changeType"]).split(",")
        if any(c not in SUBSCRIPTION_CHANGE_TYPES for c in changes):
            return self.error(400, "ValidationError",
                              f"Invalid changeType '{body['changeType']}'.")
        urls = [str(body["notificationUrl"])] + ([str(body["lifecycleNotificationUrl"])]
                                                 if body.get("lifecycleNotificationUrl") else [])
        for url in urls:
            if not url.lower().startswith("https://"):
                return self.error(400, "ValidationError",
                                  "The Notification Url must be an HTTPS url.")
        match = EVENTS_RESOURCE.match(str(body["resource"]))
        if match is None:
            return self.error(400, "ExtensionError", "Operation: Create; Exception: "
                              f"[Status Code: BadRequest; Reason: The resource "
                              f"'{str(body['resource'])[:80]}' is not supported.]")
        mailbox = unquote(match.group(1)).lower()
        if mailbox not in self.events:
            return self.error(404, "ErrorInvalidUser",
                              f"The requested user '{match.group(1)}' is invalid.")
        problem = self._expiry_problem(body["expirationDateTime"])
        if problem:
            return self.error(400, "ValidationError", problem)
        state = body.get("clientState")
        if state is not None and (not isinstance(state, str) or len(state) > 255):
            return self.error(400, "ValidationError",
                              "clientState must be a string of at most 255 characters.")
        for url in dict.fromkeys(urls):
            problem = self._validate_endpoint(url)
            if problem:
                return self.error(400, "ValidationError", problem)
        sub = {"id": str(uuid.uuid4()), "resource": str(body["resource"]),
               "applicationId": self.client_id, "changeType": ",".join(changes),
               "clientState": state, "notificationUrl": urls[0],
               "notificationQueryOptions": None,
               "lifecycleNotificationUrl": body.get("lifecycleNotificationUrl"),
               "expirationDateTime": body["expirationDateTime"],
               "creatorId": self.client_id, "includeResourceData": None,
               "latestSupportedTlsVersion": body.get("latestSupportedTlsVersion", "v1_2"),
               "encryptionCertificate": None, "encryptionCertificateId": None,
               "notificationUrlAppId": None, "_mailbox": mailbox}
        self.subscriptions[sub["id"]] = sub
        return json_response(201, self._subscription_wire(sub))

    # --- HTTP -------------------------------------------------------------------

    def error(self, status: int, code: str, message: str) -> Response:
        now = self.clock()
        return json_response(status, {"error": {"code": code, "message": message, "innerError": {
            "date": now.strftime("%Y-%m-%dT%H:%M:%S"), "request-id": self.new_token_id(),
            "client-request-id": self.new_token_id()}}})

    def is_write(self, req: Request) -> bool:
        return super().is_write(req) and req.path.startswith("/v1.0/")

    def changes_state(self, req: Request) -> bool:
        """Writes, and delta reads: each hands out a skip or delta token kept in the state."""
        return self.is_write(req) or (req.method == "GET"
                                      and req.path.endswith("/calendarView/delta"))

    def concurrency_key(self, req: Request) -> str | None:
        """A mailbox: the service must never have two of its calls in flight at once."""
        parts = [p for p in req.path.split("/") if p]
        return parts[2].lower() if len(parts) >= 3 and parts[:2] == ["v1.0", "users"] else None

    def handle(self, req: Request) -> Response:
        parts = req.segments()
        if len(parts) >= 2 and parts[0] == self.tenant:
            return self._identity(req, parts[1:])
        if not parts or parts[0] != "v1.0":
            return self.error(404, "UnknownResource", f"no resource at {req.path}")
        if not self.authorized(req):
            return self.error(401, "InvalidAuthenticationToken",
                              "Access token has expired or is not yet valid.")
        if len(parts) >= 2 and parts[1] == "subscriptions":
            return self._subscriptions(req, parts[2:])
        if len(parts) < 4 or parts[1] != "users":
            return self.error(400, "BadRequest", f"Unsupported segment in {req.path}")
        mailbox = parts[2].lower()
        if mailbox not in self.events:
            return self.error(404, "ErrorInvalidUser",
                              f"The requested user '{parts[2]}' is invalid.")
        rest = parts[3:]
        if rest == ["calendarView", "delta"] and req.method == "GET":
            return self._delta(req, mailbox)
        if rest == ["calendarView"] and req.method == "GET":
            return self._view(req, mailbox, None)
        if len(rest) == 3 and rest[0] == "events" and rest[2] == "instances" \
                and req.method == "GET":
            if rest[1] not in self.events[mailbox]:
                return self.error(404, "ErrorItemNotFound",
                                  "The specified object was not found in the store.")
            return self._view(req, mailbox, rest[1])
        if rest == ["events"]:
            if req.method == "GET":
                return self._find(req, mailbox)
            if req.method == "POST":
                return self._create(req, mailbox)
        if len(rest) == 2 and rest[0] == "events":
            event_id = rest[1]
            if event_id not in self.events[mailbox]:
                return self.error(404, "ErrorItemNotFound",
                                  "The specified object was not found in the store.")
            if req.method == "GET":
                return json_response(200, self._wire(mailbox, self.events[mailbox][event_id],
                                                     expand=_expanded(req)))
            if req.method == "PATCH":
                return self._patch(req, mailbox, event_id)
            if req.method == "DELETE":
                self._delete_series(mailbox, event_id)
                return Response(204)
        return self.error(405, "ErrorInvalidRequest",
                          f"{req.method} {req.path} is not supported by the emulator")

    # --- identity (what msal asks) ---------------------------------------------------

    def _identity(self, req: Request, rest: list[str]) -> Response:
        base = f"{self.url}/{self.tenant}"
        if rest == ["v2.0", ".well-known", "openid-configuration"] and req.method == "GET":
            return json_response(200, {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "issuer": f"{base}/v2.0", "jwks_uri": f"{base}/discovery/v2.0/keys",
                "token_endpoint_auth_methods_supported": ["client_secret_post",
                                                          "private_key_jwt",
                                                          "client_secret_basic"],
                "response_types_supported": ["code", "id_token", "code id_token"],
                "tenant_region_scope": "NA"})
        if rest == ["oauth2", "v2.0", "token"] and req.method == "POST":
            form = req.form()
            if form.get("grant_type") != "client_credentials":
                return json_response(400, {"error": "unsupported_grant_type",
                                           "error_description": "AADSTS70003: The app "
                                           "requested an unsupported grant type."})
            if (form.get("client_id"), form.get("client_secret")) != (self.client_id,
                                                                      self.client_secret):
                return json_response(401, {
                    "error": "invalid_client", "error_codes": [7000215],
                    "error_description": "AADSTS7000215: Invalid client secret provided."})
            return json_response(200, {"token_type": "Bearer", "expires_in": 3599,
                                       "ext_expires_in": 3599,
                                       "access_token": self.issue_token()})
        return self.error(404, "UnknownResource", f"no identity endpoint at {req.path}")

    # --- delta --------------------------------------------------------------------

    def _delta(self, req: Request, mailbox: str) -> Response:
        page_size = DEFAULT_PAGE
        match = re.search(r"odata\.maxpagesize\s*=\s*(\d+)", req.headers.get("Prefer") or "")
        if match:
            page_size = max(int(match.group(1)), 1)
        skip, delta = req.param("$skiptoken"), req.param("$deltatoken")
        if skip is not None or delta is not None:
            session = (self.skip_tokens.get(skip) if skip is not None
                       else self.delta_tokens.get(str(delta)))
            if session is None or session["mailbox"] != mailbox:
                return self.error(410, "syncStateNotFound",
                                  "The sync state generation is not found or has expired. "
                                  "Please restart the sync with a full sync.")
            if delta is not None:
                session = self._round(mailbox, session["start"], session["end"],
                                      since=int(session["seq"]))
            # A skip token stays valid: a client may fetch the same page again.
        else:
            start, end = req.param("startDateTime"), req.param("endDateTime")
            if not start or not end:
                return self.error(400, "ErrorInvalidParameter", "This request requires a time "
                                  "window specified by the query string parameters "
                                  "StartDateTime and EndDateTime.")
            session = self._round(mailbox, start, end, since=None)
        items: list[dict[str, Any]] = session["items"]
        page, remaining = items[:page_size], items[page_size:]
        link = f"{self.link_origin or self.url}/v1.0/users/{quote(mailbox)}/calendarView/delta?"
        body: dict[str, Any] = {"@odata.context": f"{self.url}/v1.0/$metadata#Collection(event)"}
        if remaining:
            token = self.new_token_id()
            self.skip_tokens[token] = {**session, "items": remaining}
            body["@odata.nextLink"] = link + f"$skiptoken={token}"
        else:
            token = self.new_token_id()
            self.delta_tokens[token] = {k: session[k] for k in ("mailbox", "start", "end", "seq")}
            body["@odata.deltaLink"] = link + f"$deltatoken={token}"
        body["value"] = page
        return json_response(200, body)

    def _view(self, req: Request, mailbox: str, master_id: str | None) -> Response:
        """``calendarView`` (singles, occurrences, exceptions in the window) or one series'
        ``instances``, paged with ``$skip`` as Graph pages them."""
        start, end = req.param("startDateTime"), req.param("endDateTime")
        if not start or not end:
            return self.error(400, "ErrorInvalidParameter", "This request requires a time "
                              "window specified by the query string parameters "
                              "StartDateTime and EndDateTime.")
        page_size = DEFAULT_PAGE
        match = re.search(r"odata\.maxpagesize\s*=\s*(\d+)", req.headers.get("Prefer") or "")
        if match:
            page_size = max(int(match.group(1)), 1)
        lo, hi = _window_time(start), _window_time(end)
        box = self.events[mailbox]
        rows = [e for e in box.values() if e.get("type") != "seriesMaster"
                and (master_id is None or e.get("seriesMasterId") == master_id)
                and self._overlaps(e, lo, hi)]
        rows.sort(key=lambda e: (e["start"]["dateTime"], e["id"]))
        skip = int(req.param("$skip") or 0)
        page = rows[skip:skip + page_size]
        body: dict[str, Any] = {
            "@odata.context": f"{self.url}/v1.0/$metadata#Collection(event)",
            "value": [self._wire(mailbox, e, expand=_expanded(req)) for e in page]}
        if skip + page_size < len(rows):
            query = {"startDateTime": start, "endDateTime": end, "$skip": str(skip + page_size)}
            if req.param("$expand"):
                query["$expand"] = str(req.param("$expand"))
            path = "calendarView" if master_id is None else f"events/{master_id}/instances"
            body["@odata.nextLink"] = (f"{self.link_origin or self.url}/v1.0/users/"
                                       f"{quote(mailbox)}/{path}?"
                                       + urlencode(query, quote_via=quote))
        return json_response(200, body)

    def _round(self, mailbox: str, start: str, end: str, since: int | None) -> dict[str, Any]:
        """A delta round frozen now: the items to page through and the state it ends at."""
        lo, hi = _window_time(start), _window_time(end)
        box = self.events[mailbox]
        visible = {i for i, e in box.items() if self._in_window(box, e, lo, hi)}
        if since is None:
            ids = sorted(visible, key=lambda i: (box[i].get("type") != "seriesMaster",
                                                 box[i]["start"]["dateTime"], i))
        else:
            changed: dict[str, int] = {}
            for seq, event_id in self.changes[mailbox]:
                if seq > since:
                    changed[event_id] = seq
            ids = sorted(changed, key=lambda i: changed[i])
        items = []
        for event_id in ids:
            if event_id in visible:
                items.append(self._wire(mailbox, box[event_id], delta=True))
            else:
                items.append({"@odata.type": "#microsoft.graph.event", "id": event_id,
                              "@removed": {"reason": "deleted"}})
        return {"mailbox": mailbox, "start": start, "end": end, "seq": self.seq, "items": items}

    def _in_window(self, box: dict[str, dict[str, Any]], event: dict[str, Any],
                   lo: datetime, hi: datetime) -> bool:
        if event.get("type") == "seriesMaster":
            return any(self._in_window(box, e, lo, hi) for e in box.values()
                       if e.get("seriesMasterId") == event["id"]) or self._overlaps(event, lo, hi)
        return self._overlaps(event, lo, hi)

    @staticmethod
    def _overlaps(event: dict[str, Any], lo: datetime, hi: datetime) -> bool:
        start, end = _instant(event.get("start")), _instant(event.get("end"))
        return start is not None and end is not None and start < hi and end > lo

    def _wire(self, mailbox: str, event: dict[str, Any], delta: bool = False,
              expand: str | None = None) -> dict[str, Any]:
        if delta and self.occurrence_stubs and event.get("type") == "occurrence":
            return {k: deep(event[k]) for k in STUB_FIELDS if k in event}
        out = deep(event)
        props = out.pop("singleValueExtendedProperties", None) or []
        wanted = [p for p in props if expand is not None and p["id"].lower() == expand.lower()]
        if wanted:
            out["singleValueExtendedProperties"] = wanted
        return out

    # --- finding, writing ----------------------------------------------------------

    def _find(self, req: Request, mailbox: str) -> Response:
        flt = req.param("$filter")
        events = list(self.events[mailbox].values())
        by_ical = ICAL_FILTER.fullmatch(flt.strip()) if flt else None
        if by_ical is not None:
            value = by_ical.group(1).replace("''", "'")
            events = [e for e in events if e.get("iCalUId") == value]
        elif flt:
            match = FILTER.fullmatch(flt.strip())
            if match is None:
                return self.error(400, "ErrorInvalidUrlQueryFilter",
                                  f"The emulator does not support this filter: {flt}")
            prop, value = (g.replace("''", "'") for g in match.group(2, 3))
            events = [e for e in events if any(
                p.get("id", "").lower() == prop.lower() and p.get("value") == value
                for p in e.get("singleValueExtendedProperties") or [])]
        return json_response(200, {
            "@odata.context": f"{self.url}/v1.0/$metadata#users('{mailbox}')/events",
            "value": [self._wire(mailbox, e, expand=_expanded(req)) for e in events]})

    def _validate(self, body: Any) -> tuple[str, str] | None:
        """Graph's refusal of a write body: (error code, message), or None."""
        if not isinstance(body, dict):
            return "RequestBodyRead", "The request body must be a JSON object."
        for name in body:
            if name not in EVENT_PROPERTIES and name not in READ_ONLY and name != "categories":
                return "RequestBodyRead", (
                    f"The property '{name}' does not exist on type 'microsoft.graph.event'. "
                    "Make sure to only use property names that are defined by the type.")
        zones = [str((body.get(name) or {}).get("timeZone") or "") for name in ("start", "end")
                 if isinstance(body.get(name), dict)]
        rec = body.get("recurrence")
        if isinstance(rec, dict) and isinstance(rec.get("range"), dict):
            zones.append(str(rec["range"].get("recurrenceTimeZone") or ""))
        for zone in zones:
            if zone and _zone(zone) is None:  # Graph's own code for it, not RequestBodyRead
                return "TimeZoneNotSupportedException", (
                    "A valid TimeZone value must be specified. The following TimeZone value "
                    f"is not supported: '{zone}'.")
        for name in ("start", "end"):
            if name in body and _instant(body[name]) is None:
                return "RequestBodyRead", (
                    f"Invalid {name}: a dateTimeTimeZone with a dateTime is required.")
        problem = _body_problem(body.get("body")) or _recurrence_problem(rec)
        return ("RequestBodyRead", problem) if problem else None

    def _next_id(self, mailbox: str, salt: str) -> str:
        self.counter += 1
        raw = hashlib.sha256(f"{mailbox}/{salt}/{self.counter}".encode()).digest()[:30]
        return "AAMkAG" + base64.b64encode(raw).decode().replace("/", "-").replace("+", "_")

    def _stamp(self, event: dict[str, Any]) -> None:
        """What Exchange does on every save: a new changeKey and modification time."""
        self.counter += 1
        key = base64.b64encode(hashlib.sha256(
            f"{event['id']}/{self.counter}".encode()).digest()[:18]).decode()
        event["changeKey"] = key
        event["@odata.etag"] = f'W/"{key}"'
        event["lastModifiedDateTime"] = graph_time(self.clock())

    def _create(self, req: Request, mailbox: str) -> Response:
        body = req.json() if req.body else {}
        problem = self._validate(body)
        if problem:
            return self.error(400, *problem)
        now = graph_time(self.clock())
        event_id = self._next_id(mailbox, "event")
        uid = hashlib.sha256(event_id.encode()).hexdigest().upper()[:32]
        zone = str((body.get("start") or {}).get("timeZone") or "UTC")
        event: dict[str, Any] = {
            "@odata.type": "#microsoft.graph.event", "id": event_id,
            "createdDateTime": now, "categories": [], "originalStartTimeZone": zone,
            "originalEndTimeZone": zone,
            "iCalUId": "040000008200E00074C5B7101A82E00800000000" + uid,
            "reminderMinutesBeforeStart": 15, "isReminderOn": True, "subject": "",
            "bodyPreview": "", "importance": "normal", "sensitivity": "normal",
            "isAllDay": False, "isCancelled": False, "isOrganizer": True,
            "responseRequested": True, "seriesMasterId": None, "showAs": "busy",
            "type": "singleInstance",
            "responseStatus": {"response": "organizer", "time": "0001-01-01T00:00:00Z"},
            "body": {"contentType": "html", "content": ""}, "start": None, "end": None,
            "location": {"displayName": "", "locationType": "default"}, "recurrence": None,
            "attendees": [], "organizer": {"emailAddress": {"name": mailbox,
                                                            "address": mailbox}}}
        self._apply(event, body)
        if event.get("recurrence"):
            event["type"] = "seriesMaster"
        self._stamp(event)
        self.events[mailbox][event_id] = event
        self._changed(mailbox, event_id)
        if event["type"] == "seriesMaster":
            self._expand(mailbox, event)
        return json_response(201, self._wire(mailbox, event))

    def _apply(self, event: dict[str, Any], body: dict[str, Any]) -> None:
        for name, value in body.items():
            if name in READ_ONLY:
                continue
            if name == "singleValueExtendedProperties":
                props = {p["id"].lower(): p for p in event.get(name) or []}
                props.update({p["id"].lower(): {"id": p["id"], "value": p["value"]}
                              for p in value or []})
                event[name] = list(props.values())
            elif name == "location":
                event[name] = {"displayName": "", "locationType": "default", **(value or {})}
            elif name == "attendees":
                # Exchange keeps an attendee's response; a new one has none yet.
                old = {str((a.get("emailAddress") or {}).get("address") or "").lower(): a
                       for a in event.get("attendees") or []}
                event[name] = [{"type": a.get("type", "required"),
                                "status": (old.get(str((a.get("emailAddress") or {})
                                                        .get("address") or "").lower())
                                           or {}).get("status") or a.get("status")
                                or {"response": "none", "time": "0001-01-01T00:00:00Z"},
                                "emailAddress": deep(a.get("emailAddress"))}
                               for a in value or []]
            elif name == "body":
                event[name] = _stored_body(value or {})
                text = re.sub(r"<[^>]+>", "", str((value or {}).get("content") or ""))
                event["bodyPreview"] = html.unescape(text).strip()[:255]
            else:
                event[name] = deep(value)

    def _patch(self, req: Request, mailbox: str, event_id: str) -> Response:
        body = req.json() if req.body else {}
        problem = self._validate(body)
        if problem:
            return self.error(400, *problem)
        event = self.events[mailbox][event_id]
        self._apply(event, body)
        if event.get("type") == "occurrence":
            event["type"] = "exception"  # Exchange: an edited occurrence becomes an exception
        self._stamp(event)
        self._changed(mailbox, event_id)
        if event.get("type") == "seriesMaster":
            carried = {k: body[k] for k in SERIES_FIELDS if k in body}
            for other in self.events[mailbox].values():
                if carried and other.get("seriesMasterId") == event_id \
                        and other.get("type") == "occurrence":
                    self._apply(other, carried)
                    self._stamp(other)
                    self._changed(mailbox, other["id"])
        return json_response(200, self._wire(mailbox, event))

    def _delete_series(self, mailbox: str, event_id: str) -> None:
        box = self.events[mailbox]
        for other in [e["id"] for e in box.values() if e.get("seriesMasterId") == event_id]:
            self.remove_event(mailbox, other)
        self.remove_event(mailbox, event_id)

    def _expand(self, mailbox: str, master: dict[str, Any]) -> None:
        """A new series master gets its occurrences: every pattern type, in the series'
        zone (a 9:00 meeting stays at 9:00 local across DST); a series without end
        gets a year's worth (Exchange expands on read; the emulator stores them)."""
        start, end = _instant(master["start"]), _instant(master["end"])
        if start is None or end is None:
            return
        length = end - start
        for when in occurrence_starts(master["recurrence"], start, 366):
            utc = when.astimezone(ZoneInfo("UTC"))
            occurrence = {k: deep(v) for k, v in master.items() if k != "recurrence"}
            occurrence.update({
                "id": self._next_id(mailbox, "occurrence"), "type": "occurrence",
                "seriesMasterId": master["id"], "recurrence": None,
                "iCalUId": master["iCalUId"][:40] + hashlib.sha256(
                    f"{master['iCalUId']}/{when.date()}".encode()).hexdigest().upper()[:32],
                "originalStart": utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "start": {"dateTime": utc.strftime("%Y-%m-%dT%H:%M:%S.0000000"),
                          "timeZone": "UTC"},
                "end": {"dateTime": (utc + length).strftime("%Y-%m-%dT%H:%M:%S.0000000"),
                        "timeZone": "UTC"}})
            self._stamp(occurrence)
            self.events[mailbox][occurrence["id"]] = occurrence
            self._changed(mailbox, occurrence["id"])


def sandbox_mailboxes(feed: list[dict[str, Any]], mailboxes: list[str]
                      ) -> dict[str, list[dict[str, Any]]]:
    """Each mailbox's calendar: the last payload the feed shows per item, removals dropped."""
    out: dict[str, dict[str, dict[str, Any]]] = {m.lower(): {} for m in mailboxes}
    for line in feed:
        if line["kind"] != "graph.event":
            continue
        box = out.setdefault(line["mailbox"].lower(), {})
        payload = line["payload"]
        if "@removed" in payload:
            box.pop(payload["id"], None)
        else:
            box[payload["id"]] = payload
    return {m: list(events.values()) for m, events in out.items()}



