"""The Meeting aggregate: every observed change of one meeting, and what was decided.

One aggregate per meeting (DOMAIN.md §1). ``observe`` is the only command:
it records the observation, asks the rule book (``ledger.rules``) what
follows, records those decisions, then records the calendar writes that the
new state calls for (``ledger.writes``). Every event holds JSON-native values
only; the library's own ``timestamp`` is the observation's ``observed_at``,
never the wall clock, so a replay gives the same events byte for byte.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, CanMutateAggregate

from ledger.decision import Decision
from ledger.directory import NO_PEOPLE, People
from ledger.fields import (
    exchange_fields,
    is_private_sensitivity,
    redact,
    redact_event,
    salesforce_fields,
)
from ledger.identity import item_key, meeting_id, salesforce_id18
from ledger.limits import MAX_LENGTH, shorten
from ledger.meeting_state import MeetingState
from ledger.observations import (
    ExchangeItemGone,
    ExchangeItemSeen,
    Observation,
    PersonSeen,
    SalesforceEventGone,
    SalesforceEventSeen,
    SidebarSave,
    WriteRefused,
    to_record,
)
from ledger.rules import decide, lightning_relation_issues, relate_people
from ledger.settings import OrgSettings
from ledger.writes import desired_writes, refused_items, write_digest


class Meeting(Aggregate, MeetingState):
    """One meeting's history and what the ledger knows of it. ``observe`` is the only way in."""

    #: 2: ``removals`` (what each removal removed, so only a newer version undoes it)
    #: 3: ``people``, ``unresolved``, ``relations`` (attendees related, DOMAIN.md §12)
    #: 4: ``withdrawn_at`` (when an item's sync was withdrawn: older saves are stale)
    class_version = 4

    def __init__(self, key: str) -> None:
        MeetingState.__init__(self, key)

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        """A snapshot taken before ``removals`` existed: the removals it holds are of
        unknown time and version, so any version not recorded yet undoes them (as then)."""
        state["removals"] = {key: {"observed_at": None, "reason": reason, "version": None,
                                   "last_modified": None}
                             for key, reason in state.get("removed", {}).items()}

    @staticmethod
    def upcast_v2_v3(state: dict[str, Any]) -> None:
        """A snapshot taken before attendees were related: nobody related yet, nobody
        unresolved, no relation agreed (the next observation relates them)."""
        state.setdefault("people", {})
        state.setdefault("unresolved", {})
        state.setdefault("relations", {})

    @staticmethod
    def upcast_v3_v4(state: dict[str, Any]) -> None:
        """A snapshot taken before withdrawals were dated: their time is unknown, so no
        save is judged older than them (as then)."""
        state.setdefault("withdrawn_at", {})

    # --- events: observations ------------------------------------------

    class Opened(Aggregate.Created):
        key: str

    class ExchangeItemObserved(Aggregate.Event):
        observation: dict[str, Any]
        changed: list[str]

        def apply(self, m: Meeting) -> None:
            rec = self.observation
            key = item_key(rec["mailbox"], rec["item_id"])
            if key in m.items:
                m.previous_items[key] = m.items[key]
            m.items[key] = rec
            m.removed.pop(key, None)
            m.removals.pop(key, None)
            m.versions[f"ex|{key}|{rec['version']}"] = rec["observed_at"]
            m.refresh_bases()
            m.refresh_relations()

    class ExchangeItemRemoved(Aggregate.Event):
        observation: dict[str, Any]

        def apply(self, m: Meeting) -> None:
            rec = self.observation
            key = item_key(rec["mailbox"], rec["item_id"])
            m.removed[key] = rec["reason"]
            item = m.items.get(key)
            m.removals[key] = {
                "observed_at": rec["observed_at"], "reason": rec["reason"],
                "version": item["version"] if item else None,
                "last_modified": item["last_modified"] if item else None}
            m.versions[f"rm|{key}|{rec['reason']}|{rec['observed_at']}"] = rec["observed_at"]
            m.refresh_relations()

    class SalesforceEventObserved(Aggregate.Event):
        observation: dict[str, Any]
        changed: list[str]

        def apply(self, m: Meeting) -> None:
            rec = self.observation
            if rec["event_id"] in m.sf:
                m.previous_sf[rec["event_id"]] = m.sf[rec["event_id"]]
            m.sf[rec["event_id"]] = rec
            m.sf_deleted.pop(rec["event_id"], None)
            m.versions[f"sf|{rec['event_id']}|{rec['version']}"] = rec["observed_at"]
            m.refresh_bases()
            m.refresh_relations()

    class SalesforceEventDeleted(Aggregate.Event):
        observation: dict[str, Any]

        def apply(self, m: Meeting) -> None:
            rec = self.observation
            m.sf_deleted[rec["event_id"]] = rec["deleted_at"]
            m.versions[f"sfdel|{rec['event_id']}|{rec['deleted_at']}"] = rec["observed_at"]

    class WriteRefusedObserved(Aggregate.Event):
        observation: dict[str, Any]

        def apply(self, m: Meeting) -> None:
            rec = self.observation
            m.refused[rec["write_key"]] = {"digest": rec["digest"],
                                           "issue_key": f"write-refused|{rec['write_key']}"}
            for key in refused_items(m) & m.items.keys():
                m.flagged[key] = True  # "Error" on the item, off when the refusal resolves

    class SidebarSaveObserved(Aggregate.Event):
        observation: dict[str, Any]

        def apply(self, m: Meeting) -> None:
            rec = self.observation
            key = item_key(rec["mailbox"], rec["item_id"])
            m.explicit_saves[key] = rec
            m.versions[f"save|{key}|{rec['observed_at']}"] = rec["observed_at"]

    # --- events: decisions (each names its rule id where one applies) ----

    class SyncIssueRaised(Aggregate.Event):
        rule: str
        severity: str
        direction: str
        mailbox: str | None
        exchange_id: str | None
        salesforce_id: str | None
        item_key: str
        issue_key: str
        message: str
        outlook_category: bool

        def apply(self, m: Meeting) -> None:
            m.issues[self.issue_key] = {
                "rule": self.rule, "item_key": self.item_key,
                "outlook_category": self.outlook_category, "severity": self.severity,
            }
            if self.outlook_category:
                m.flagged[self.item_key] = True

    class SyncIssueResolved(Aggregate.Event):
        rule: str
        issue_key: str
        reason: str

        def apply(self, m: Meeting) -> None:
            m.issues.pop(self.issue_key, None)
            for key in [k for k, r in m.refused.items() if r["issue_key"] == self.issue_key]:
                del m.refused[key]

    class ConflictDetected(Aggregate.Event):
        rule: str
        attendee: str
        organizer: str
        mailbox: str
        exchange_id: str
        conflict_key: str

        def apply(self, m: Meeting) -> None:
            m.conflicts[self.attendee] = {"conflict_key": self.conflict_key}

    class ConflictResolved(Aggregate.Event):
        rule: str
        attendee: str
        organizer: str
        conflict_key: str

        def apply(self, m: Meeting) -> None:
            m.conflicts.pop(self.attendee, None)

    class SaveAccepted(Aggregate.Event):
        rule: str | None
        saver: str
        mailbox: str
        exchange_id: str
        item_key: str
        owner_id: str | None
        how: str
        invitees: list[str]
        what_id: str | None
        who_id: str | None

        def apply(self, m: Meeting) -> None:
            m.saves[self.saver] = {"item_key": self.item_key, "rule": self.rule,
                                   "owner_id": self.owner_id, "invitees": self.invitees,
                                   "what_id": self.what_id, "who_id": self.who_id}
            kind = m.items[self.item_key]["item_type"]
            m.shape = "single" if kind == "single" else "series"
            m.withdrawn.pop(self.item_key, None)
            m.withdrawn_at.pop(self.item_key, None)

    class AttendeeRelated(Aggregate.Event):
        """An attendee email is this User, Contact or Lead (DOMAIN.md §12)."""

        email: str
        relation_id: str
        person_type: str
        source: str  # "product user" | "directory" | "salesforce invitee"

        def apply(self, m: Meeting) -> None:
            m.people[self.email] = {"relation_id": self.relation_id,
                                    "person_type": self.person_type}
            m.unresolved.pop(self.email, None)
            m.refresh_relations()

    class AttendeeUnresolved(Aggregate.Event):
        """An attendee email matches no User, Contact or Lead (yet)."""

        email: str
        since: str

        def apply(self, m: Meeting) -> None:
            m.unresolved[self.email] = self.since

    class AttendeeLeft(Aggregate.Event):
        """An unresolved attendee is no longer on the organizer's saved item: nobody
        waits for them to be found any more (``syncledger unresolved`` drops them)."""

        email: str

        def apply(self, m: Meeting) -> None:
            m.unresolved.pop(self.email, None)

    class DownSyncAccepted(Aggregate.Event):
        salesforce_id: str
        mailbox: str

        def apply(self, m: Meeting) -> None:
            m.down_syncs[self.salesforce_id] = self.mailbox

    class Linked(Aggregate.Event):
        mailbox: str
        exchange_id: str
        salesforce_id: str
        occurrence_start: str | None
        how: str

        def apply(self, m: Meeting) -> None:
            key = item_key(self.mailbox, self.exchange_id)
            m.links[key] = self.salesforce_id
            if m.shape is None:
                m.shape = "single" if m.items[key]["item_type"] == "single" else "series"
            m.refresh_bases()
            m.refresh_relations()

    class Unlinked(Aggregate.Event):
        mailbox: str
        exchange_id: str
        salesforce_id: str
        reason: str

        def apply(self, m: Meeting) -> None:
            key = item_key(self.mailbox, self.exchange_id)
            m.links.pop(key, None)
            m.bases.pop(self.salesforce_id, None)
            # A Salesforce delete ends the sync of that item; only a new save restarts it.
            for saver in [s for s, save in m.saves.items() if save["item_key"] == key]:
                del m.saves[saver]
            m.withdrawn[key] = self.reason
            m.withdrawn_at[key] = self.timestamp.isoformat()

    class SalesforceDeletionDecided(Aggregate.Event):
        salesforce_id: str
        reason: str

        def apply(self, m: Meeting) -> None:
            m.deletions[self.salesforce_id] = self.reason

    class SeriesMasterUpdated(Aggregate.Event):
        rule: str
        mailbox: str
        exchange_id: str
        effective_from: str
        changes: dict[str, Any]
        previous: dict[str, Any]

        def apply(self, m: Meeting) -> None:
            m.target_future_occurrences(self.effective_from, self.changes, self.previous)

    class SeriesMasterOverwritten(Aggregate.Event):
        rule: str
        salesforce_id: str
        changes: dict[str, Any]

        def apply(self, m: Meeting) -> None:
            m.target_all_exchange_occurrences(self.salesforce_id, self.changes)

    class WritesPlanned(Aggregate.Event):
        writes: list[dict[str, Any]]

        def apply(self, m: Meeting) -> None:
            for write in self.writes:
                m.pending[write["key"]] = write

    class WritesSettled(Aggregate.Event):
        keys: list[str]
        reason: str

        def apply(self, m: Meeting) -> None:
            for key in self.keys:
                m.pending.pop(key, None)

    # --- triggering events ---------------------------------------------

    def trigger_event(self, event_class: type[CanMutateAggregate[UUID]], **kwargs: Any) -> None:
        """The library's ``trigger_event``, minus its generic work; the same event results.

        The library copies the arguments, checks for an explicit topic, runs the
        frozen dataclass's ``__init__`` (one ``object.__setattr__`` per field) and
        checks the version it has just computed: 7 µs an event, and intake makes
        ~1.8 events per observation. Here the event's ``__dict__`` is filled in
        field order (so it encodes to the same bytes), then applied as ``mutate``
        would. Anything unusual (a missing or unknown field, no timestamp) goes
        the library's way, with its errors.
        """
        names = _EVENT_FIELDS.get(event_class)
        if names is None:
            names = _EVENT_FIELDS[event_class] = tuple(
                f.name for f in dataclasses.fields(event_class))  # type: ignore[arg-type]
        if len(kwargs) + 2 != len(names) or kwargs.get("timestamp") is None:
            super().trigger_event(event_class, **kwargs)
            return
        event = object.__new__(event_class)
        state = event.__dict__
        state["originator_id"] = self.id
        state["originator_version"] = version = self.version + 1
        try:
            for name in names[2:]:
                state[name] = kwargs[name]
        except KeyError:
            super().trigger_event(event_class, **kwargs)
            return
        event.apply(self)
        self.version = version
        self.modified_on = kwargs["timestamp"]
        self._pending_events.append(event)

    # --- the command --------------------------------------------------

    @classmethod
    def open(cls, key: str, observed_at: str) -> Meeting:
        return cls._create(cls.Opened, id=meeting_id(key), key=key,
                           timestamp=_ts(observed_at))

    def observe(self, obs: Observation, settings: OrgSettings,
                record: dict[str, Any] | None = None, people: People = NO_PEOPLE) -> bool:
        """Record one observation and everything that follows; False if already known.

        ``record``: ``to_record(obs)`` when the caller has it already; it becomes
        part of the new event, so the caller must not use it afterwards.
        ``people``: the directory in force (``ledger.directory``). A ``PersonSeen``
        is recorded there, not here: a meeting waiting on that email only records
        what it decides because of it (False when nothing).
        """
        ts = _ts(obs.observed_at)
        if isinstance(obs, PersonSeen):
            before = len(self.pending_events)
            for decision in decide(self, obs, settings, people):
                self.trigger_event(getattr(Meeting, decision.event), timestamp=ts,
                                   **decision.fields)
            for decision in relate_people(self, obs, settings, people):
                self.trigger_event(getattr(Meeting, decision.event), timestamp=ts,
                                   **decision.fields)
            if len(self.pending_events) == before:
                return False
            self._lightning_issues(ts)
            self._plan_writes(settings, ts)
            return True
        if not self._record_observation(obs, settings, ts, record):
            return False
        for decision in decide(self, obs, settings, people):
            self.trigger_event(getattr(Meeting, decision.event), timestamp=ts, **decision.fields)
        for decision in self._link_decisions(obs, settings):
            self.trigger_event(getattr(Meeting, decision.event), timestamp=ts, **decision.fields)
        for decision in self._occurrence_links(obs):
            self.trigger_event(getattr(Meeting, decision.event), timestamp=ts, **decision.fields)
        if self.saves or self.down_syncs or self.unresolved:
            for decision in relate_people(self, obs, settings, people):
                self.trigger_event(getattr(Meeting, decision.event), timestamp=ts,
                                   **decision.fields)
        self._lightning_issues(ts)
        self._plan_writes(settings, ts)
        return True

    def _lightning_issues(self, ts: datetime) -> None:
        """``lightning-relations`` once the observation's relations are decided."""
        if not self.links:
            return
        for decision in lightning_relation_issues(self):
            self.trigger_event(getattr(Meeting, decision.event), timestamp=ts, **decision.fields)

    def waiting_for(self, settings: OrgSettings) -> list[str]:
        """Emails a later directory observation should bring this meeting back for:
        its unresolved attendees still on the organizer's item, and under
        ``with_contacts`` auto-save the unmatched attendees of organizer items not saved
        yet."""
        attending = {a["email"] for key in self.relating_items()
                     for a in self.items[key]["attendees"]}
        out = [email for email in self.unresolved if email in attending]
        if settings.auto_save == "with_contacts":
            for key, item in self.items.items():
                if item["is_organizer"] and key not in self.links and not any(
                        s["item_key"] == key for s in self.saves.values()):
                    out += [a["email"] for a in item["attendees"]
                            if a["email"] and a["email"] not in self.people
                            and a["email"] != item["organizer"]]
        return sorted(set(out))

    def _record_observation(self, obs: Observation, settings: OrgSettings, ts: datetime,
                            record: dict[str, Any] | None) -> bool:
        if isinstance(obs, ExchangeItemSeen):
            key = item_key(obs.mailbox, obs.item_id)
            if not self._item_news(key, obs):
                return False
            prior = self.items.get(key)
            if prior is not None and obs.last_modified and prior.get("last_modified") \
                    and _before(obs.last_modified, prior["last_modified"]):
                # modified before the version held: older content delivered late (two
                # files, two runs overlapping); it must not overwrite the newer one
                return False
            rec = record or to_record(obs)
            if rec["salesforce_marker"] is None and prior is not None:
                # Graph shows the marker only when asked (never in delta); it is
                # stamped once and never removed, so unseen means unchanged.
                rec["salesforce_marker"] = prior["salesforce_marker"]
            if is_private_sensitivity(obs.sensitivity) and not settings.sync_private_items:
                rec = redact(rec)
            changed = _changed(prior, rec)
            self.trigger_event(Meeting.ExchangeItemObserved, timestamp=ts,
                               observation=rec, changed=changed)
        elif isinstance(obs, ExchangeItemGone):
            key = item_key(obs.mailbox, obs.item_id)
            if self.removed.get(key) == obs.reason or self._stale_removal(key, obs):
                return False
            self.trigger_event(Meeting.ExchangeItemRemoved, timestamp=ts,
                               observation=record or to_record(obs))
        elif isinstance(obs, SalesforceEventSeen):
            if f"sf|{obs.event_id}|{obs.version}" in self.versions \
                    and not self._relations_changed(obs):
                return False
            deleted = self.sf_deleted.get(obs.event_id)
            if deleted is not None and not _before(deleted, obs.version, by_second=True):
                # an old version re-delivered: the deletion stands (a version in the
                # deletion's own second too: a deletion time may lack its milliseconds)
                return False
            held = self.sf.get(obs.event_id)
            if held is not None and _before(obs.version, held["version"]):
                # older than the version held (an Event's version stamp only grows):
                # stale content, e.g. a version skipped while the Event was deleted,
                # re-delivered after the undeleted one
                return False
            rec = record or to_record(obs)
            if obs.is_private and not settings.sync_private_items:
                rec = redact_event(rec)
            changed = _changed(self.sf.get(obs.event_id), rec)
            self.trigger_event(Meeting.SalesforceEventObserved, timestamp=ts,
                               observation=rec, changed=changed)
        elif isinstance(obs, SalesforceEventGone):
            if obs.event_id in self.sf_deleted \
                    or f"sfdel|{obs.event_id}|{obs.deleted_at}" in self.versions:
                return False  # already deleted, or this deletion was undone by a newer version
            seen = self.sf.get(obs.event_id)
            if seen is not None and _before(obs.deleted_at, seen["version"], by_second=True):
                # The Event was modified after this deletion (undeleted from the recycle
                # bin): a deletion read late, e.g. parked until the Event came, is stale,
                # as a version older than a recorded deletion is (above). By the second:
                # a deletion time may come without its milliseconds.
                return False
            self.trigger_event(Meeting.SalesforceEventDeleted, timestamp=ts,
                               observation=record or to_record(obs))
        elif isinstance(obs, WriteRefused):
            if self.refused.get(obs.write_key, {}).get("digest") == obs.digest:
                return False
            self.trigger_event(Meeting.WriteRefusedObserved, timestamp=ts,
                               observation=record or to_record(obs))
        elif isinstance(obs, SidebarSave):
            key = item_key(obs.mailbox, obs.item_id)
            rec = record or to_record(obs)
            prior = self.explicit_saves.get(key)
            same = prior is not None and {**prior, "observed_at": ""} == {**rec, "observed_at": ""}
            if (same and key not in self.withdrawn) \
                    or f"save|{key}|{obs.observed_at}" in self.versions:
                return False  # the same save again, or a save already recorded re-delivered
            withdrawn_at = self.withdrawn_at.get(key) if key in self.withdrawn else None
            if withdrawn_at is not None and _before(obs.observed_at, withdrawn_at):
                return False  # a save from before the sync was withdrawn (Unsync), read late
            self.trigger_event(Meeting.SidebarSaveObserved, timestamp=ts, observation=rec)
        else:
            raise TypeError(f"a meeting does not take {type(obs).__name__}")
        return True

    def _item_news(self, key: str, obs: ExchangeItemSeen) -> bool:
        """Whether an Exchange item observation tells the ledger something new.

        A version recorded before is a duplicate, also after the item was removed
        (Graph re-delivers old changes; a re-ingest does too). A removal is undone
        only by something newer than what was removed: for a deletion, a version
        modified after the removed one (``lastModifiedDateTime``; without it, seen
        after the deletion); for "no longer visible", the item seen in view again
        after it left."""
        recorded = f"ex|{key}|{obs.version}" in self.versions
        removal = self.removals.get(key) if key in self.removed else None
        if removal is None:
            return not recorded
        if removal["observed_at"] is None:  # from a snapshot older than ``removals``
            return not recorded
        after_removal = _ts(obs.observed_at) > _ts(removal["observed_at"])
        if removal["reason"] != "deleted":
            return after_removal and (not recorded or obs.version == removal["version"])
        if recorded:
            return False
        if obs.last_modified and removal["last_modified"]:
            return _ts(obs.last_modified) > _ts(removal["last_modified"])
        return after_removal

    def _stale_removal(self, key: str, obs: ExchangeItemGone) -> bool:
        """A removal recorded before, or older than the item's latest observation
        (it was seen again after this removal was observed)."""
        if f"rm|{key}|{obs.reason}|{obs.observed_at}" in self.versions:
            return True
        item = self.items.get(key)
        return item is not None and _ts(obs.observed_at) < _ts(item["observed_at"])

    def _relations_changed(self, obs: SalesforceEventSeen) -> bool:
        """Adding or answering an EventRelation leaves the Event's SystemModstamp as it
        was, so a known version with other relations is news too."""
        if obs.invitees is None:
            return False
        seen = self.sf.get(obs.event_id)
        if seen is None or seen["version"] != obs.version:
            return False  # an old version re-delivered: a duplicate, as before
        old = seen["invitees"]
        return old is None or [(i["relation_id"], i["status"], i["is_invitee"]) for i in old] \
            != [(i.relation_id, i.status, i.is_invitee) for i in obs.invitees]

    # --- links: the id mapping ----------------------------------------

    def _link_decisions(self, obs: Observation, settings: OrgSettings) -> list[Decision]:
        """Who is linked to whom, from markers, saves, deletions and down-syncs."""
        out: list[Decision] = []
        if isinstance(obs, SalesforceEventSeen) and obs.event_id not in self.links.values():
            target = self._exchange_copy_for(obs) or self._marked_copy_for(obs, settings)
            if target is not None:
                item = self.items[target]
                out.append(Decision("Linked", {
                    "mailbox": item["mailbox"], "exchange_id": item["item_id"],
                    "salesforce_id": obs.event_id, "occurrence_start": item["occurrence_start"],
                    "how": "salesforce marker" if obs.ical_marker else "series occurrence",
                }))
            elif (obs.series_id is None and not obs.ical_marker and not self.items
                  and not any(i["rule"] in ("lightning-recurrence", "recurring-all-day")
                              for i in self.issues.values())
                  and obs.event_id not in self.down_syncs and obs.owner_id
                  and (not obs.is_private or settings.sync_private_items)):
                mailbox = settings.mailbox_of(obs.owner_id)
                if mailbox is not None:
                    out.append(Decision("DownSyncAccepted", {
                        "salesforce_id": obs.event_id, "mailbox": mailbox}))
        elif isinstance(obs, ExchangeItemSeen) and obs.salesforce_marker:
            key = item_key(obs.mailbox, obs.item_id)
            sf_id = salesforce_id18(obs.salesforce_marker)
            # One Exchange copy per Event: a second copy with the same marker is a
            # duplicate (reconciliation removes it), not a second link.
            if self.links.get(key) != sf_id and sf_id not in self.links.values():
                out.append(Decision("Linked", {
                    "mailbox": obs.mailbox, "exchange_id": obs.item_id, "salesforce_id": sf_id,
                    "occurrence_start": obs.occurrence_start, "how": "exchange marker"}))
        elif isinstance(obs, ExchangeItemSeen) and obs.series_master_id is None:
            # The Exchange copy seen after a Salesforce Event that names it by marker.
            key = item_key(obs.mailbox, obs.item_id)
            for sf_id, event in sorted(self.sf.items()):
                if key not in self.links and sf_id not in self.links.values() \
                        and sf_id not in self.sf_deleted and event.get("series_id") is None \
                        and self._marked_copy_for_record(event, settings) == key:
                    out.append(Decision("Linked", {
                        "mailbox": obs.mailbox, "exchange_id": obs.item_id,
                        "salesforce_id": sf_id, "occurrence_start": None,
                        "how": "salesforce marker"}))
                    break
        elif isinstance(obs, ExchangeItemGone):
            key = item_key(obs.mailbox, obs.item_id)
            linked, seen = self.links.get(key), self.items.get(key)
            if linked and seen and seen["is_organizer"] and obs.reason == "deleted":
                out.append(Decision("SalesforceDeletionDecided", {
                    "salesforce_id": linked, "reason": "deleted in Outlook by its owner"}))
        elif isinstance(obs, SalesforceEventGone):
            for key, sf_id in self.links.items():
                if sf_id == obs.event_id:
                    item = self.items[key]
                    out.append(Decision("Unlinked", {
                        "mailbox": item["mailbox"], "exchange_id": item["item_id"],
                        "salesforce_id": sf_id, "reason": "deleted in Salesforce"}))
        return out

    def _occurrence_links(self, obs: Observation) -> list[Decision]:
        """Classic occurrences seen before the Exchange occurrence they mirror, or before
        their series was saved or linked: linked as soon as both sides are known, so the
        order the two calendars were read in does not matter (issue 12). The pairing is
        ``_exchange_copy_for``'s: the saved or linked series' occurrence, same start."""
        if not isinstance(obs, (ExchangeItemSeen, SidebarSave, SalesforceEventSeen)):
            return []
        linked_sf = set(self.links.values())
        waiting = [(sf_id, event) for sf_id, event in sorted(self.sf.items())
                   if event.get("series_id") and sf_id not in linked_sf]
        if not waiting:
            return []
        out: list[Decision] = []
        taken = set(self.links)
        saved = [s["item_key"] for s in self.saves.values()]
        for sf_id, event in waiting:
            series = saved + [k for k, v in self.links.items() if v == event["series_id"]]
            masters = {self.master_key(k) for k in series if k in self.items}
            for key, item in sorted(self.items.items()):
                if key in taken or item.get("occurrence_start") != event.get("start") \
                        or item["item_type"] not in ("occurrence", "exception") \
                        or self.master_key(key) not in masters:
                    continue
                out.append(Decision("Linked", {
                    "mailbox": item["mailbox"], "exchange_id": item["item_id"],
                    "salesforce_id": sf_id, "occurrence_start": item["occurrence_start"],
                    "how": "series occurrence"}))
                taken.add(key)
                break
        return out

    def _exchange_copy_for(self, obs: SalesforceEventSeen) -> str | None:
        """The Exchange item a Salesforce event mirrors, when the ledger can tell."""
        saved = [s["item_key"] for s in self.saves.values()]
        saved += [k for k, v in self.links.items() if v == obs.series_id]
        if obs.series_id is None:
            # A second Event with the same marker is a duplicate, never a new link.
            free = [k for k in saved if k not in self.links]
            return str(free[0]) if obs.ical_marker and free else None
        # A Classic occurrence: the saved series' occurrence with the same start.
        master_keys = {self.master_key(k) for k in saved}
        for key, item in self.items.items():
            if item.get("occurrence_start") == obs.start and key not in self.links \
                    and item["item_type"] in ("occurrence", "exception") \
                    and self.master_key(key) in master_keys:
                return key
        return None

    def _marked_copy_for(self, obs: SalesforceEventSeen, settings: OrgSettings) -> str | None:
        """Adoption: the owner's Exchange copy of the iCalUId a Salesforce marker names.

        A fresh ledger has no saves to go by, but the marker says which meeting the
        Event mirrors and its owner says whose copy (DOMAIN.md §1, §13).
        """
        if obs.series_id is not None or not obs.ical_marker:
            return None
        return self._marked_copy_for_record({"ical_marker": obs.ical_marker,
                                             "owner_id": obs.owner_id}, settings)

    def _marked_copy_for_record(self, event: dict[str, Any], settings: OrgSettings
                                ) -> str | None:
        if not event.get("ical_marker") or event["ical_marker"] != self.ical_uid:
            return None
        mailbox = settings.mailbox_of(event["owner_id"]) if event.get("owner_id") else None
        if mailbox is None:
            return None
        for key, item in sorted(self.items.items()):
            if item["mailbox"] == mailbox and item["item_type"] in ("single", "master") \
                    and key not in self.links and key not in self.removed:
                return key
        return None

    # --- derived targets ----------------------------------------------

    def refresh_bases(self) -> None:
        """Where both sides of a linked single item agree, that is the new common base."""
        for key, sf_id in self.links.items():
            item, event = self.items.get(key), self.sf.get(sf_id)
            if item is None or event is None or item["item_type"] != "single":
                continue
            ex, sf = exchange_fields(item), salesforce_fields(event)
            if ex == sf or sf_id not in self.bases:
                self.bases[sf_id] = sf if sf_id not in self.bases else ex

    def target_future_occurrences(
        self, effective_from: str, changes: dict[str, Any], previous: dict[str, Any]
    ) -> None:
        """Wanted values of Salesforce occurrences starting at or after the change time."""
        master_sf = {v for k, v in self.links.items() if self.items[k]["item_type"] == "master"}
        shift = _shift(previous, changes)
        for sf_id, event in self.sf.items():
            if event["series_id"] not in master_sf or event["start"] is None:
                continue
            if _ts(event["start"]) < _ts(effective_from):
                continue  # past occurrences stay as they were
            wanted = self.sf_targets.setdefault(sf_id, {})
            for name, value in changes.items():
                if name in ("start", "end"):
                    wanted[name] = _add_seconds(event[name], shift[name])
                else:
                    field = "description" if name == "body" else name
                    wanted[field] = shorten(field, value) if field in MAX_LENGTH else value

    def target_all_exchange_occurrences(self, sf_id: str, changes: dict[str, Any]) -> None:
        """Salesforce's master values for every Exchange occurrence, exceptions included."""
        masters = {k for k, v in self.links.items() if v == sf_id}
        for key, item in self.items.items():
            if item["item_type"] in ("occurrence", "exception") and self.master_key(key) in masters:
                wanted = self.ex_targets.setdefault(key, {})
                wanted.update(changes)
                wanted["_version"] = item["version"]

    def _plan_writes(self, settings: OrgSettings, ts: datetime) -> None:
        desired = desired_writes(self, settings)
        resolved = False
        for key, refused in sorted(self.refused.items()):
            # A refused write is tried again only once it is a different write.
            wanted = desired.get(key)
            if wanted is None or write_digest(wanted) != refused["digest"]:
                self.trigger_event(Meeting.SyncIssueResolved, timestamp=ts,
                                   rule="write-refused", issue_key=refused["issue_key"],
                                   reason="the write changed" if wanted is not None
                                   else "the write is no longer planned")
                resolved = True
        if resolved:  # the refusal's "Error" category is no longer wanted
            desired = desired_writes(self, settings)
        settled = sorted(k for k in self.pending if k not in desired)
        if settled:
            self.trigger_event(Meeting.WritesSettled, timestamp=ts, keys=settled,
                               reason="the calendars now show the wanted state")
        new = [w for k, w in desired.items() if self.pending.get(k) != w]
        if new:
            self.trigger_event(Meeting.WritesPlanned, timestamp=ts, writes=new)


