"""The observation feed (DOMAIN.md §6): JSON Lines envelopes <-> domain observations.

One envelope a line: ``kind``, ``observed_at`` (ISO-8601 with a zone),
``payload`` (the raw wire object), plus ``mailbox`` for ``graph.event`` and
``sidebar.save`` and optional ``relations`` for ``salesforce.event``. The sync
writes exactly these envelopes (``envelope``), so a live run can be recorded
and re-ingested. A line that cannot be read becomes a ``FeedError`` that names
the line, the item id when known and the field; reading goes on with the next
line, so one bad line never costs the rest of the file.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from adapters.graph import ids as graph_ids
from adapters.graph import wire as graph_wire
from adapters.salesforce import ids as salesforce_ids
from adapters.salesforce import wire as salesforce_wire
from adapters.wire import WireError, checked_text, kind_of, parse_instant
from ledger.observations import (
    CalendarRead,
    GuardNoted,
    Observation,
    SettingsChanged,
    SidebarSave,
    SuspensionNoted,
    WriteRefused,
)
from ledger.settings import SettingsError, validate_changes

KINDS = ("graph.event", "salesforce.event", "salesforce.deleted", "sidebar.save",
         "org.settings", "write.refused", "salesforce.person", "calendar.read",
         "sync.guard", "sync.suspension")
#: Domain field -> where a feed line holds it, for the ledger's quarantine rows.
WIRE_FIELDS = {**graph_wire.FIELD_PATHS, "item_id": "payload.itemId"}
_ENVELOPE_KEYS = frozenset({"kind", "observed_at", "payload", "mailbox", "relations"})


class FeedError(ValueError):
    """One line that could not be read: where, which item, which field, why."""

    def __init__(self, message: str, *, item_id: str | None = None,
                 field: str | None = None) -> None:
        super().__init__(message)
        self.item_id = item_id
        self.field = field


def envelope(kind: str, observed_at: str, payload: Any, *, mailbox: str | None = None,
             relations: list[dict[str, Any]] | None = None) -> bytes:
    """One feed line (without its newline), exactly as ``parse_line`` reads it."""
    line: dict[str, Any] = {"kind": kind, "observed_at": observed_at}
    if mailbox is not None:
        line["mailbox"] = mailbox
    line["payload"] = payload
    if relations is not None:
        line["relations"] = relations
    try:
        return orjson.dumps(line)
    except orjson.JSONEncodeError:  # text orjson will not write (an unpaired surrogate):
        # escaped as JSON allows, so the line is recorded and then quarantined naming it
        return json.dumps(line, ensure_ascii=True).encode()


def _mailbox(line: dict[str, Any]) -> str:
    mailbox = line.get("mailbox")
    if not isinstance(mailbox, str) or "@" not in mailbox:
        raise FeedError(f"{line['kind']} needs 'mailbox', the mailbox owner's email address "
                        f"(got {mailbox!r})", field="mailbox",
                        item_id=_payload_id(line.get("payload")))
    try:
        return checked_text(mailbox, "mailbox", is_id=True).lower()
    except WireError as exc:
        raise FeedError(str(exc), field="mailbox",
                        item_id=_payload_id(line.get("payload"))) from None


def _payload_id(payload: Any) -> str | None:
    if isinstance(payload, dict):
        for name in ("id", "Id", "itemId"):
            if isinstance(payload.get(name), str):
                return str(payload[name])
        if isinstance(payload.get("writeKey"), str):
            return str(payload["writeKey"])
    return None


def _sidebar_save(payload: Any, mailbox: str, observed_at: str) -> SidebarSave:
    if not isinstance(payload, dict):
        raise WireError("payload", f"expected {{itemId, whatId?, whoId?}}, got "
                                   f"{kind_of(payload)}")
    if payload.get("itemId") in (None, ""):
        raise WireError("itemId", "missing: the Outlook item the user saved")
    item_id = graph_ids.checked_id(payload.get("itemId"), "itemId")
    unknown = sorted(set(payload) - {"itemId", "whatId", "whoId"})
    if unknown:
        raise WireError(unknown[0], "unknown key (known: itemId, whatId, whoId)", item_id)
    ids: dict[str, str | None] = {}
    for name in ("whatId", "whoId"):
        value = payload.get(name)
        ids[name] = None if value in (None, "") else salesforce_ids.checked_id(
            value, name, item_id)
    return SidebarSave(observed_at=observed_at, mailbox=mailbox, item_id=item_id,
                       what_id=ids["whatId"], who_id=ids["whoId"])


#: ``write.refused`` payload keys -> their types (the sync writes these, ``refused_payload``).
REFUSED_KEYS: dict[str, type] = {"meetingId": str, "writeKey": str, "digest": str,
                                 "target": str, "op": str, "status": int, "errorCode": str,
                                 "message": str, "fields": list}


def refused_payload(write: dict[str, Any], digest: str, status: int, code: str, message: str,
                    fields: list[str]) -> dict[str, Any]:
    """The ``write.refused`` payload for one planned write an API refused."""
    return {"meetingId": write["meeting_id"], "writeKey": write["key"], "digest": digest,
            "target": write["target"], "op": write["op"], "status": status,
            "errorCode": code, "message": message, "fields": fields}


def _refused(payload: Any, observed_at: str) -> WriteRefused:
    if not isinstance(payload, dict):
        raise WireError("payload", f"expected a refused-write object, got {kind_of(payload)}")
    key = payload.get("writeKey") if isinstance(payload.get("writeKey"), str) else None
    for name, kind in REFUSED_KEYS.items():
        if not isinstance(payload.get(name), kind) or isinstance(payload.get(name), bool):
            raise WireError(name, f"missing or not a {kind.__name__}", key)
    unknown = sorted(set(payload) - set(REFUSED_KEYS))
    if unknown:
        raise WireError(unknown[0], "unknown key", key)
    if not all(isinstance(f, str) for f in payload["fields"]):
        raise WireError("fields", "expected a list of field names", key)
    return WriteRefused(
        observed_at=observed_at, meeting_id=payload["meetingId"], write_key=payload["writeKey"],
        digest=payload["digest"], target=payload["target"], op=payload["op"],
        status=payload["status"], code=payload["errorCode"], message=payload["message"][:1000],
        fields=tuple(payload["fields"]))


def _settings(payload: Any, observed_at: str) -> SettingsChanged:
    try:
        return SettingsChanged(observed_at=observed_at, changes=validate_changes(payload))
    except SettingsError as exc:
        raise WireError(exc.key, str(exc)) from None


def _calendar_read(payload: Any, mailbox: str, observed_at: str) -> CalendarRead:
    """``{"source": "exchange" | "salesforce", "start", "end", "ids": [...]}``."""
    if not isinstance(payload, dict):
        raise WireError("payload", f"expected {{source, start, end, ids}}, got {kind_of(payload)}")
    unknown = sorted(set(payload) - {"source", "start", "end", "ids"})
    if unknown:
        raise WireError(unknown[0], "unknown key (known: source, start, end, ids)")
    source = payload.get("source")
    if source not in ("exchange", "salesforce"):
        raise WireError("source", f"expected 'exchange' or 'salesforce', got {source!r}")
    ids = payload.get("ids")
    if not isinstance(ids, list):
        raise WireError("ids", "expected a list of item ids")
    checked = tuple(salesforce_ids.checked_event_id(i, f"ids[{n}]") if source == "salesforce"
                    else graph_ids.checked_id(i, f"ids[{n}]") for n, i in enumerate(ids))
    return CalendarRead(observed_at=observed_at, source=str(source), mailbox=mailbox,
                        start=parse_instant(payload.get("start"), "start"),
                        end=parse_instant(payload.get("end"), "end"), ids=checked)


def _action(payload: Any, actions: tuple[str, ...]) -> tuple[str, str]:
    """``{"action": one of ``actions``, "reason": str}``: an org-level note's two fields."""
    if not isinstance(payload, dict):
        raise WireError("payload", f"expected {{action, reason}}, got {kind_of(payload)}")
    unknown = sorted(set(payload) - {"action", "reason"})
    if unknown:
        raise WireError(unknown[0], "unknown key (known: action, reason)")
    action, reason = payload.get("action"), payload.get("reason")
    if action not in actions:
        raise WireError("action", f"expected {', '.join(actions[:-1])} or {actions[-1]}, "
                                  f"got {action!r}")
    if not isinstance(reason, str):
        raise WireError("reason", "expected a string")
    return str(action), reason


