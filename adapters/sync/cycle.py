"""One live sync cycle: pull both sides, record, project, write the plan, record results.

Data flows one way (STYLE.md): wire payloads become feed envelopes, envelopes
become observations through the same parser ``ingest`` uses (so ``--record``
files re-ingest to the same events), the ledger decides, the plan projection
lists the writes, the outbox carries them out once, and what the APIs answer
comes back as observations, which settle the plan. A second cycle with no
outside change therefore writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO
from uuid import UUID

from adapters.feed.envelopes import (
    WIRE_FIELDS,
    FeedError,
    Markers,
    envelope,
    parse_line,
    refused_payload,
)
from adapters.feed.privacy import redact_line
from adapters.graph import ids as graph_ids
from adapters.graph import wire as graph_wire
from adapters.graph.client import DeltaExpired, GraphClient, GraphError
from adapters.salesforce import wire as salesforce_wire
from adapters.salesforce.client import SalesforceClient
from adapters.sync.config import SyncConfig
from adapters.sync.outbox import Outbox, outbox_key
from adapters.sync.refusals import Refusal, refusal
from ledger.identity import exchange_index_key, is_salesforce_id, salesforce_id18
from ledger.intake import InputError, Intake, IntakeResult, Ledger
from ledger.store import Store
from ledger.write_targets import target_refusal
from ledger.writes import write_digest

MAX_ROUNDS = 4  # write -> observe -> plan again (e.g. categories after a create)
#: An email found in no User, Contact or Lead is asked again after this long.
LOOKUP_AGAIN_AFTER = timedelta(hours=24)
LOOKED_UP = "people.looked_up:"  # checkpoint name prefix: email -> when it was last asked


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class SyncReport:
    observed: dict[str, int] = field(default_factory=lambda: {
        "graph": 0, "salesforce": 0, "salesforce_deleted": 0})
    appended: int = 0
    duplicates: int = 0
    quarantined: int = 0
    writes: list[dict[str, Any]] = field(default_factory=list)
    #: write key -> why it failed; a write that succeeds in a later round drops out
    failed: dict[str, str] = field(default_factory=dict)
    #: write key -> the API's refusal: refused writes, recorded as sync issues and not
    #: sent again until they change (they do not make the cycle fail)
    refused: dict[str, str] = field(default_factory=dict)
    #: failures that a later round of the same cycle carried out after all
    recovered: list[str] = field(default_factory=list)
    resyncs: list[str] = field(default_factory=list)
    rounds: int = 0
    #: mailbox -> why the mass-change guard holds its writes this cycle
    held: dict[str, str] = field(default_factory=dict)
    #: writes the guard held back (not sent), and, for a dry run, the whole plan
    withheld: list[dict[str, Any]] = field(default_factory=list)
    planned: list[dict[str, Any]] = field(default_factory=list)

    def add(self, result: IntakeResult) -> None:
        self.appended += result.appended
        self.duplicates += result.duplicates
        self.quarantined += result.quarantined

    def as_dict(self) -> dict[str, Any]:
        return {"observed": self.observed, "events_appended": self.appended,
                "duplicates_skipped": self.duplicates, "quarantined": self.quarantined,
                "writes": self.writes, "failures": list(self.failed.values()),
                "refused_writes": list(self.refused.values()),
                "recovered": self.recovered, "resyncs": self.resyncs, "rounds": self.rounds,
                "held": self.held, "withheld": self.withheld, "planned": self.planned}


class SyncCycle:
    def __init__(self, store: Store, config: SyncConfig, graph: GraphClient,
                 salesforce: SalesforceClient, *, clock: Callable[[], datetime] = utcnow,
                 record: BinaryIO | None = None,
                 on_step: Callable[[str], None] = lambda step: None,
                 saves: list[tuple[str, dict[str, Any]]] | None = None,
                 dry_run: bool = False, allow_mass_change: bool = False) -> None:
        self.store = store
        self.config = config
        self.graph = graph
        self.sf = salesforce
        self.clock = clock
        self.record = record
        self.on_step = on_step
        self.ledger = Ledger(store, field_names=WIRE_FIELDS, redact_raw=redact_line)
        self.outbox = Outbox(store)
        self.report = SyncReport()
        self.markers = Markers(config.exchange_marker_property, config.salesforce_marker_field)
        self.marker_id = graph_wire.marker_property_id(config.exchange_marker_property)
        self._plan: list[dict[str, Any]] = []  # the plan as execute_plan last read it
        self.saves = list(saves or [])  # (mailbox, payload): explicit saves from the add-in
        self.dry_run = dry_run  # read and record, plan, but write nothing to either calendar
        self.allow_mass_change = allow_mass_change
        #: items each full (not incremental) Graph read returned, by mailbox
        self.full_reads: dict[str, int] = {}
        self.held: dict[str, str] | None = None  # the guard's verdict, once per cycle

    # --- recording observations -----------------------------------------

    def _safe_items(self, lines: list[bytes], source: str) -> list[Intake]:
        out = []
        for line in lines:
            if self.record is not None:
                private = None if self.ledger.settings().sync_private_items \
                    else redact_line(line)
                self.record.write((private or line) + b"\n")
            try:
                out.append(Intake(source, None, line, parse_line(line, self.markers)))
            except FeedError as exc:
                out.append(Intake(source, None, line, InputError(
                    str(exc), item_id=exc.item_id, field=exc.field)))
        return out

    def record_lines(self, lines: list[bytes], source: str) -> None:
        """Record feed lines read outside the cycle's own pulls (reconciliation)."""
        self._record_lines(lines, source)

    def perform(self, write: dict[str, Any]) -> dict[str, Any]:
        """Carry out one write through the outbox, record the answer; the result.

        For a plan reviewed elsewhere (``syncledger apply``): the same outbox
        entry, states and recording as the cycle's own writes.
        """
        key = outbox_key(write)
        entry = self.outbox.get(key)
        if entry is not None and entry.state == "done":
            return entry.result or {}
        self.outbox.sending(key, write, write.get("meeting_id") or "", iso(self.clock()))
        try:
            lines, result = self._perform(write, recovering=entry is not None)
        except Exception as exc:
            self.outbox.finish(key, "failed", iso(self.clock()), error=str(exc)[:500])
            raise
        self.outbox.finish(key, "done", iso(self.clock()), result=result)
        self._record_lines(lines, f"result:{write['target']}")
        return result

    def _record_lines(self, lines: list[bytes], source: str,
                      checkpoints: dict[str, str] | None = None) -> None:
        self.report.add(self.ledger.ingest(self._safe_items(lines, source),
                                           checkpoints=checkpoints))

    # --- the cycle ----------------------------------------------------------

    def run(self) -> SyncReport:
        """The whole cycle in one process: every pull, then every write (``syncledger sync``).

        The service (``adapters/service/``) runs the same steps as separate jobs
        (``adapters/sync/jobs.py``): one mailbox's pull and its Exchange writes, the
        org-wide Salesforce pull, the Salesforce writes, the projections' catch-up.
        """
        from projections import queries

        self.observe()
        if self.dry_run:
            self.report.planned = [_shown(w) for w in queries.pending_writes(self.store)]
            self.guard(queries.pending_writes(self.store))
            return self.report
        self.write_rounds()
        return self.report

    def write_rounds(self, *, target: str | None = None, mailbox: str | None = None) -> None:
        """Rounds of writes (write -> observe -> plan again), optionally one target's only.

        ``target`` (``exchange`` | ``salesforce``) and ``mailbox`` narrow the plan to
        the writes one job owns; entries whose write left the plan are settled.
        """
        from projections import queries

        plan_seen: list[dict[str, Any]] | None = None
        for _ in range(MAX_ROUNDS):
            self.report.rounds += 1
            self.on_step(f"plan round {self.report.rounds}")
            if not self.execute_plan(target=target, mailbox=mailbox):
                plan_seen = self._plan  # nothing was written since it was read
                break
        plan = plan_seen if plan_seen is not None else queries.pending_writes(
            self.store, target=target, mailbox=mailbox)
        pending = {w["key"] for w in plan}
        self.outbox.settle_absent(
            pending, iso(self.clock()), target=target, mailbox=mailbox,
            elsewhere=None if target is None and mailbox is None else
            lambda keys: queries.planned_elsewhere(self.store, keys, target=target,
                                                   mailbox=mailbox))

    def observe(self) -> None:
        """Everything before writing: settings, both calendars, the add-in's saves."""
        self.on_step("settings")
        self.apply_settings()
        for mailbox in self.config.graph.mailboxes:
            self.on_step(f"graph {mailbox}")
            self.pull_graph(mailbox)
        self.on_step("salesforce")
        self.pull_salesforce()
        self.record_saves()

    def record_saves(self, mailbox: str | None = None) -> None:
        """The add-in's explicit saves (of one mailbox, or all), recorded once.

        Saves name Outlook items, so they are recorded after the pulls saw them.
        """
        mine = [(m, p) for m, p in self.saves if mailbox is None or m == mailbox]
        if not mine:
            return
        self.on_step(f"sidebar saves ({len(mine)})")
        at = iso(self.clock())
        self._record_lines([envelope("sidebar.save", at, payload, mailbox=m)
                            for m, payload in mine], "sidebar")
        self.saves = [(m, p) for m, p in self.saves if not (mailbox is None or m == mailbox)]

    def apply_settings(self) -> None:
        """Record the configured org settings when they differ from the ledger's."""
        current = self.ledger.settings().as_record()
        wanted = {k: v for k, v in self.config.org.items()
                  if current.get(k) != (sorted(v) if isinstance(v, list) else
                                        {a.lower(): b for a, b in v.items()}
                                        if isinstance(v, dict) else v)}
        if wanted:
            self._record_lines([envelope("org.settings", iso(self.clock()), wanted)], "config")

    def pull_graph(self, mailbox: str) -> None:
        name = f"graph.delta:{mailbox}"
        link = self.store.checkpoint(name)
        now = self.clock()
        start = iso(now - timedelta(days=self.config.graph.window_days_back))[:19] + "Z"
        end = iso(now + timedelta(days=self.config.graph.window_days_ahead))[:19] + "Z"
        try:
            self._pull_delta(mailbox, name, start, end, link)
        except DeltaExpired:
            # The delta token is gone: sync the window again from scratch. Items
            # already recorded come back as duplicates and append nothing.
            self.report.resyncs.append(mailbox)
            self._pull_delta(mailbox, name, start, end, None)

    def guard(self, writes: list[dict[str, Any]]) -> dict[str, str]:
        """The mass-change guard's verdict for this cycle (decided once, then kept).

        Held mailboxes get no write at all this cycle; the hold, and its end, are
        recorded as ``sync.guard`` observations (an org-level sync issue).
        """
        from adapters.sync import guard
        from ledger.safety import Limits

        if self.held is not None:
            return self.held
        verdict = guard.decide(self.store, writes, self.config.graph.mailboxes,
                               full_reads=self.full_reads,
                               limits=Limits(self.config.mass_change_share,
                                             self.config.mass_change_count,
                                             self.config.mass_change_minimum),
                               allow=self.allow_mass_change)
        self.held = self.report.held = verdict.held
        if verdict.notes and not self.dry_run:
            at = iso(self.clock())
            self._record_lines([envelope("sync.guard", at, {"action": a, "reason": r},
                                         mailbox=m) for m, a, r in verdict.notes], "guard")
        return self.held

    def _pull_delta(self, mailbox: str, name: str, start: str, end: str,
                    link: str | None) -> None:
        masters: dict[str, dict[str, Any]] = {}
        for page in self.graph.delta_pages(mailbox, start, end, link):
            at = iso(self.clock())
            lines = []
            for event in self._with_markers(mailbox, page.events):
                if event.get("type") == "seriesMaster":
                    masters[event["id"]] = event
                event = self._filled(mailbox, event, masters)
                lines.append(envelope("graph.event", at, event, mailbox=mailbox))
            self.report.observed["graph"] += len(lines)
            # Attendees are looked up first, so the page's saves relate them at once.
            self.look_up_people(graph_wire.attendee_emails(page.events))
            # The page and the link that follows it commit together: a crash
            # never loses a page, and a repeated page appends nothing.
            self._record_lines(lines, f"graph:{mailbox}",
                               {name: page.next_link or page.delta_link or ""})
            if link is None:  # a full read of the window, not changes since a token
                self.full_reads[mailbox] = self.full_reads.get(mailbox, 0) + len(lines)

    def _with_markers(self, mailbox: str, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """New singles and masters read again with our marker property expanded.

        Delta cannot ``$expand`` extended properties, so without this an item the
        sync itself created would never show whose copy it is. Items the ledger
        already knows keep their marker (it is never removed), so only new ones
        cost a request.
        """
        # An item whose id is not a Graph id is never asked for: its line is recorded as
        # delta gave it, and quarantined there with the field named.
        heads = [e for e in events if graph_wire.is_series_head(e) and graph_ids.is_id(e.get("id"))]
        keys = {exchange_index_key(mailbox, e["id"]): e["id"] for e in heads}
        known = set(self.store.lookup_keys(keys)) if keys else set()
        fresh = {event_id for key, event_id in keys.items() if key not in known}
        out = []
        for event in events:
            full = self.graph.get_event(mailbox, event["id"], property_id=self.marker_id) \
                if event.get("id") in fresh else None
            out.append(full or event)
        return out

    def _filled(self, mailbox: str, event: dict[str, Any], masters: dict[str, dict[str, Any]]
                ) -> dict[str, Any]:
        """An occurrence stub completed from its series master (fetched when not at hand)."""
        master_id = graph_wire.occurrence_stub_master_id(event)
        if not master_id or not graph_ids.is_id(master_id):
            return event
        master = masters.get(master_id) or self.graph.get_event(mailbox, master_id)
        if master is None:
            return event
        masters[master_id] = master
        return graph_wire.fill_stub(event, master)

    def look_up_people(self, emails: set[str]) -> None:
        """The directory of people (DOMAIN.md §12): attendee emails not asked about in the
        last 24 hours are looked up among Users, Contacts and Leads, batched, and what
        was found is recorded as ``salesforce.person`` observations; when each email
        was asked is a checkpoint, written in the same transaction."""
        settings = self.ledger.settings()
        wanted = sorted(e for e in emails if e and not settings.is_product_user(e)
                        and salesforce_wire.is_lookup_email(e))
        if not wanted:
            return
        now = self.clock()
        asked = self.store.checkpoints_with_prefix(LOOKED_UP)
        due = [e for e in wanted if LOOKED_UP + e not in asked
               or datetime.fromisoformat(asked[LOOKED_UP + e]) <= now - LOOKUP_AGAIN_AFTER]
        if not due:
            return
        self.on_step(f"people ({len(due)} emails)")
        records = self.sf.people_by_email(due)
        self._record_people(records, {LOOKED_UP + e: now.isoformat() for e in due})

    def _record_people(self, records: list[dict[str, Any]],
                       checkpoints: dict[str, str] | None = None) -> None:
        at = iso(self.clock())
        lines = [envelope("salesforce.person", at, _plain(r)) for r in records]
        self.report.observed["people"] = self.report.observed.get("people", 0) + len(lines)
        self._record_lines(lines, "salesforce.people", checkpoints)

    def _people_of_relations(self, relations: dict[str, list[dict[str, Any]]]) -> None:
        """Contacts and Leads invited in Salesforce that the directory does not know."""
        directory = self.ledger.directory()
        unknown = sorted({salesforce_id18(salesforce_wire.relation_person(r))
                          for rels in relations.values() for r in rels
                          if is_salesforce_id(salesforce_wire.relation_person(r))
                          and salesforce_wire.relation_person(r)[:3] in ("003", "00Q")}
                         - set(directory.by_id if directory else ()))
        if unknown:
            self._record_people(self.sf.people_by_id(unknown))

    def pull_salesforce(self) -> None:
        name = "salesforce.modstamp"
        watermark = self.store.checkpoint(name)
        for records in self.sf.changed_since(watermark):
            if not records:
                continue
            relations = self.sf.relations([salesforce_wire.record_id(r) for r in records])
            self._people_of_relations(relations)
            at = iso(self.clock())
            lines = [envelope("salesforce.event", at, _plain(r),
                              relations=[_plain(x) for x in
                                         relations.get(salesforce_wire.record_id(r), [])])
                     for r in records]
            self.report.observed["salesforce"] += len(lines)
            self._record_lines(lines, "salesforce",
                               {name: salesforce_wire.modstamp(records[-1])})
        name = "salesforce.deleted"
        now = self.clock()
        since = self.store.checkpoint(name)
        start = max(datetime.fromisoformat(since), now - timedelta(days=15)) if since \
            else now - timedelta(days=15)
        deleted = self.sf.deleted(start, now)
        at = iso(now)
        lines = [envelope("salesforce.deleted", at, _plain(d)) for d in deleted]
        self.report.observed["salesforce_deleted"] += len(lines)
        self._record_lines(lines, "salesforce", {name: now.isoformat()})

    # --- writing ------------------------------------------------------------

    def execute_plan(self, *, target: str | None = None, mailbox: str | None = None) -> int:
        """Carry out the pending writes (of one target / mailbox); returns how many went
        out or were refused (a refusal is recorded, and changes the plan: the item's
        "Error" category goes out in the next round, not the next cycle).

        Writes of a mailbox the mass-change guard holds are left in the plan, unsent.
        """
        from adapters.sync.guard import DESTRUCTIVE, mailbox_of, owners
        from projections import queries

        done = 0
        # A job reads its own writes only; the guard, deciding for the whole org, the
        # plan's deletes and overwrites (all it counts), once per cycle.
        self._plan = writes = queries.pending_writes(self.store, target=target,
                                                     mailbox=mailbox)
        whole = target is None and mailbox is None
        held = self.guard(writes if whole or self.held is not None else
                          queries.pending_writes(self.store, ops=DESTRUCTIVE))
        sf_mailbox = owners(self.store)[1] if held else {}
        for write in writes:
            if target is not None and write["target"] != target:
                continue
            if mailbox is not None and write.get("mailbox") != mailbox:
                continue
            if held and mailbox_of(write, sf_mailbox) in held:
                if write["key"] not in {w["key"] for w in self.report.withheld}:
                    self.report.withheld.append(_shown(write))
                continue
            key = outbox_key(write)
            entry = self.outbox.get(key)
            if entry is not None and entry.state == "done":
                continue  # already written; its result is recorded or on its way
            if entry is not None and entry.state == "failed" and entry.attempts >= 3:
                continue
            if entry is not None and entry.state == "refused":
                # Refused before with this very content: not sent until it changes.
                self.report.refused.setdefault(write["key"], _described(write, entry.error))
                continue
            now = iso(self.clock())
            self.outbox.sending(key, write, write["meeting_id"], now)
            guard = self._target_refusal(write)
            if guard is not None:  # defence in depth: never written, reason recorded
                self._refused(key, write, guard)
                done += 1
                continue
            try:
                lines, result = self._perform(write, recovering=entry is not None)
            except Exception as exc:  # one bad write never stops the others
                refused = refusal(exc)
                if refused is not None:
                    self._refused(key, write, refused)
                    done += 1
                    continue
                self.outbox.finish(key, "failed", iso(self.clock()), error=str(exc)[:500])
                self.report.failed[write["key"]] = (f"{write['target']} {write['op']} "
                                                    f"{write.get('id') or write['key']}: {exc}")
                continue
            self.outbox.finish(key, "done", iso(self.clock()), result=result)
            if write["key"] in self.report.failed:
                self.report.recovered.append(self.report.failed.pop(write["key"]))
            self.report.writes.append({"target": write["target"], "op": write["op"],
                                       "id": result.get("id") or write.get("id"),
                                       "reason": write["reason"], "key": write["key"]})
            self._record_lines(lines, f"result:{write['target']}")
            done += 1
        return done

    def _refused(self, key: str, write: dict[str, Any], refused: Refusal) -> None:
        """Record the API's refusal on the meeting (an observation) and stop sending it."""
        error = f"{refused.status} {refused.code}: {refused.message}"
        self.outbox.finish(key, "refused", iso(self.clock()), error=error[:500])
        self.report.refused[write["key"]] = _described(write, error)
        self.report.failed.pop(write["key"], None)
        payload = refused_payload(write, write_digest(write), refused.status, refused.code,
                                  refused.message, refused.fields)
        self._record_lines([envelope("write.refused", iso(self.clock()), payload)],
                           f"result:{write['target']}")

    def _target_refusal(self, write: dict[str, Any]) -> Refusal | None:
        """The ledger's answer to "is this write's target the meeting's own?" as a refusal."""
        meeting = self.store.meeting(UUID(write["meeting_id"]))
        reason = target_refusal(meeting, write, self.ledger.settings())
        return None if reason is None else Refusal(0, "TARGET_NOT_THIS_MEETINGS", reason, [])

    def _perform(self, write: dict[str, Any], recovering: bool
                 ) -> tuple[list[bytes], dict[str, Any]]:
        if write["target"] == "salesforce":
            return self._perform_salesforce(write, recovering)
        return self._perform_exchange(write, recovering)

    def _perform_salesforce(self, write: dict[str, Any], recovering: bool
                            ) -> tuple[list[bytes], dict[str, Any]]:
        fields = dict(write["fields"])
        op = write["op"]
        if op == "delete":
            self.sf.delete(salesforce_wire.EVENT, write["id"])
            gone = salesforce_wire.deleted_record(write["id"], _sf_time(self.clock()))
            return [envelope("salesforce.deleted", iso(self.clock()), gone)], {"id": write["id"]}
        if op == "create":
            marker = fields.get("ical_marker")
            invitees = _invitees(fields.pop("invitees", []))
            existing = self.sf.find_by_marker(marker) if recovering and marker else []
            invited: set[str] = set()
            if existing:  # created before a crash or a lost answer: finish, don't redo
                event_id = salesforce_wire.record_id(existing[0])
                invited = {salesforce_id18(salesforce_wire.relation_person(r))
                           for r in self.sf.relations([event_id]).get(event_id, [])}
            else:
                body = salesforce_wire.fields_to_salesforce(
                    fields, marker_field=self.config.salesforce_marker_field)
                event_id = self.sf.create(salesforce_wire.EVENT, body)
            for relation_id, status, is_parent in invitees:
                if relation_id not in invited:
                    self.sf.create(salesforce_wire.EVENT_RELATION, salesforce_wire.invitee_relation(
                        event_id, relation_id, status, is_parent))
        elif op in ("relate", "unrelate", "relation-status"):
            event_id = write["id"]
            self._perform_relation(event_id, op, fields)
        else:  # update
            event_id = write["id"]
            body = salesforce_wire.fields_to_salesforce(
                fields, marker_field=self.config.salesforce_marker_field)
            self.sf.update(salesforce_wire.EVENT, event_id, body)
        record = self.sf.get_event(event_id)
        if record is None:
            raise RuntimeError(f"Salesforce Event {event_id} vanished right after the write")
        relations = self.sf.relations([event_id]).get(event_id, [])
        line = envelope("salesforce.event", iso(self.clock()), _plain(record),
                        relations=[_plain(r) for r in relations])
        return [line], {"id": event_id}

    def _perform_relation(self, event_id: str, op: str, fields: dict[str, Any]) -> None:
        """One attendee's EventRelation: created, deleted, or its Status set."""
        relation_id = str(fields["relation_id"])
        if not (is_salesforce_id(event_id) and is_salesforce_id(relation_id)):
            raise ValueError(f"not Salesforce Ids: {event_id!r}, {relation_id!r}")
        relation_id = salesforce_id18(relation_id)
        current = [r for r in self.sf.relations([event_id]).get(event_id, [])
                   if salesforce_id18(salesforce_wire.relation_person(r)) == relation_id]
        if op == "relate" and not current:
            self.sf.create(salesforce_wire.EVENT_RELATION, salesforce_wire.invitee_relation(
                event_id, relation_id, str(fields.get("status") or "New"),
                bool(fields.get("is_parent"))))
        elif op == "unrelate":
            for rel in current:
                self.sf.delete(salesforce_wire.EVENT_RELATION,
                               salesforce_wire.relation_record_id(rel))
        elif op == "relation-status":
            for rel in current:
                self.sf.update(salesforce_wire.EVENT_RELATION,
                               salesforce_wire.relation_record_id(rel),
                               salesforce_wire.relation_status(str(fields["status"])))

    def _perform_exchange(self, write: dict[str, Any], recovering: bool
                          ) -> tuple[list[bytes], dict[str, Any]]:
        mailbox, op, fields = write["mailbox"], write["op"], dict(write["fields"])
        if op == "delete":  # reconciliation removing an extra copy we created
            self.graph.delete_event(mailbox, write["id"])
            gone = graph_wire.removed_item(write["id"])
            return ([envelope("graph.event", iso(self.clock()), gone, mailbox=mailbox)],
                    {"id": write["id"]})
        if op == "create":
            marker = fields.get("salesforce_marker")
            found = self.graph.find_by_property(mailbox, self.marker_id, marker) \
                if recovering and marker else []
            event = found[0] if found else self.graph.create_event(
                mailbox, self._graph_body(fields))
            # The create's answer never shows extended properties: read it back with ours.
            event = self.graph.get_event(mailbox, event["id"],
                                         property_id=self.marker_id) or event
        else:  # update, set-categories
            try:
                event = self.graph.patch_event(mailbox, write["id"], self._graph_body(fields))
            except GraphError as exc:
                if exc.status != 404:
                    raise
                gone = graph_wire.removed_item(write["id"])
                return [envelope("graph.event", iso(self.clock()), gone, mailbox=mailbox)], {}
        line = envelope("graph.event", iso(self.clock()), event, mailbox=mailbox)
        return [line], {"id": event.get("id")}


    def _graph_body(self, fields: dict[str, Any]) -> dict[str, Any]:
        return graph_wire.observation_fields_to_graph(
            fields, marker_property=self.config.exchange_marker_property)


def _described(write: dict[str, Any], error: str | None) -> str:
    return f"{write['target']} {write['op']} {write.get('id') or write['key']}: {error or ''}"


def _invitees(planned: list[Any]) -> list[tuple[str, str, bool]]:
    """(relation id, Status, is the Who) of a create's invitees; a plan written before
    statuses were planned lists bare Ids (invited as New)."""
    out = []
    for entry in planned:
        if isinstance(entry, str):
            entry = {"relation_id": entry}
        rid = entry.get("relation_id") if isinstance(entry, dict) else None
        if isinstance(rid, str) and is_salesforce_id(rid):
            out.append((salesforce_id18(rid), str(entry.get("status") or "New"),
                        bool(entry.get("is_parent"))))
    return out


def _shown(write: dict[str, Any]) -> dict[str, Any]:
    """A planned write as reports show it (no field values: they may be private)."""
    return {"target": write["target"], "op": write["op"], "mailbox": write.get("mailbox"),
            "id": write.get("id"), "reason": write["reason"], "key": write["key"],
            "fields": sorted(write.get("fields") or {})}


def _plain(record: dict[str, Any]) -> dict[str, Any]:
    """simple-salesforce returns OrderedDicts; the feed holds plain JSON objects."""
    return {k: _plain(v) if isinstance(v, dict) else v for k, v in record.items()}


def _sf_time(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
