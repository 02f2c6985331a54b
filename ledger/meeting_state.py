"""What the ledger knows of one meeting: the state the rule book and the write planner read.

``ledger.meeting.Meeting`` is this state plus the events that change it; the
rules (``ledger.rules``) and the planner (``ledger.writes``) only read it, so
they depend on this module and not on the aggregate (no import circle).
"""

from __future__ import annotations

from typing import Any

from ledger.decision import Decision
from ledger.identity import item_key

#: Outlook response -> EventRelation Status (DOMAIN.md §4: anything else is New / Undecided).
STATUS = {"accepted": "Accepted", "declined": "Declined"}


def blocks(issue: dict[str, Any]) -> bool:
    """Whether an issue stops its item syncing (a warning only says how it was written;
    a refused write stays planned, the sync just does not send it again)."""
    return issue.get("severity") not in ("warning", "refused")


class MeetingState:
    """The meeting's current picture, rebuilt from its events."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.items: dict[str, dict[str, Any]] = {}  # item key -> latest Exchange record
        self.previous_items: dict[str, dict[str, Any]] = {}
        self.removed: dict[str, str] = {}  # item key -> reason
        #: item key -> the removal in force: observed_at, reason, and the version and
        #: last_modified of what it removed (only something newer undoes it)
        self.removals: dict[str, dict[str, Any]] = {}
        self.sf: dict[str, dict[str, Any]] = {}  # Salesforce id -> latest record
        self.previous_sf: dict[str, dict[str, Any]] = {}
        self.sf_deleted: dict[str, str] = {}  # Salesforce id -> deleted at
        #: every version ever recorded: "ex|<item key>|<version>" / "sf|<id>|<version>" -> when.
        #: A re-delivered old version is a duplicate too, not only a repeat of the latest.
        self.versions: dict[str, str] = {}
        self.saves: dict[str, dict[str, Any]] = {}  # saver mailbox -> accepted save
        self.explicit_saves: dict[str, dict[str, Any]] = {}  # item key -> sidebar save
        self.links: dict[str, str] = {}  # item key -> Salesforce id
        self.issues: dict[str, dict[str, Any]] = {}  # open issue key -> issue
        self.flagged: dict[str, bool] = {}  # item keys we put "Error" on
        self.conflicts: dict[str, dict[str, Any]] = {}  # attendee -> open conflict
        self.shape: str | None = None  # "single" | "series" once synced
        self.down_syncs: dict[str, str] = {}  # Salesforce id -> mailbox to create in
        self.deletions: dict[str, str] = {}  # Salesforce id -> reason
        self.sf_targets: dict[str, dict[str, Any]] = {}  # Salesforce id -> wanted values
        self.ex_targets: dict[str, dict[str, Any]] = {}  # item key -> wanted values
        self.bases: dict[str, dict[str, Any]] = {}  # Salesforce id -> last agreed fields
        self.pending: dict[str, dict[str, Any]] = {}  # write key -> planned write
        self.withdrawn: dict[str, str] = {}  # item key -> why its sync was withdrawn
        #: item key -> when (ISO) its sync was withdrawn: a save observed before that is
        #: stale (unknown for a snapshot from before class version 4: none is)
        self.withdrawn_at: dict[str, str] = {}
        #: write key -> {"digest", "issue_key"}: writes an API refused (not sent again
        #: until the planned write differs; see ``Meeting._plan_writes``)
        self.refused: dict[str, dict[str, str]] = {}
        #: attendee email -> {"relation_id", "person_type"}: whom Salesforce relates it to
        self.people: dict[str, dict[str, Any]] = {}
        self.unresolved: dict[str, str] = {}  # attendee email matching nobody -> since when
        #: Salesforce id -> relation id -> "agreed" (both sides had it) | "dropped" (removed
        #: in Salesforce while Outlook still lists it: left alone, DOMAIN.md §4)
        self.relations: dict[str, dict[str, str]] = {}

    # --- questions the rules ask --------------------------------------

    def relating_items(self) -> list[str]:
        """Item keys whose attendees become the Event's relations: the organizer's save
        (an ``organizer-not-user`` save relates nobody, as the seed says)."""
        out = []
        for saver, save in self.saves.items():
            item = self.items.get(save["item_key"])
            if item is not None and save["rule"] is None and item["organizer"] == saver:
                out.append(save["item_key"])
        return out

    def desired_relations(self, key: str) -> dict[str, str]:
        """Relation id -> Status the organizer's item calls for (DOMAIN.md §4, §12).

        Every related attendee but the organizer, minus attendees who deleted their
        own copy (an attendee's delete removes only that attendee)."""
        item = self.items[key]
        out: dict[str, str] = {}
        for attendee in item["attendees"]:
            email = attendee["email"]
            person = self.people.get(email)
            if person is None or email == item["organizer"] or self.copy_deleted(email):
                continue
            out.setdefault(person["relation_id"], STATUS.get(attendee["response"], "New"))
        return out

    def copy_deleted(self, email: str) -> bool:
        return any(self.removed.get(k) == "deleted" and not i["is_organizer"]
                   for k, i in self.items.items() if i["mailbox"] == email)

    def observed_relations(self, sf_id: str) -> dict[str, str] | None:
        """Invitee relation id -> Status as Salesforce was last seen to hold (None: not read)."""
        event = self.sf.get(sf_id)
        if event is None or event["invitees"] is None:
            return None
        return {i["relation_id"]: i["status"] for i in event["invitees"] if i["is_invitee"]}

    def refresh_relations(self) -> None:
        """Which relations both sides have agreed on, so that a later difference can be
        told apart: added in Outlook, removed in Outlook, or removed in Salesforce."""
        if not self.links or not self.saves:
            return
        for key in self.relating_items():
            sf_id = self.links.get(key)
            observed = self.observed_relations(sf_id) if sf_id else None
            if sf_id is None or observed is None:
                continue
            desired = self.desired_relations(key)
            known = self.relations.setdefault(sf_id, {})
            for rid in desired.keys() & observed.keys():
                known[rid] = "agreed"
            for rid in list(known):
                if rid not in desired and rid not in observed:
                    del known[rid]
                elif known[rid] == "agreed" and rid in desired and rid not in observed:
                    known[rid] = "dropped"

    def email_of(self, relation_id: str) -> str | None:
        for email, person in self.people.items():
            if person["relation_id"] == relation_id:
                return email
        return None

    @property
    def ical_uid(self) -> str | None:
        return self.key[5:] if self.key.startswith("ical:") else None

    def is_linked(self, item: dict[str, Any]) -> bool:
        return item_key(item["mailbox"], item["item_id"]) in self.links

    def sf_linked(self, event_id: str) -> bool:
        return event_id in self.links.values()

    def item_in_scope(self, key: str) -> bool:
        """Saved (explicitly or by auto-save), linked, or an occurrence of such a series."""
        if key in self.links or key in self.explicit_saves:
            return True
        if any(s["item_key"] == key for s in self.saves.values()):
            return True
        item = self.items.get(key)
        master = item and item.get("series_master_id")
        return bool(master) and self.item_in_scope(item_key(item["mailbox"], str(master)))  # type: ignore[index]

    def blocked(self, key: str, decided: list[Decision]) -> bool:
        """Whether an open issue (or one just decided) stops this item syncing."""
        resolved = {d.fields["issue_key"] for d in decided if d.event == "SyncIssueResolved"}
        if any(i["item_key"] == key and k not in resolved and blocks(i)
               for k, i in self.issues.items()):
            return True
        return any(d.event == "SyncIssueRaised" and d.fields["item_key"] == key
                   and blocks(d.fields) for d in decided)

    def master_key(self, key: str) -> str:
        item = self.items[key]
        master = item.get("series_master_id")
        return item_key(item["mailbox"], master) if master else key
