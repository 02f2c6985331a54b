"""A meeting's sync state, in the four words every command, page and BI table uses.

``conflict`` (an attendee saved before the organizer), ``not-synced`` (an open
issue stops it, or nothing brought it into scope), ``pending`` (writes planned
and not carried out yet), ``synced`` (linked, nothing left to write). One
function decides it, so ``explain``, ``history``, the dashboard and the
``analytics`` table never disagree about the same meeting.
"""

from __future__ import annotations

from collections.abc import Iterable

from ledger.rules import WARNINGS

SYNC_STATES = ("synced", "pending", "not-synced", "conflict")


def blocking(rules: Iterable[str]) -> list[str]:
    """The open issues' rules that stop a meeting syncing (warnings say how it was
    written, so a meeting with only warnings is synced)."""
    return sorted({r for r in rules if r not in WARNINGS})


def sync_state(*, conflict: bool, issue_rules: Iterable[str], pending: bool,
               linked: bool) -> str:
    if conflict:
        return "conflict"
    if blocking(issue_rules):
        return "not-synced"
    if pending:
        return "pending"
    return "synced" if linked else "not-synced"
