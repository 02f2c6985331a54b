"""``explain``: is this item synced, and if not, which rule stops it and who can act.

Answers from one meeting's events and state, found through the external-id
index, so it costs the same on a ledger of a thousand events or a million.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from ledger.identity import (
    ical_key,
    is_salesforce_id,
    item_key,
    salesforce_id18,
    salesforce_key,
)
from ledger.meeting import Meeting
from ledger.parking import WAITING_RULE
from ledger.settings import OrgSettings
from ledger.store import Store
from projections import parked as _parked
from projections.timeline import meeting_sync_state, timeline


class NotFound(LookupError):
    """No meeting in the ledger answers to this id."""


@dataclass(frozen=True)
class Resolved:
    """Which meeting an id names, and which item of it (when the id names one)."""

    meeting_id: UUID
    kind: str  # meeting | exchange | ical | salesforce
    item_key: str | None = None  # Exchange item key, for Exchange ids
    salesforce_id: str | None = None


def resolve(store: Store, any_id: str) -> Resolved:
    """Ledger meeting id, Exchange item id, iCalUId, or Salesforce Event id (15/18)."""
    text = any_id.strip()
    try:
        mid = UUID(text)
    except ValueError:
        pass
    else:
        if store.stored_events(mid, upto_version=1):
            return Resolved(mid, "meeting")
    if text.split(":", 1)[0] in ("ical", "sf", "exid") and ":" in text:
        keyed = store.lookup_keys([text])  # a ledger key as the demo prints it
        if keyed:
            return Resolved(UUID(next(iter(keyed.values()))), "key")
    if is_salesforce_id(text):
        hit = store.lookup_keys([salesforce_key(text)])
        if hit:
            return Resolved(UUID(next(iter(hit.values()))), "salesforce",
                            salesforce_id=salesforce_key(text)[3:])
    hits = store.lookup_keys(["exid:" + text, ical_key(text)])
    if "exid:" + text in hits:
        mid = UUID(hits["exid:" + text])
        m = store.meeting(mid)
        key = next((k for k in m.items if k.endswith("|" + text)), None)
        return Resolved(mid, "exchange", item_key=key)
    if ical_key(text) in hits:
        return Resolved(UUID(hits[ical_key(text)]), "ical")
    whole = _whole_id(store, text)
    if whole is not None:
        return resolve(store, whole)
    raise NotFound(f"no meeting in the ledger has the id {text!r} (tried ledger meeting id, "
                   "Exchange item id, iCalUId and Salesforce Event id, and each as a prefix)")


#: The shortest start of an id taken as a prefix (shorter would match by chance).
MIN_PREFIX = 6
_CUT = ("\u2026", "...")  # how narrow tables end an id they cut


def _whole_id(store: Store, text: str) -> str | None:
    """The one whole id that ``text`` is the cut form of (``AAMkAGI1…``), as
    ``explain``/``history``/``state`` take it back; None when nothing starts so.
    Several meetings' ids starting alike are refused, naming how many."""
    start, end = text, ""
    for cut in _CUT:  # cut at the end (``AAMkAGI1…``) or in the middle (``AAMk…DUP001``)
        if cut in start:
            start, _, end = start.partition(cut)
            break
    if len(start) < MIN_PREFIX:
        return None
    found: dict[str, str] = {}  # whole id -> meeting id
    for mid in store.meeting_ids_with_prefix(start.lower()):
        found[mid] = mid
    keyed = start.split(":", 1)[0] in ("ical", "sf", "exid") and ":" in start
    for kind in ([""] if keyed else ["exid:", "ical:", "sf:"]):
        for key, mid in store.keys_with_prefix(kind + start, limit=200).items():
            found[key if keyed else key[len(kind):]] = mid
    found = {whole: mid for whole, mid in found.items() if whole.endswith(end)}
    meetings = set(found.values())
    if len(meetings) > 1:
        raise NotFound(f"the id {text!r} is the start of ids of {len(meetings)} meetings; "
                       "give more of it (or the whole id, as --json prints it)")
    return min(found) if found else None


