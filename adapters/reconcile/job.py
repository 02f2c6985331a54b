"""``reconcile``: read both calendars as they are, record it, report drift, plan the repair.

One mailbox at a time, in a window: Graph ``calendarView`` (plus each series'
master and ``/instances``), and the Salesforce Events its owner holds there
(SOQL by owner and date, with EventRelations). Everything read is recorded as
observations first (the items as ``graph.event`` / ``salesforce.event`` lines,
the fact of a full read as ``calendar.read``), so the ledger links what carries
our marker (adoption) and its history shows the reconciliation. A linked copy
the read lacks is read directly once; if that confirms it is gone, the removal
is recorded too. ``projections.drift.classify`` then names the drift and the
repair writes; the plan is stored with an id (``plans.py``) and carried out only
by ``apply``, exactly as shown, through the outbox and the mass-change guard.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from adapters.feed.envelopes import FeedError, envelope, parse_line
from adapters.graph import wire as graph_wire
from adapters.salesforce import wire as salesforce_wire
from adapters.sync.cycle import SyncCycle, iso
from ledger.identity import exchange_index_key, ical_key, is_salesforce_id, salesforce_key
from ledger.observations import ExchangeItemSeen, SalesforceEventSeen, to_record
from projections import drift, queries


@dataclass
class MailboxRead:
    """What one mailbox's full read returned, as ledger records."""

    mailbox: str
    items: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    known_before: set[str] = field(default_factory=set)
    gone: dict[str, str] = field(default_factory=dict)
    orphans: dict[str, str] = field(default_factory=dict)
    #: (Exchange id, Salesforce id) linked once the read was recorded, before removals
    links: list[tuple[str, str]] = field(default_factory=list)


