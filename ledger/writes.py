"""The calendar writes a meeting's state calls for (the plan's source).

``desired_writes`` compares what the ledger has decided with what the two
calendars were last observed to hold, and returns the writes still missing.
A write disappears by itself once the calendars show its effect, so running
the plan twice writes nothing the second time. Keys are stable: they are the
outbox's idempotency keys.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ledger.fields import exchange_fields, is_private_sensitivity, salesforce_fields
from ledger.limits import shorten
from ledger.meeting_state import MeetingState, blocks
from ledger.recurrence import classic_plan
from ledger.settings import OrgSettings
from ledger.timezones import salesforce_zone

ERROR_CATEGORY = "Error"
SAVE_CATEGORY, UNSYNC_CATEGORY = "Salesforce", "Unsync"
#: Salesforce relates an Event to up to 50 Contacts or one Lead as its "Who" (DOMAIN.md §12).
MAX_WHO_CONTACTS = 50


def _write(
    target: str, op: str, mailbox: str | None, id_: str | None, fields: dict[str, Any],
    reason: str, key: str, notify_attendees: bool = False,
) -> dict[str, Any]:
    return {"key": key, "target": target, "op": op, "mailbox": mailbox, "id": id_,
            "fields": fields, "reason": reason, "notify_attendees": notify_attendees}


def write_digest(write: dict[str, Any]) -> str:
    """What a write sends, as one value: a refused write stays refused while this holds."""
    content = {k: write.get(k) for k in ("target", "op", "mailbox", "id", "fields")}
    text = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha1(text.encode()).hexdigest()


#: Writes keyed by the Exchange item they are about (``<kind>|<item key>``); every
#: other key names a Salesforce Id first (``sf-update|<Id>``, ``sf-relate|<Id>|<rid>``).
ITEM_KEYED = ("sf-create", "ex-update", "ex-categories", "ex-attendees")


def write_item_key(m: MeetingState, write_key: str) -> str:
    """The item a write is about: an Exchange item key, or ``sf|<Id>``."""
    kind, _, rest = write_key.partition("|")
    if kind in ITEM_KEYED:
        return rest
    sf_id = rest.partition("|")[0]
    linked = next((k for k, v in m.links.items() if v == sf_id), None)
    return linked or f"sf|{sf_id}"


def refused_items(m: MeetingState) -> set[str]:
    """Outlook items with a write the API refused (DOMAIN.md §4: a failed item shows
    "Error"), straight from the refusals, whichever system refused; a refused category
    write is left out (its own Error would only be refused again)."""
    keys = {write_item_key(m, k) for k in m.refused if not k.startswith("ex-categories|")}
    return {k for k in keys if not k.startswith("sf|")}


def desired_writes(m: MeetingState, settings: OrgSettings) -> dict[str, dict[str, Any]]:
    # Each kind of write below starts from one of these collections; a meeting
    # with all of them empty (nothing saved, linked or flagged: most attendee
    # copies) wants no write, and this is asked after every observation.
    if not (m.saves or m.down_syncs or m.flagged or m.sf_targets or m.ex_targets
            or m.deletions or m.links):
        return {}
    out: dict[str, dict[str, Any]] = {}
    for w in (*_creates(m, settings), *_category_writes(m), *_series_updates(m),
              *_overwrites(m), *_deletions(m), *_two_way_updates(m), *_relation_writes(m)):
        out[w["key"]] = w
    return out


def _blocked(m: MeetingState, key: str) -> bool:
    return any(i["item_key"] == key and blocks(i) for i in m.issues.values())


def _classic_recurrence(item: dict[str, Any], settings: OrgSettings) -> dict[str, Any] | None:
    """An Exchange series' recurrence with the end date its Classic copy gets
    (the Nth occurrence of a numbered range, the last one Salesforce keeps)."""
    rec: dict[str, Any] | None = item["recurrence"]
    if not rec or item["item_type"] != "master":
        return rec
    zone = salesforce_zone(item["time_zone"], settings.salesforce_time_zones)
    return {**rec, "end_date": classic_plan(rec, item["start"], zone).end_date}


def _creates(m: MeetingState, settings: OrgSettings) -> list[dict[str, Any]]:
    out = []
    for saver, save in m.saves.items():
        key = save["item_key"]
        item = m.items.get(key)
        if item is None or key in m.links or _blocked(m, key) or key in m.removed:
            continue
        fields = {**_salesforce_texts(item), "start": item["start"], "end": item["end"],
                  "is_all_day": item["is_all_day"], "owner_id": save["owner_id"],
                  "what_id": save["what_id"],
                  "who_id": save["who_id"] or (who_of(m, key) if save["rule"] is None else None),
                  "ical_marker": m.ical_uid,
                  "invitees": relation_fields(m, key) if save["rule"] is None else [],
                  "recurrence": _classic_recurrence(item, settings),
                  "time_zone": salesforce_zone(item["time_zone"],
                                               settings.salesforce_time_zones) or "UTC"}
        if is_private_sensitivity(item["sensitivity"]):  # synced only when the org allows
            fields["is_private"] = True
        reason = save["rule"] or f"saved by {saver}"
        out.append(_write("salesforce", "create", item["mailbox"], None, fields,
                          reason, f"sf-create|{key}"))
    for sf_id, mailbox in m.down_syncs.items():
        event = m.sf.get(sf_id)
        if event is None or sf_id in m.links.values() or sf_id in m.sf_deleted:
            continue
        fields = {"subject": event["subject"], "body": event["description"],
                  "location": event["location"], "start": event["start"], "end": event["end"],
                  "is_all_day": event["is_all_day"], "salesforce_marker": sf_id,
                  "recurrence": event["recurrence"], "attendee_status": "unknown",
                  "categories": [SAVE_CATEGORY],
                  # Salesforce invitees become attendees with no response (DOMAIN.md §4)
                  "attendees": [{"email": e, "response": "none"} for e in
                                _invitee_emails(m, sf_id)]}
        if event.get("is_private"):  # only down-synced when the org syncs private items
            fields["sensitivity"] = "private"
        out.append(_write("exchange", "create", mailbox, None, fields,
                          "created in Salesforce by a product user", f"ex-create|{sf_id}"))
    return out


def _salesforce_texts(item: dict[str, Any]) -> dict[str, str]:
    """An Outlook item's texts as Salesforce can hold them (``text-too-long`` says so)."""
    return {"subject": shorten("subject", item["subject"]),
            "description": shorten("description", item["body"]),
            "location": shorten("location", item["location"])}