def _guard(payload: Any, mailbox: str, observed_at: str) -> GuardNoted:
    """``{"action": "held" | "approved" | "released", "reason"}``."""
    action, reason = _action(payload, ("held", "approved", "released"))
    return GuardNoted(observed_at=observed_at, mailbox=mailbox, action=action, reason=reason)


def _suspension(payload: Any, mailbox: str, observed_at: str) -> SuspensionNoted:
    """``{"action": "suspended" | "resumed", "reason"}``."""
    action, reason = _action(payload, ("suspended", "resumed"))
    return SuspensionNoted(observed_at=observed_at, mailbox=mailbox, action=action,
                           reason=reason)


@dataclass(frozen=True)
class Markers:
    """Names of the cross-reference markers (configurable; these are the defaults)."""

    exchange_property: str = graph_wire.DEFAULT_MARKER
    salesforce_field: str = salesforce_wire.DEFAULT_MARKER_FIELD


DEFAULT_MARKERS = Markers()


def parse_envelope(line: Any, markers: Markers = DEFAULT_MARKERS) -> Observation:
    """A decoded feed line as a domain observation; raises FeedError naming the field."""
    if not isinstance(line, dict):
        raise FeedError(f"expected a JSON object, got {kind_of(line)}")
    kind = line.get("kind")
    if kind not in KINDS:
        raise FeedError(f"unknown kind {kind!r} (expected one of {', '.join(KINDS)})",
                        field="kind", item_id=_payload_id(line.get("payload")))
    unknown = sorted(set(line) - _ENVELOPE_KEYS)
    if unknown:
        raise FeedError(f"unknown envelope key {unknown[0]!r}", field=unknown[0],
                        item_id=_payload_id(line.get("payload")))
    if "payload" not in line:
        raise FeedError(f"{kind} has no 'payload'", field="payload")
    payload = line["payload"]
    try:
        observed_at = parse_instant(line.get("observed_at"), "observed_at")
    except WireError as exc:
        raise FeedError(str(exc), field="observed_at", item_id=_payload_id(payload)) from None
    try:
        if kind == "graph.event":
            return graph_wire.to_observation(payload, _mailbox(line), observed_at,
                                             marker=markers.exchange_property)
        if kind == "salesforce.event":
            return salesforce_wire.to_observation(payload, line.get("relations"), observed_at,
                                                  marker_field=markers.salesforce_field)
        if kind == "salesforce.deleted":
            return salesforce_wire.deleted_to_observation(payload, observed_at)
        if kind == "sidebar.save":
            return _sidebar_save(payload, _mailbox(line), observed_at)
        if kind == "write.refused":
            return _refused(payload, observed_at)
        if kind == "salesforce.person":
            return salesforce_wire.person_to_observation(payload, observed_at)
        if kind == "calendar.read":
            return _calendar_read(payload, _mailbox(line), observed_at)
        if kind == "sync.guard":
            return _guard(payload, _mailbox(line), observed_at)
        if kind == "sync.suspension":
            return _suspension(payload, _mailbox(line), observed_at)
        return _settings(payload, observed_at)
    except WireError as exc:
        field = exc.field if exc.field.startswith("relations") or exc.field == "payload" \
            else f"payload.{exc.field}"
        raise FeedError(f"{kind} {exc.item_id or _payload_id(payload) or ''}: {field}: "
                        f"{str(exc).partition(': ')[2]}".replace("  ", " "),
                        field=field, item_id=exc.item_id or _payload_id(payload)) from None
    except FeedError:
        raise
    except Exception as exc:  # poison: a payload no check foresaw stops only its own line
        raise FeedError(f"{kind} {_payload_id(payload) or ''}: could not be read: "
                        f"{type(exc).__name__}: {exc}".replace("  ", " "),
                        item_id=_payload_id(payload)) from None