ACTIONS = {
    "private-item": "the owner can clear the private flag, or an admin can turn on "
                    "private-item sync (org setting sync_private_items)",
    "recurring-all-day": "make the series timed instead of all-day, or keep it out of sync; "
                         "Salesforce cannot hold recurring all-day events",
    "recurrence-conversion": "create a new meeting instead of converting it; Salesforce "
                             "cannot turn a single event into a series or back",
    "unsupported-time-zone": "the organizer can move the meeting to a time zone Salesforce "
                             "supports, or an admin can add the zone to salesforce_time_zones",
    "lightning-recurrence": "create the series in Outlook or in Salesforce Classic; Lightning "
                            "event series are not synced down",
    "event-too-long": "shorten the event to 24 hours or less (or make it all-day); "
                      "Salesforce refuses longer events",
    "all-day-too-long": "split the all-day event into parts of 14 days or less; Salesforce "
                        "refuses longer all-day events",
    "recurrence-unrepresentable": "change the series to a pattern Salesforce Classic has "
                                  "(yearly: every year, one day of the week for 'the nth ...')",
    "text-too-long": "nothing to do: the Salesforce copy holds the shortened text and says so; "
                     "the full text stays in Outlook",
    "recurrence-capped": "nothing to do, or end the Outlook series earlier: Salesforce keeps "
                         "the first occurrences only",
    "write-refused": "fix what the API's message names (in Outlook or in Salesforce); the "
                     "write is sent again once the item changes",
    WAITING_RULE: "nothing in the ledger to fix: the line waits for the item it depends on; "
                  "check that the sync reads that mailbox (or the Salesforce Events), or "
                  "ingest the feed that holds it",
    "lightning-relations": "change the attendees in Salesforce on the series itself, or "
                           "recreate the series in Outlook (synced as a Classic series); "
                           "a Lightning series' occurrences carry no series id",
}
#: Issues that do not stop the item syncing (warnings, refused writes): told beside the verdict.
NOT_BLOCKING = ("text-too-long", "recurrence-capped", "write-refused", "lightning-relations")


def explain(store: Store, any_id: str) -> dict[str, Any]:
    """JSON keys: id, meeting_id, state (the meeting's sync state, as ``analytics`` says it),
    synced (whether the item asked about is linked), rule, message, action, evidence,
    people, full_reads (and parked: what of this id waits, when it names no meeting yet but
    a parked line)."""
    try:
        r = resolve(store, any_id)
    except NotFound:
        waiting = _waiting(store, any_id)
        if waiting is None:
            raise
        return waiting
    m = store.meeting(r.meeting_id)
    org = store.org()
    settings = org.settings() if org is not None else OrgSettings()
    entries = timeline(store, r.meeting_id)
    verdict = _verdict(m, r, settings)
    wanted = verdict.pop("evidence_filter")
    evidence = [_evidence(e) for e in entries if wanted(e)]
    return {"id": any_id, "meeting_id": str(r.meeting_id), "state": meeting_sync_state(m),
            **verdict, "evidence": evidence,
            "people": _people(m), "full_reads": full_reads(store, m)}


def _waiting(store: Store, any_id: str) -> dict[str, Any] | None:
    """An id only parked lines hold: what they wait for (``ledger.parking``)."""
    text = any_id.strip().removeprefix("exid:").removeprefix("sf:")
    rows = _parked.select_rows(store, item_id=text)
    if not rows and is_salesforce_id(text):
        rows = _parked.select_rows(store, item_id=salesforce_id18(text))
    if not rows:
        return None
    first = rows[0]
    late = any(r["overdue"] for r in rows)
    what = {"exchange-item": "the Outlook item", "salesforce-event": "the Salesforce Event"
            }.get(first["waits_for_kind"], "")
    return {"id": any_id, "meeting_id": None, "state": "not-synced", "synced": False,
            "rule": WAITING_RULE if late else None,
            "message": f"not in any meeting yet: {len(rows)} observation(s) "
                       f"({', '.join(sorted({r['kind'] for r in rows}))}) parked since "
                       f"{first['since']}, waiting for {what} {first['waits_for_id']}, which "
                       "the ledger has not seen; they are taken as soon as it arrives"
                       + (" (waited longer than parked_max_age_hours: a sync issue)"
                          if late else ""),
            "action": ACTIONS[WAITING_RULE] if late else None, "evidence": [],
            "people": {"related": {}, "unresolved": []}, "full_reads": [], "parked": rows}


def _people(m: Meeting) -> dict[str, Any]:
    """Whom the attendees are in Salesforce, and who matches nobody (since when, why)."""
    return {"related": {e: dict(p) for e, p in sorted(m.people.items())},
            "unresolved": [{"email": e, "since": since,
                            "why": "no Salesforce User, Contact or Lead has this email; it "
                                   "is related once a look-up finds one"}
                           for e, since in sorted(m.unresolved.items())]}


def full_reads(store: Store, m: Meeting) -> list[dict[str, Any]]:
    """The latest full read (reconciliation) of each calendar this meeting has copies in:
    when, the window, and which of its copies it listed (none listed: they were gone)."""
    safety = store.safety()
    if safety is None:
        return []
    ex_ids = {i["item_id"] for i in m.items.values()}
    mailboxes = {i["mailbox"] for i in m.items.values()}
    out = []
    for read in sorted(safety.reads.values(), key=lambda r: (r["source"], r["mailbox"])):
        if read["mailbox"] not in mailboxes:
            continue
        mine = ex_ids if read["source"] == "exchange" else set(m.sf)
        out.append({"source": read["source"], "mailbox": read["mailbox"],
                    "observed_at": read["observed_at"], "start": read["start"],
                    "end": read["end"], "listed": sorted(mine & set(read["ids"]))})
    return out


