"""Domain observations: what the ledger is told, in domain terms.

Adapters translate wire payloads (Graph events, Salesforce records, feed
envelopes) into these values; the ledger never sees a wire field name. Every
field is JSON-native (times are ISO-8601 UTC strings ending in ``Z``) so an
observation can be stored inside an event as it is, and re-decided later
(``whatif``) without the wire payload.
"""

from __future__ import annotations

from collections.abc import Callable
from copy import deepcopy
from dataclasses import dataclass, field, fields, is_dataclass
from operator import attrgetter
from typing import Any, Literal, TypeVar

_T = TypeVar("_T")
ItemType = Literal["single", "master", "occurrence", "exception"]
Sensitivity = Literal["normal", "personal", "private", "confidential"]
Response = Literal[
    "none", "organizer", "tentativelyAccepted", "accepted", "declined", "notResponded"
]
RemovalReason = Literal["deleted", "cancelled", "not-visible"]


@dataclass(frozen=True, slots=True)
class Attendee:
    email: str  # lower-cased
    response: str  # one of Response
    name: str = ""


@dataclass(frozen=True, slots=True)
class ExchangeItemSeen:
    """One mailbox's copy of a calendar item, as observed in Exchange."""

    observed_at: str
    mailbox: str  # lower-cased SMTP address of the mailbox owner
    item_id: str
    ical_uid: str | None  # this item's own iCalUId (None for occurrence stubs)
    item_type: ItemType
    series_master_id: str | None  # item id of the master, for occurrences/exceptions
    occurrence_start: str | None  # original start (UTC) of an occurrence/exception
    version: str  # changeKey, or a content hash when absent
    last_modified: str | None
    subject: str
    body: str
    location: str
    start: str  # UTC
    end: str  # UTC
    is_all_day: bool
    sensitivity: str  # one of Sensitivity
    time_zone: str | None  # Windows zone name of the item (originalStartTimeZone)
    organizer: str  # lower-cased email
    attendees: tuple[Attendee, ...]
    recurrence: dict[str, Any] | None  # normalised pattern + range, JSON-native
    categories: tuple[str, ...]
    is_cancelled: bool
    is_organizer: bool  # the mailbox owner organises this item
    salesforce_marker: str | None  # cross-reference extended property value
    kind: Literal["exchange.item"] = "exchange.item"


@dataclass(frozen=True, slots=True)
class ExchangeItemGone:
    """An item disappeared from a mailbox: deleted, cancelled or out of view."""

    observed_at: str
    mailbox: str
    item_id: str
    reason: str  # one of RemovalReason
    kind: Literal["exchange.removed"] = "exchange.removed"


@dataclass(frozen=True, slots=True)
class Invitee:
    relation_id: str  # User / Contact / Lead id
    status: str  # New | Accepted | Declined
    is_invitee: bool = True


@dataclass(frozen=True, slots=True)
class SalesforceEventSeen:
    """A Salesforce Event record as observed (Classic or Lightning)."""

    observed_at: str
    event_id: str  # 18-char Id
    series_id: str | None  # RecurrenceActivityId of a Classic occurrence
    is_series_master: bool  # Classic master (IsRecurrence)
    is_lightning_series: bool  # IsRecurrence2
    recurrence: dict[str, Any] | None  # Classic fields or the RRULE, JSON-native
    version: str  # SystemModstamp
    subject: str
    description: str
    location: str
    what_id: str | None
    who_id: str | None
    owner_id: str | None
    start: str | None  # UTC
    end: str | None  # UTC
    is_all_day: bool
    is_private: bool
    time_zone: str | None  # IANA id of the recurrence, when any
    ical_marker: str | None  # cross-reference custom field value
    invitees: tuple[Invitee, ...] | None  # None when relations were not fetched
    kind: Literal["salesforce.event"] = "salesforce.event"


@dataclass(frozen=True, slots=True)
class SalesforceEventGone:
    observed_at: str
    event_id: str
    deleted_at: str
    kind: Literal["salesforce.deleted"] = "salesforce.deleted"


@dataclass(frozen=True, slots=True)
class SidebarSave:
    """A user explicitly saved an Outlook item to Salesforce."""

    observed_at: str
    mailbox: str
    item_id: str
    what_id: str | None
    who_id: str | None
    kind: Literal["sidebar.save"] = "sidebar.save"