def parse_line(line: bytes, markers: Markers = DEFAULT_MARKERS) -> Observation:
    """One raw feed line; raises FeedError (the caller knows where the line was)."""
    try:
        decoded = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        bad = _unstorable_text(line)
        if bad is not None:
            raise FeedError(f"{bad}: contains an unpaired surrogate (\\ud800-\\udfff alone "
                            "is not text)", field=bad) from None
        hint = " (the line is cut short: truncated file?)" if "unexpected end" in str(exc) \
            .lower() or not line.rstrip().endswith(b"}") else ""
        raise FeedError(f"not JSON{hint}: {exc}") from None
    return parse_envelope(decoded, markers)


def _unstorable_text(line: bytes) -> str | None:
    """Where a line orjson refused holds an unpaired surrogate, if that was why
    (the standard library's parser accepts them, so it can point at the field)."""
    try:
        decoded = json.loads(line)
    except (ValueError, RecursionError):
        return None

    def walk(value: Any, at: str) -> str | None:
        if isinstance(value, str):
            return at if any("\ud800" <= c <= "\udfff" for c in value) else None
        if isinstance(value, dict):
            for key, item in value.items():
                found = walk(key, at) or walk(item, f"{at}.{key}" if at else str(key))
                if found:
                    return found
        if isinstance(value, list):
            for i, item in enumerate(value):
                found = walk(item, f"{at}[{i}]")
                if found:
                    return found
        return None

    return walk(decoded, "")