def _focus(m: Meeting, r: Resolved) -> str | None:
    """The Exchange item key the question is about, when there is one."""
    if r.item_key:
        return r.item_key
    if r.salesforce_id:
        for key, sf_id in m.links.items():
            if sf_id == r.salesforce_id:
                return key
        return None
    saved: list[str] = [s["item_key"] for s in m.saves.values()]
    heads = [k for k, i in m.items.items() if i["item_type"] in ("single", "master")]
    organizer = [k for k in heads if m.items[k]["is_organizer"]]
    candidates = saved or organizer or heads
    return candidates[0] if candidates else None


def _verdict(m: Meeting, r: Resolved, settings: OrgSettings) -> dict[str, Any]:
    focus = _focus(m, r)
    sf_focus = r.salesforce_id or (next(iter(m.sf), None) if not m.items else None)
    about = {focus, f"sf|{sf_focus}" if sf_focus else None} - {None}
    issues = [(k, i) for k, i in m.issues.items() if i["item_key"] in about] or \
        ([] if r.item_key or r.salesforce_id else list(m.issues.items()))
    notes = [(k, i) for k, i in issues if i["rule"] in NOT_BLOCKING]
    issues = [(k, i) for k, i in issues if i["rule"] not in NOT_BLOCKING]
    if notes and not issues and notes[0][1]["rule"] == "write-refused":
        issues = notes[:1]  # a refused write is why the item is not synced (yet)
    note = "".join(f" Note ({i['rule']}): {_issue_message(m, k, i['rule'])}" for k, i in notes
                   if (k, i) not in issues)
    item = m.items.get(focus) if focus else None

    def relevant(types: set[str], keys: set[str] | None = None) -> Any:
        def pick(e: dict[str, Any]) -> bool:
            if e["type"] not in types:
                return False
            return keys is None or bool(_entry_keys(e) & keys)
        return pick

    mailbox = focus.partition("|")[0] if focus else None
    if mailbox in m.conflicts and focus:
        organizer = m.items[focus]["organizer"]
        return {"synced": False, "rule": "attendee-before-organizer",
                "message": f"{mailbox} saved this meeting before its organizer {organizer} did; "
                           "it is held as a sync conflict, nothing was written to Salesforce.",
                "action": f"the organizer ({organizer}) must save it first; the conflict then "
                          "resolves and the organizer's event is the one linked",
                "evidence_filter": relevant({"SidebarSaveObserved", "ConflictDetected",
                                             "ExchangeItemObserved"}, {focus})}
    if issues:
        key, issue = issues[0]
        rule = issue["rule"]
        return {"synced": False, "rule": rule,
                "message": _issue_message(m, key, rule),
                "action": ACTIONS.get(rule, "see the sync issue"),
                "evidence_filter": relevant({"ExchangeItemObserved", "SalesforceEventObserved",
                                             "SyncIssueRaised", "SidebarSaveObserved",
                                             "SettingsChanged", "Linked"},
                                            {issue["item_key"], key})}
    linked = focus in m.links if focus else bool(sf_focus and sf_focus in m.links.values())
    save = next((s for s in m.saves.values() if s["item_key"] == focus), None)
    no_attendees = bool(save and save["rule"] == "organizer-not-user")
    how = (" (saved with no attendees: the organizer is not a product user of the org)"
           if no_attendees else "")
    if linked:
        sf_id = m.links.get(focus) if focus else sf_focus
        message = f"synced: Exchange item <-> Salesforce Event {sf_id}{how}"
        return {"synced": True, "rule": "organizer-not-user" if no_attendees else None,
                "message": message + _pending_note(m) + note, "action": None,
                "evidence_filter": relevant({"SaveAccepted", "Linked", "WritesPlanned",
                                             "SeriesMasterUpdated", "SeriesMasterOverwritten"})}
    if m.pending:
        return {"synced": False, "rule": "organizer-not-user" if no_attendees else None,
                "message": f"accepted for sync{how}; the other calendar does not show it yet"
                           + _pending_note(m),
                "action": "run 'syncledger sync' to carry out the plan",
                "evidence_filter": relevant({"SaveAccepted", "DownSyncAccepted",
                                             "WritesPlanned"})}
    if item is not None:
        reason = _out_of_scope_reason(item, settings)
        return {"synced": False, "rule": None, "message": reason,
                "action": "a product user can save it from the Outlook sidebar",
                "evidence_filter": relevant({"ExchangeItemObserved"}, {focus} if focus else None)}
    return {"synced": False, "rule": None,
            "message": "only seen in Salesforce, and not eligible to go down to Exchange "
                       "(its owner is not a product user, or it is an occurrence of a series)",
            "action": "an admin can add the owner as a product user",
            "evidence_filter": relevant({"SalesforceEventObserved"})}