@dataclass(frozen=True, slots=True)
class SettingsChanged:
    """Org settings in force from ``observed_at`` on (only the keys changed)."""

    observed_at: str
    changes: dict[str, Any] = field(default_factory=dict)
    kind: Literal["org.settings"] = "org.settings"


@dataclass(frozen=True, slots=True)
class WriteRefused:
    """An API refused one planned write with an error code: it will refuse it again.

    What the sync learned enters the ledger like any observation (feed kind
    ``write.refused``), so ``ingest`` replays it. ``digest`` names the write's
    content (``ledger.writes.write_digest``): a changed write is a new one."""

    observed_at: str
    meeting_id: str
    write_key: str
    digest: str
    target: str  # salesforce | exchange
    op: str
    status: int
    code: str
    message: str
    fields: tuple[str, ...]
    kind: Literal["write.refused"] = "write.refused"


@dataclass(frozen=True, slots=True)
class PersonSeen:
    """A Salesforce User, Contact or Lead the people look-up found (DOMAIN.md §12).

    The directory of people is built from these, so that relating attendees
    reads the ledger, not Salesforce, and a replay decides the same."""

    observed_at: str
    person_id: str  # 18-char Id
    person_type: str  # one of PERSON_TYPES
    email: str  # lower-cased
    name: str
    kind: Literal["salesforce.person"] = "salesforce.person"


PERSON_TYPES = ("User", "Contact", "Lead")


@dataclass(frozen=True, slots=True)
class CalendarRead:
    """A whole calendar as a full read returned it (not a delta): which ids were there.

    ``source`` is ``exchange`` (one mailbox's calendarView) or ``salesforce`` (one
    owner's Events); absence from a full read is evidence, so it is recorded.
    """

    observed_at: str
    source: str  # exchange | salesforce
    mailbox: str
    start: str
    end: str
    ids: tuple[str, ...]
    kind: Literal["calendar.read"] = "calendar.read"


@dataclass(frozen=True, slots=True)
class GuardNoted:
    """The mass-change guard held a mailbox's writes, a person approved them, or it let go."""

    observed_at: str
    mailbox: str
    action: str  # held | approved | released
    reason: str
    kind: Literal["sync.guard"] = "sync.guard"


@dataclass(frozen=True, slots=True)
class SuspensionNoted:
    """The service suspended a mailbox after failing jobs in a row, or a person resumed it
    (``syncledger status --resume``): an org-level sync issue while it lasts."""

    observed_at: str
    mailbox: str
    action: str  # suspended | resumed
    reason: str
    kind: Literal["sync.suspension"] = "sync.suspension"


Observation = (
    ExchangeItemSeen
    | ExchangeItemGone
    | SalesforceEventSeen
    | SalesforceEventGone
    | SidebarSave
    | SettingsChanged
    | WriteRefused
    | PersonSeen
    | CalendarRead
    | GuardNoted
    | SuspensionNoted
)

#: Observations about whole calendars or the org, kept by ``ledger.safety.Safety``.
ORG_LEVEL = (CalendarRead, GuardNoted, SuspensionNoted)


def to_record(obs: Observation) -> dict[str, Any]:
    """JSON-native dict of an observation (tuples become lists).

    What ``dataclasses.asdict`` returns (same keys and order), with lists for
    tuples, without its generic per-value deep copy: this runs once per
    observation and ``asdict`` was the largest single cost of intake.
    """
    cls = type(obs)
    if cls is ExchangeItemSeen or cls is SalesforceEventSeen:
        return _seen_record(obs)  # type: ignore[arg-type]
    out: dict[str, Any] = _plain(obs)
    return out