def _category_writes(m: MeetingState) -> list[dict[str, Any]]:
    """Outlook categories (DOMAIN.md §4): "Error" on items with an open issue or a
    refused write, off once resolved; "Salesforce" on synced single items; both
    "Salesforce" and "Unsync" off an item whose sync was withdrawn (its Salesforce copy
    deleted or unsynced). A series master is not tagged: Exchange would rewrite every
    occurrence for a label."""
    out = []
    failed = refused_items(m) if m.refused else set()
    for key, item in m.items.items():
        if key in m.removed:
            continue
        synced = key in m.links and item["item_type"] == "single"
        if not (synced or key in m.flagged or key in m.withdrawn):
            continue
        cats = list(item["categories"])
        new = list(cats)
        notes = []
        if key in m.flagged:
            wanted = key in failed or any(i["item_key"] == key and i["outlook_category"]
                                          for i in m.issues.values())
            if wanted and ERROR_CATEGORY not in new:
                new.append(ERROR_CATEGORY)
                notes.append("set the Outlook Error category")
            elif not wanted and ERROR_CATEGORY in new:
                new.remove(ERROR_CATEGORY)
                notes.append("clear the Outlook Error category")
        if synced and SAVE_CATEGORY not in new:
            new.append(SAVE_CATEGORY)
            notes.append("mark the item synced (Salesforce category)")
        elif key in m.withdrawn and not synced and (SAVE_CATEGORY in new
                                                    or UNSYNC_CATEGORY in new):
            new = [c for c in new if c not in (SAVE_CATEGORY, UNSYNC_CATEGORY)]
            notes.append("its Salesforce copy is gone: drop the Salesforce category")
        if new == cats:
            continue
        out.append(_write("exchange", "set-categories", item["mailbox"], item["item_id"],
                          {"categories": new}, "; ".join(notes), f"ex-categories|{key}"))
    return out