def window(now: datetime, days_back: int, days_ahead: int) -> tuple[str, str]:
    start = (now - timedelta(days=days_back)).strftime("%Y-%m-%dT%H:%M:%SZ")
    end = (now + timedelta(days=days_ahead)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return start, end


class Reconciliation:
    """Reads, records and classifies; the sync cycle's clients, outbox and recorder."""

    def __init__(self, cycle: SyncCycle, *, on_step: Callable[[str], None] = lambda s: None,
                 on_mailbox: Callable[[int], None] = lambda done: None) -> None:
        self.cycle = cycle
        self.store = cycle.store
        self.on_step = on_step
        self.on_mailbox = on_mailbox  # mailboxes read so far (a progress bar)

    def run(self, mailboxes: list[str], start: str, end: str) -> dict[str, Any]:
        """Drift rows, the repair writes and how many items each full read returned."""
        self.cycle.apply_settings()
        rows: list[dict[str, Any]] = []
        writes: list[dict[str, Any]] = []
        reads: dict[str, int] = {}
        for mailbox in mailboxes:
            self.on_step(f"reading {mailbox}")
            read = self.read(mailbox, start, end)
            reads[mailbox] = len(read.items)
            found = drift.classify(mailbox, items=read.items, events=read.events,
                                   known_before=read.known_before, links=read.links,
                                   pending=queries.pending_writes(self.store),
                                   gone=read.gone, orphans=read.orphans)
            rows += [{"mailbox": mailbox, **row} for row in found.rows]
            writes += [w for w in found.writes if w["key"] not in {x["key"] for x in writes}]
            self.on_mailbox(len(reads))
        return {"window": {"start": start, "end": end}, "drift": rows, "writes": writes,
                "reads": reads}

    # --- reading and recording -------------------------------------------------------

    def read(self, mailbox: str, start: str, end: str) -> MailboxRead:
        graph, sf, cycle = self.cycle.graph, self.cycle.sf, self.cycle
        out = MailboxRead(mailbox)
        at = iso(cycle.clock())
        view = graph.calendar_view(mailbox, start, end, property_id=cycle.marker_id)
        payloads: dict[str, dict[str, Any]] = {}
        masters: set[str] = set()
        for payload in view:
            payloads[str(payload.get("id"))] = payload
            obs = self._parse(envelope("graph.event", at, payload, mailbox=mailbox))
            if isinstance(obs, ExchangeItemSeen) and obs.series_master_id:
                masters.add(obs.series_master_id)
        for master_id in sorted(masters):
            master = graph.get_event(mailbox, master_id, property_id=cycle.marker_id)
            if master is not None:
                payloads[master_id] = master
            for payload in graph.instances(mailbox, master_id, start, end,
                                           property_id=cycle.marker_id):
                payloads[str(payload.get("id"))] = payload
        # Masters first, so their occurrences find them when recorded.
        ordered = sorted(payloads.values(), key=lambda p: not graph_wire.is_series_head(p))
        owner = self._owner(mailbox)
        records = self._with_sf_masters(sf.events_of(owner, start, end) if owner else [])
        ex_lines = [envelope("graph.event", at, p, mailbox=mailbox) for p in ordered]
        ex_lines += self._marked_heads(mailbox, at, payloads, records)
        ids = [salesforce_wire.record_id(r) for r in records]
        relations = sf.relations(ids) if ids else {}
        sf_lines = [envelope("salesforce.event", at, _plain(r),
                             relations=[_plain(x) for x in relations.get(i, [])])
                    for r, i in zip(records, ids, strict=True)]
        for line in ex_lines + sf_lines:
            obs = self._parse(line)
            if isinstance(obs, ExchangeItemSeen):
                out.items.append(to_record(obs))
            elif isinstance(obs, SalesforceEventSeen):
                out.events.append(to_record(obs))
        out.known_before = self._known(mailbox, out)
        cycle.record_lines(ex_lines + sf_lines, f"reconcile:{mailbox}")
        cycle.record_lines([
            envelope("calendar.read", at, {"source": "exchange", "start": start, "end": end,
                                           "ids": sorted(i["item_id"] for i in out.items)},
                     mailbox=mailbox),
            envelope("calendar.read", at, {"source": "salesforce", "start": start, "end": end,
                                           "ids": sorted(e["event_id"] for e in out.events)},
                     mailbox=mailbox)], f"reconcile:{mailbox}")
        out.links = [(r["exchange_id"], r["salesforce_id"])
                     for r in queries.mapping(self.store, mailbox=mailbox)]
        self._confirm_gone(mailbox, out)
        self._orphans(mailbox, out)
        return out

    def _with_sf_masters(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Classic occurrences' series masters too (a master can start before the window),
        masters first, so the occurrences join a linked series instead of a new one."""
        have = {salesforce_wire.record_id(r) for r in records}
        at = iso(self.cycle.clock())
        wanted: set[str] = set()
        for record in records:
            obs = self._parse(envelope("salesforce.event", at, _plain(record)))
            if isinstance(obs, SalesforceEventSeen) and obs.series_id \
                    and obs.series_id not in have:
                wanted.add(obs.series_id)
        masters = [m for m in (self.cycle.sf.get_event(i) for i in sorted(wanted)) if m]
        return masters + records

    def _marked_heads(self, mailbox: str, at: str, payloads: dict[str, dict[str, Any]],
                      records: list[dict[str, Any]]) -> list[bytes]:
        """Series masters a view misses (no occurrence in the window) that an Event of this
        mailbox's owner names by its iCalUId marker: found by ``$filter`` on iCalUId."""
        icals = set()
        for payload in payloads.values():
            obs = self._parse(envelope("graph.event", at, payload, mailbox=mailbox))
            if isinstance(obs, ExchangeItemSeen) and obs.ical_uid:
                icals.add(obs.ical_uid)
        lines = []
        for record in records:
            obs = self._parse(envelope("salesforce.event", at, _plain(record)))
            if not isinstance(obs, SalesforceEventSeen) or not obs.ical_marker \
                    or obs.ical_marker in icals or obs.series_id:
                continue
            for found in self.cycle.graph.find_by_ical_uid(mailbox, obs.ical_marker,
                                                            property_id=self.cycle.marker_id):
                payloads[str(found.get("id"))] = found
                lines.append(envelope("graph.event", at, found, mailbox=mailbox))
            icals.add(obs.ical_marker)
        return lines

    def _parse(self, line: bytes) -> Any:
        try:
            return parse_line(line, self.cycle.markers)
        except FeedError:
            return None  # recorded (and quarantined) with the rest; not compared

    def _owner(self, mailbox: str) -> str | None:
        users = {k.lower(): v for k, v in (self.cycle.config.org.get("product_users") or {})
                 .items()}
        owner = users.get(mailbox.lower())
        return owner if isinstance(owner, str) and is_salesforce_id(owner) else None

    def _known(self, mailbox: str, read: MailboxRead) -> set[str]:
        keys = {exchange_index_key(mailbox, i["item_id"]): i["item_id"] for i in read.items}
        keys.update({salesforce_key(e["event_id"]): e["event_id"] for e in read.events})
        found = self.store.lookup_keys(keys) if keys else {}
        return {keys[k] for k in found}

    def _confirm_gone(self, mailbox: str, read: MailboxRead) -> None:
        """Linked copies the full read lacked, read once more by id; gone ones recorded."""
        cycle = self.cycle
        seen_ex = {i["item_id"] for i in read.items}
        seen_sf = {e["event_id"] for e in read.events}
        lines = []
        at = iso(cycle.clock())
        for ex_id, sf_id in read.links:
            if ex_id not in seen_ex and cycle.graph.get_event(mailbox, ex_id) is None:
                read.gone[ex_id] = (f"linked to {sf_id}; not in the calendarView of the window "
                                    "and GET answers 404")
                lines.append(envelope("graph.event", at, graph_wire.removed_item(ex_id),
                                      mailbox=mailbox))
            if sf_id not in seen_sf and is_salesforce_id(sf_id) \
                    and cycle.sf.get_event(sf_id) is None:
                read.gone[sf_id] = (f"linked to {ex_id}; not among the owner's Events of the "
                                    "window and a query by Id finds nothing")
                lines.append(envelope("salesforce.deleted", at, salesforce_wire.deleted_record(
                    sf_id, at.replace("Z", "+0000"))))
        if lines:
            cycle.record_lines(lines, f"reconcile:{mailbox}")

    def _orphans(self, mailbox: str, read: MailboxRead) -> None:
        """Markers that name nothing: a Salesforce Id no Event has, an iCalUId no item has."""
        cycle = self.cycle
        seen_sf = {e["event_id"] for e in read.events}
        for item in read.items:
            marker = item.get("salesforce_marker")
            if not marker or item["item_type"] not in ("single", "master"):
                continue
            if not is_salesforce_id(marker):
                read.orphans[item["item_id"]] = f"marker {marker!r} is not a Salesforce Id"
            elif salesforce_key(marker)[3:] not in seen_sf and cycle.sf.get_event(marker) is None:
                read.orphans[item["item_id"]] = f"marker names Event {marker}, which does not exist"
        icals = {i["ical_uid"] for i in read.items if i.get("ical_uid")}
        for event in read.events:
            marker = event.get("ical_marker")
            if marker and event.get("series_id") is None and marker not in icals \
                    and not self.store.lookup_keys([ical_key(marker)]):
                read.orphans[event["event_id"]] = (f"marker names iCalUId {marker}, which no "
                                                   "Outlook item has")


def _plain(record: dict[str, Any]) -> dict[str, Any]:
    return {k: _plain(v) if isinstance(v, dict) else v for k, v in record.items()}