def _seen_record(obs: ExchangeItemSeen | SalesforceEventSeen) -> dict[str, Any]:
    """``_plain`` for the two kinds that make up nearly every feed line, without its
    per-field type dispatch: the fields read at once (``attrgetter``), then the
    few that are not atomic made plain; same keys, same order, same values.
    Attendees and invitees are written out as dict literals: a generic per-item
    conversion took back most of the gain (23 against 26 µs, literals 17 µs);
    ``tests/test_feed_process.py`` checks them against the dataclass fields."""
    cls = type(obs)
    getter = _GETTERS.get(cls)
    if getter is None:
        names = tuple(f.name for f in fields(cls))
        getter = _GETTERS[cls] = (names, attrgetter(*names))
    out = dict(zip(getter[0], getter[1](obs), strict=True))
    if cls is ExchangeItemSeen:
        out["attendees"] = [{"email": a.email, "response": a.response, "name": a.name}
                            for a in out["attendees"]]
        out["categories"] = list(out["categories"])
    else:
        invitees = out["invitees"]
        if invitees is not None:
            out["invitees"] = [{"relation_id": i.relation_id, "status": i.status,
                                "is_invitee": i.is_invitee} for i in invitees]
    if out["recurrence"] is not None:
        out["recurrence"] = _plain(out["recurrence"])
    return out


_GETTERS: dict[type, tuple[tuple[str, ...], Callable[[Any], tuple[Any, ...]]]] = {}


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}
_ATOMIC = (str, bool, int, float, type(None))


def _plain(value: Any) -> Any:
    cls = type(value)
    if cls in _ATOMIC:
        return value
    names = _FIELD_NAMES.get(cls)
    if names is None and is_dataclass(value):
        names = _FIELD_NAMES[cls] = tuple(f.name for f in fields(value))
    if names is not None:
        out = {}
        for n in names:
            v = getattr(value, n)
            out[n] = v if type(v) in _ATOMIC else _plain(v)
        return out
    if cls is list or cls is tuple:
        # Lists both: a record kept in memory must equal the same record read back
        # from the store, or a replay would see changes a live run did not.
        return [_plain(v) for v in value]
    if cls is dict:
        return {_plain(k): _plain(v) for k, v in value.items()}
    return deepcopy(value)  # not met: observations hold JSON-native values


def from_record(record: dict[str, Any]) -> Observation:
    """Inverse of :func:`to_record`, used when re-deciding stored history and when
    a feed read in another process hands its records over (``adapters.feed.reader_process``).

    Builds the frozen objects without their ``__init__`` (which sets each field
    through ``object.__setattr__`` and was 20 µs an item): the values are the
    record's own, already JSON-native, so nothing needs checking again.
    """
    kind = record["kind"]
    if kind == "exchange.item":
        data = dict(record)
        data["attendees"] = tuple(_build_attendee(a) for a in data["attendees"])
        data["categories"] = tuple(data["categories"])
        return _build_item(data)  # a private item's "redacted" flag is not a field
    if kind == "salesforce.event":
        data = dict(record)
        inv = data["invitees"]
        data["invitees"] = None if inv is None else tuple(_build_invitee(i) for i in inv)
        return _build_event(data)
    builder = _BUILDERS.get(kind)
    if builder is None:
        raise ValueError(f"unknown observation kind {kind!r}")
    return builder(record)


def _builder(cls: type[_T]) -> Callable[[dict[str, Any]], _T]:
    """A function making ``cls`` from a dict holding every field (extra keys ignored)."""
    names = tuple(f.name for f in fields(cls))  # type: ignore[arg-type]
    setters = tuple((name, getattr(cls, name).__set__) for name in names)
    new = object.__new__

    def build(data: dict[str, Any]) -> _T:
        obj: _T = new(cls)
        try:
            for name, set_value in setters:
                set_value(obj, data[name])
        except KeyError as exc:
            raise TypeError(f"{cls.__name__} record has no {exc.args[0]!r}") from None
        return obj

    return build


_build_attendee = _builder(Attendee)
_build_invitee = _builder(Invitee)
_build_item = _builder(ExchangeItemSeen)
_build_event = _builder(SalesforceEventSeen)
_build_refused = _builder(WriteRefused)
_BUILDERS: dict[str, Callable[[dict[str, Any]], Observation]] = {
    "exchange.removed": _builder(ExchangeItemGone),
    "salesforce.deleted": _builder(SalesforceEventGone),
    "sidebar.save": _builder(SidebarSave),
    "org.settings": _builder(SettingsChanged),
    "write.refused": lambda record: _build_refused({**record,
                                                     "fields": tuple(record["fields"])}),
    "salesforce.person": _builder(PersonSeen),
    "calendar.read": _builder(CalendarRead),
    "sync.guard": _builder(GuardNoted),
    "sync.suspension": _builder(SuspensionNoted)}