#: Field names of each event class, in dataclass order (``Meeting.trigger_event``).
_EVENT_FIELDS: dict[type, tuple[str, ...]] = {}

_BOOKKEEPING = frozenset({"observed_at", "version", "last_modified", "kind"})


def _changed(old: dict[str, Any] | None, new: dict[str, Any]) -> list[str]:
    """Fields that differ from the previous observation ([] when first seen)."""
    if old is None:
        return []
    return sorted(k for k in new if k not in _BOOKKEEPING and old.get(k) != new[k])


def _ts(observed_at: str) -> datetime:
    return datetime.fromisoformat(observed_at)


def _before(a: str, b: str, *, by_second: bool = False) -> bool:
    """Whether time ``a`` is before ``b``; ``by_second``: in an earlier second (a
    deletion time may come without the milliseconds a version stamp has). False when
    either is not a time: a version that is no time stamp decides nothing."""
    try:
        first, second = _ts(a), _ts(b)
    except ValueError:
        return False
    if by_second:
        return first.replace(microsecond=0) < second.replace(microsecond=0)
    return first < second


def _shift(previous: dict[str, Any], changes: dict[str, Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for name in ("start", "end"):
        if name in changes and previous.get(name):
            delta = _ts(changes[name]) - _ts(previous[name])
            out[name] = int(delta.total_seconds())
    return out


def _add_seconds(when: str | None, seconds: int | None) -> str | None:
    if when is None or seconds is None:
        return when
    return (_ts(when) + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")