def read_feed(path: Path) -> Iterator[tuple[int, bytes, Observation | FeedError]]:
    """Every non-blank line of a feed file, parsed; bad lines carry their error.

    Occurrence stubs (ids and times only, as delta delivers them) are filled
    from their series master when the master came earlier in the same file.
    """
    fill = StubFiller()
    with open(path, "rb") as f:
        for line_no, raw in enumerate(f, start=1):
            raw = raw.rstrip(b"\r\n")
            if line_no == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]  # a UTF-8 byte order mark, as some editors write
            if not raw.strip():
                continue
            try:
                yield line_no, raw, parse_line(fill(raw))
            except FeedError as exc:
                yield line_no, raw, exc


class StubFiller:
    """Remembers recent series masters per mailbox and completes later occurrence stubs.

    Bounded (``limit`` masters, least recently used dropped), so a feed of any
    length is read in constant memory; a stub whose master was dropped stays a
    stub, as it would without the master. The sync fills stubs before it
    records them, so only hand-made or foreign feeds rely on this.
    """

    def __init__(self, limit: int = 2_000) -> None:
        self.limit = limit
        self.masters: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()

    def __call__(self, raw: bytes) -> bytes:
        if not graph_wire.may_be_master_or_stub(raw):
            return raw  # the common case: no need to decode twice
        try:
            line = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return raw
        if not isinstance(line, dict) or line.get("kind") != "graph.event":
            return raw
        payload, mailbox = line.get("payload"), str(line.get("mailbox") or "").lower()
        if not isinstance(payload, dict):
            return raw
        master_id = graph_wire.master_id_of(payload)
        if master_id is not None:
            key = (mailbox, master_id)
            self.masters[key] = payload
            self.masters.move_to_end(key)
            if len(self.masters) > self.limit:
                self.masters.popitem(last=False)
            return raw
        master = self.masters.get((mailbox, graph_wire.series_id_of(payload)))
        if master is None or not graph_wire.is_stub(payload):
            return raw
        return envelope(str(line.get("kind")), str(line.get("observed_at")),
                        graph_wire.fill_stub(payload, master), mailbox=line.get("mailbox"))
