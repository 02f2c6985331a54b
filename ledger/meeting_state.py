"""What the ledger knows of one meeting: the state the rule book and the write planner read.

``ledger.meeting.Meeting`` is this state plus the events that change it; the
rules (``ledger.rules``) and the planner (``ledger.writes``) only read it, so
they depend on this module and not on the aggregate (no import circle).
"""

from __future__ import annotations

from typing import Any

from ledger.decision import Decision
from ledger.identity import item_key


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
        #: write key -> {"digest", "issue_key"}: writes an API refused (not sent again
        #: until the planned write differs; see ``Meeting._plan_writes``)
        self.refused: dict[str, dict[str, str]] = {}

    # --- questions the rules ask --------------------------------------

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