def _issue_message(m: Meeting, key: str, rule: str) -> str:
    item_key_ = m.issues[key]["item_key"]
    item = m.items.get(item_key_)
    what = f"the Outlook item {item['item_id']}" if item else "the Salesforce event"
    text = {
        "private-item": f"{what} is private and the org does not sync private items; "
                        "it was skipped and its content is not stored.",
        "recurring-all-day": f"{what} is a recurring all-day series; these are not synced "
                             "(a sync issue is logged and Outlook shows the Error category).",
        "recurrence-conversion": f"{what} was synced as one kind (single or series) and became "
                                 "the other; Salesforce cannot convert it, so it is not synced.",
        "unsupported-time-zone": f"{what} uses time zone '{(item or {}).get('time_zone')}', "
                                 "which has no Salesforce match: can't match time zone.",
        "lightning-recurrence": "this is a Salesforce Lightning event series (IsRecurrence2); "
                                "Lightning series are not synced down to Exchange.",
        "event-too-long": f"{what} lasts more than 24 hours; Salesforce refuses such events, "
                          "so nothing was written.",
        "all-day-too-long": f"{what} is an all-day event of more than 14 days; Salesforce "
                            "refuses such events, so nothing was written.",
        "recurrence-unrepresentable": f"{what} is a series whose pattern Salesforce Classic "
                                      "cannot represent, so nothing was written.",
        "text-too-long": f"{what} has a subject, location or body longer than Salesforce "
                         "keeps; the Salesforce copy holds it shortened, with a marker.",
        "recurrence-capped": f"{what} is a longer series than Salesforce keeps; the Salesforce "
                             "series ends at the last occurrence it can hold.",
        "write-refused": f"the API refused a write for {what}; it is recorded as a sync issue "
                         "and not sent again until the item changes.",
        "lightning-relations": f"the Salesforce copy of {what} is a Lightning event series; "
                               "its attendee list and statuses are not carried either way.",
    }
    return text.get(rule, f"sync issue {rule}")


def _pending_note(m: Meeting) -> str:
    return f" ({len(m.pending)} write(s) still pending)" if m.pending else ""


def _out_of_scope_reason(item: dict[str, Any], settings: OrgSettings) -> str:
    if not settings.is_product_user(item["mailbox"]):
        return f"the mailbox {item['mailbox']} is not a product user's"
    if not item["is_organizer"]:
        return ("attendee copies are only synced when the attendee saves them from the "
                "sidebar, and nobody has")
    return ("outside the auto-save window (14 days back to 60 days ahead of when it was "
            "observed) and never saved explicitly")


def _entry_keys(entry: dict[str, Any]) -> set[str]:
    c = entry["changes"]
    out: set[str] = set()
    for name in ("item_key", "issue_key", "conflict_key"):
        if isinstance(c.get(name), str):
            out.add(c[name])
    mailbox = c.get("mailbox")
    item_id = c.get("item_id") or c.get("exchange_id")
    if isinstance(mailbox, list):
        mailbox = mailbox[1]
    if isinstance(item_id, list):
        item_id = item_id[1]
    if isinstance(mailbox, str) and isinstance(item_id, str):
        out.add(item_key(mailbox, item_id))
    event_id = c.get("event_id") or c.get("salesforce_id")
    if isinstance(event_id, list):
        event_id = event_id[1]
    if isinstance(event_id, str):
        out.add(f"sf|{event_id}")  # Salesforce-side issues are keyed so
    return out


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:79] + "…"


def _evidence(entry: dict[str, Any]) -> dict[str, Any]:
    c = entry["changes"]
    detail = c.get("message") or c.get("reason") or ""
    if not detail and entry["source"] in ("graph", "salesforce", "sidebar"):
        bits = [f"{k}={v[1]!r}" for k, v in list(c.items())[:4] if isinstance(v, list)]
        detail = ", ".join(bits)
    if not detail and entry["source"] == "decision":  # what was decided, field by field
        bits = [f"{k}={_short(v)}" for k, v in c.items() if k not in ("rule", "meeting_id")]
        detail = ", ".join(bits[:6])
    return {"position": entry["position"], "time": entry["time"], "source": entry["source"],
            "type": entry["type"], "rule": entry["rule"], "detail": detail}