def _series_updates(m: MeetingState) -> list[dict[str, Any]]:
    """series-master-update: one update per future Salesforce occurrence, no notices."""
    out = []
    for sf_id, wanted in sorted(m.sf_targets.items()):
        event = m.sf.get(sf_id)
        if event is None or sf_id in m.sf_deleted:
            continue
        fields = {k: v for k, v in wanted.items() if event.get(k) != v}
        if fields:
            out.append(_write("salesforce", "update", None, sf_id, fields,
                              "series-master-update", f"sf-update|{sf_id}"))
    return out


def _overwrites(m: MeetingState) -> list[dict[str, Any]]:
    """series-master-overwrite: Salesforce master values on every Exchange occurrence."""
    out = []
    for key, wanted in sorted(m.ex_targets.items()):
        item = m.items.get(key)
        if item is None or key in m.removed:
            continue
        fields = {}
        for name, value in wanted.items():
            if name == "_version":
                continue
            current = item.get("body" if name == "description" else name)
            if name == "what_id":
                if item["version"] == wanted["_version"]:
                    fields[name] = value  # not visible on the item: done once it changes
            elif current != value:
                fields["body" if name == "description" else name] = value
        if fields:
            out.append(_write("exchange", "update", item["mailbox"], item["item_id"], fields,
                              "series-master-overwrite", f"ex-update|{key}"))
    return out


def _deletions(m: MeetingState) -> list[dict[str, Any]]:
    return [_write("salesforce", "delete", None, sf_id, {}, reason, f"sf-delete|{sf_id}")
            for sf_id, reason in sorted(m.deletions.items()) if sf_id not in m.sf_deleted]


def _two_way_updates(m: MeetingState) -> list[dict[str, Any]]:
    """Linked single items: the side that moved from the common base wins; Outlook first."""
    out = []
    for key, sf_id in sorted(m.links.items()):
        item, event, base = m.items.get(key), m.sf.get(sf_id), m.bases.get(sf_id)
        if item is None or event is None or base is None or item["item_type"] != "single":
            continue
        if _blocked(m, key) or key in m.removed or sf_id in m.sf_deleted:
            continue
        ex, sf = exchange_fields(item), salesforce_fields(event)
        if ex == sf:
            continue
        if ex != base:
            # The texts as they are (shortened to fit), not their comparable form.
            sent = {**_salesforce_texts(item), "start": item["start"], "end": item["end"]}
            fields = {k: sent[k] for k, v in ex.items() if sf[k] != v}
            out.append(_write("salesforce", "update", item["mailbox"], sf_id, fields,
                              "changed in Outlook", f"sf-update|{sf_id}"))
        elif sf != base:
            fields = {("body" if k == "description" else k): event[k]
                      for k, v in sf.items() if ex[k] != v}
            out.append(_write("exchange", "update", item["mailbox"], item["item_id"], fields,
                              "changed in Salesforce", f"ex-update|{key}"))
    return out


# --- people: EventRelations and the Who -----------------------------------------


def relation_fields(m: MeetingState, key: str) -> list[dict[str, Any]]:
    """The EventRelations a create sends: every related attendee as an invitee with its
    Outlook status; Contacts (up to 50), or else one Lead, also as the Event's Who."""
    desired = m.desired_relations(key)
    parents = _parents(m, key)
    return [{"relation_id": rid, "status": status, "is_parent": rid in parents}
            for rid, status in desired.items()]


def _parents(m: MeetingState, key: str) -> set[str]:
    types = {p["relation_id"]: p["person_type"] for p in m.people.values()}
    desired = list(m.desired_relations(key))
    contacts = [r for r in desired if types.get(r) == "Contact"][:MAX_WHO_CONTACTS]
    if contacts:
        return set(contacts)
    return set([r for r in desired if types.get(r) == "Lead"][:1])


