"""Drift between the two calendars and the ledger, by class, and the repair plan (issue 14).

Pure: ``classify`` takes what a full read of one mailbox's window returned on
both sides (as the ledger's records: no wire names), what the ledger knew before
that read, its mapping and its planned writes after recording the read, and
returns one row per drift with both ids and the evidence, plus the writes that
repair it. The writes are either the ledger's own planned writes (a missing copy,
a field that differs, a deletion that follows a confirmed removal), named by
their key, or the removal of an extra copy we created (it carries our marker and
is not the linked one). Copies we did not create are reported, never deleted.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ledger.fields import exchange_fields, salesforce_fields

CLASSES = ("missing-in-salesforce", "missing-in-outlook", "adopted", "duplicate",
           "field-drift", "target-gone", "orphan-marker")


@dataclass
class Drift:
    rows: list[dict[str, Any]] = field(default_factory=list)
    writes: list[dict[str, Any]] = field(default_factory=list)

    def add(self, kind: str, exchange_id: str | None, salesforce_id: str | None,
            evidence: str, repair: str, write: dict[str, Any] | None = None) -> None:
        self.rows.append({"class": kind, "exchange_id": exchange_id,
                          "salesforce_id": salesforce_id, "evidence": evidence,
                          "repair": repair})
        if write is not None and write["key"] not in {w["key"] for w in self.writes}:
            self.writes.append(write)


def classify(mailbox: str, *, items: list[dict[str, Any]], events: list[dict[str, Any]],
             known_before: set[str], links: Iterable[tuple[str, str]],
             pending: list[dict[str, Any]], gone: dict[str, str],
             orphans: dict[str, str]) -> Drift:
    """Drift rows and repair writes for one mailbox's window.

    ``items`` / ``events``: Exchange item and Salesforce Event records the read
    returned; ``known_before``: their ids the ledger already had; ``links``:
    (Exchange id, Salesforce id) the mapping holds for the mailbox after the read;
    ``pending``: the ledger's planned writes; ``gone``: linked ids a full read
    lacked and a direct read confirmed gone (id -> evidence); ``orphans``: marker
    values that name nothing (copy id -> evidence).
    """
    out = Drift()
    link_ex = dict(links)
    link_sf = {sf: ex for ex, sf in link_ex.items()}
    by_key = {w["key"]: w for w in pending}
    ex_by_id = {i["item_id"]: i for i in items}
    sf_by_id = {e["event_id"]: e for e in events}

    for w in pending:
        if w["op"] == "create" and w["target"] == "salesforce" and w.get("mailbox") == mailbox:
            item_id = w["key"].partition("|")[2].partition("|")[2]
            out.add("missing-in-salesforce", item_id, None,
                    f"in scope ({w['reason']}); no Salesforce Event carries its iCalUId",
                    "create the Salesforce Event", w)
        elif w["op"] == "create" and w["target"] == "exchange" and w.get("mailbox") == mailbox:
            sf_id = w["key"].partition("|")[2]
            out.add("missing-in-outlook", None, sf_id,
                    f"{w['reason']}; no Outlook item carries its Id",
                    "create the Outlook item", w)

    adopted: set[str] = set()
    for item in items:
        marker = item.get("salesforce_marker")
        if marker and item["item_id"] not in known_before and link_ex.get(item["item_id"]) \
                and item["item_id"] not in orphans:
            adopted.add(link_ex[item["item_id"]])
            out.add("adopted", item["item_id"], link_ex[item["item_id"]],
                    f"carries our marker {marker}; the ledger had no record of this copy",
                    "linked by its marker (no write)")
    for event in events:
        marker = event.get("ical_marker")
        if marker and event["event_id"] not in known_before and link_sf.get(event["event_id"]) \
                and event["event_id"] not in adopted:
            out.add("adopted", link_sf[event["event_id"]], event["event_id"],
                    f"carries our marker {marker}; the ledger had no record of this Event",
                    "linked by its marker (no write)")

    _duplicates(out, mailbox, items, events, link_ex, link_sf)

    for ex_id, sf_id in sorted(link_ex.items()):
        linked_item, linked_event = ex_by_id.get(ex_id), sf_by_id.get(sf_id)
        if linked_item is None or linked_event is None or linked_item["item_type"] != "single":
            continue
        ex, sf = exchange_fields(linked_item), salesforce_fields(linked_event)
        differ = sorted(k for k in ex if ex[k] != sf[k])
        if differ:
            write = by_key.get(f"sf-update|{sf_id}") or by_key.get(f"ex-update|{mailbox}|{ex_id}")
            out.add("field-drift", ex_id, sf_id, f"differs in {', '.join(differ)}",
                    f"{write['target']} {write['op']} ({write['reason']})" if write
                    else "none planned (the ledger's rules leave it as it is)", write)

    for gone_id, evidence in sorted(gone.items()):
        if link_sf.get(gone_id) in orphans:
            continue  # the copy's marker named nothing: reported as an orphan below
        is_sf = gone_id in link_sf or gone_id not in link_ex
        write = by_key.get(f"sf-delete|{link_ex.get(gone_id, '')}") if not is_sf else None
        out.add("target-gone", link_sf.get(gone_id) if is_sf else gone_id,
                gone_id if is_sf else link_ex.get(gone_id), evidence,
                f"{write['target']} {write['op']} ({write['reason']})" if write
                else "removal recorded; the link ends (no write)", write)

    for copy_id, evidence in sorted(orphans.items()):
        out.add("orphan-marker", copy_id if copy_id in ex_by_id else None,
                copy_id if copy_id not in ex_by_id else None, evidence,
                "reported only: the copy stays as it is")
    return out


def _duplicates(out: Drift, mailbox: str, items: list[dict[str, Any]],
                events: list[dict[str, Any]], link_ex: dict[str, str],
                link_sf: dict[str, str]) -> None:
    """Two copies of one meeting on one side: same marker, or same subject + start +
    organizer (DOMAIN.md §4). The linked copy stays; extra copies we stamped go."""
    heads = [i for i in items if i["item_type"] in ("single", "master")]
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for item in heads:
        if item.get("salesforce_marker"):
            groups[("ex-marker", item["salesforce_marker"])].append(item)
        elif item.get("sensitivity", "normal") == "normal":  # private items are not compared
            groups[("ex-same", item["subject"], item["start"], item["organizer"])].append(item)
    for group in groups.values():
        if len(group) < 2:
            continue
        ids = sorted(i["item_id"] for i in group)
        keep = next((i for i in ids if i in link_ex), ids[0])
        for item in sorted(group, key=lambda i: str(i["item_id"])):
            if item["item_id"] == keep:
                continue
            ours = bool(item.get("salesforce_marker"))
            evidence = (f"same marker {item['salesforce_marker']} as {keep}" if ours else
                        f"same subject, start and organizer as {keep}")
            write = _delete("exchange", mailbox, item["item_id"],
                            f"extra copy of {keep} (ours: it carries our marker)") if ours \
                else None
            out.add("duplicate", item["item_id"], link_ex.get(keep), evidence,
                    "delete the extra Outlook copy" if ours else
                    "reported only: we did not create it", write)
    sf_heads = [e for e in events if e.get("series_id") is None]
    sf_groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for event in sf_heads:
        if event.get("ical_marker"):
            sf_groups[("sf-marker", event["ical_marker"])].append(event)
        else:
            sf_groups[("sf-same", event["subject"], str(event["start"]),
                       str(event["owner_id"]))].append(event)
    for group in sf_groups.values():
        if len(group) < 2:
            continue
        ids = sorted(e["event_id"] for e in group)
        keep = next((i for i in ids if i in link_sf), ids[0])
        for event in sorted(group, key=lambda e: str(e["event_id"])):
            if event["event_id"] == keep:
                continue
            ours = bool(event.get("ical_marker"))
            evidence = (f"same marker {event['ical_marker']} as {keep}" if ours else
                        f"same subject, start and owner as {keep}")
            write = _delete("salesforce", mailbox, event["event_id"],
                            f"extra copy of {keep} (ours: it carries our marker)") if ours \
                else None
            out.add("duplicate", link_sf.get(keep), event["event_id"], evidence,
                    "delete the extra Salesforce Event" if ours else
                    "reported only: we did not create it", write)


def _delete(target: str, mailbox: str, id_: str, reason: str) -> dict[str, Any]:
    """A repair write of the same shape as the ledger's planned writes."""
    return {"key": f"reconcile-delete|{target}|{id_}", "target": target, "op": "delete",
            "mailbox": mailbox, "id": id_, "fields": {}, "reason": reason,
            "notify_attendees": False}