def who_of(m: MeetingState, key: str) -> str | None:
    """``WhoId``: the first related Contact in attendee order, else the first Lead."""
    types = {p["relation_id"]: p["person_type"] for p in m.people.values()}
    desired = list(m.desired_relations(key))
    for kind in ("Contact", "Lead"):
        for rid in desired:
            if types.get(rid) == kind:
                return rid
    return None


def _invitee_emails(m: MeetingState, sf_id: str) -> list[str]:
    observed = m.observed_relations(sf_id) or {}
    return sorted(e for rid in observed for e in [m.email_of(rid)] if e)


def lightning_linked(m: MeetingState, key: str) -> bool:
    """The item's Salesforce copy is (now) a Lightning event series (``IsRecurrence2``)."""
    event = m.sf.get(m.links.get(key) or "")
    return bool(event and event["is_lightning_series"])


def _relation_writes(m: MeetingState) -> list[dict[str, Any]]:
    """Attendee lists both ways (DOMAIN.md §4) for each synced organizer item. An item
    whose Salesforce copy is a Lightning series gets none: rule ``lightning-relations``
    says what is not carried (``ledger.rules.lightning_relations``)."""
    return [w for key in m.relating_items() if not lightning_linked(m, key)
            for w in relation_writes_for(m, key)]


def relation_writes_for(m: MeetingState, key: str) -> list[dict[str, Any]]:
    """One organizer item's attendee list and statuses (DOMAIN.md §4): added in
    Outlook -> related in Salesforce; removed in Outlook (or the attendee deleted their
    copy) -> relation deleted; Outlook response -> Status; added in Salesforce -> added
    in Outlook with no response; removed in Salesforce -> Outlook left as it is."""
    out: list[dict[str, Any]] = []
    sf_id = m.links.get(key)
    item = m.items[key]
    observed = m.observed_relations(sf_id) if sf_id else None
    if sf_id is None or observed is None or sf_id in m.sf_deleted or _blocked(m, key) \
            or key in m.removed or sf_id in m.deletions:
        return out
    known = m.relations.get(sf_id, {})
    desired = m.desired_relations(key)
    parents = _parents(m, key)
    for rid, status in desired.items():
        if rid not in observed and rid not in known:
            out.append(_write("salesforce", "relate", item["mailbox"], sf_id,
                              {"relation_id": rid, "status": status,
                               "is_parent": rid in parents},
                              "attendee added in Outlook", f"sf-relate|{sf_id}|{rid}"))
        elif rid in observed and observed[rid] != status:
            out.append(_write("salesforce", "relation-status", item["mailbox"], sf_id,
                              {"relation_id": rid, "status": status},
                              "attendee responded in Outlook",
                              f"sf-relation-status|{sf_id}|{rid}"))
    added_in_sf = []
    for rid in sorted(observed):
        if rid in desired:
            continue
        if known.get(rid) == "agreed":
            out.append(_write("salesforce", "unrelate", item["mailbox"], sf_id,
                              {"relation_id": rid}, "attendee removed in Outlook",
                              f"sf-unrelate|{sf_id}|{rid}"))
        elif rid not in known:
            email = m.email_of(rid)
            listed = {a["email"] for a in item["attendees"]}
            if email and email not in listed and not m.copy_deleted(email):
                added_in_sf.append(email)
    if added_in_sf:
        attendees = [{"email": a["email"], "name": a["name"], "response": a["response"]}
                     for a in item["attendees"]]
        attendees += [{"email": e, "name": "", "response": "none"} for e in added_in_sf]
        out.append(_write("exchange", "update", item["mailbox"], item["item_id"],
                          {"attendees": attendees}, "invitee added in Salesforce",
                          f"ex-attendees|{key}"))
    who = who_of(m, key)
    event = m.sf.get(sf_id)
    saved_who = next((s["who_id"] for s in m.saves.values() if s["item_key"] == key), None)
    if event is not None and who and not saved_who and event["who_id"] is None:
        out.append(_write("salesforce", "update", item["mailbox"], sf_id, {"who_id": who},
                          "the first related Contact (or the Lead) is the Event's Who",
                          f"sf-who|{sf_id}"))
    return out
