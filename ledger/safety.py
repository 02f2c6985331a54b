"""Whole-calendar facts and the mass-change guard (DOMAIN.md §13).

Peers lose data to mass deletions after an empty read. The ledger keeps, on one
aggregate of its own, what full reads returned (``CalendarRead``: which ids a
mailbox's calendarView or an owner's Events held) and the guard's state per
mailbox: held (with why), approved once by a person, released. ``assess`` is the
guard's pure rule: it reads counts, never the clock or a database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import uuid5

from eventsourcing.domain import Aggregate

from ledger.identity import NAMESPACE
from ledger.observations import CalendarRead, GuardNoted, SuspensionNoted

SAFETY_ID = uuid5(NAMESPACE, "calendar-safety")

#: Defaults: a plan may delete or overwrite at most this share of a mailbox's synced
#: meetings, and at most this many, before it is held for approval; a plan touching
#: fewer than ``minimum`` meetings is never held by the share (one edit in a mailbox
#: of three meetings is a third of it, and ordinary).
DEFAULT_SHARE = 0.20
DEFAULT_COUNT = 50
DEFAULT_MINIMUM = 2

#: How an empty-read hold begins: it outlasts the cycle that saw it (later cycles read
#: deltas, which cannot show the calendar is back) until a person approves or a full
#: read finds items again, so no deletion that follows an empty read runs unapproved.
EMPTY_READ = "the full read"


@dataclass(frozen=True)
class Limits:
    share: float = DEFAULT_SHARE
    count: int = DEFAULT_COUNT
    minimum: int = DEFAULT_MINIMUM


def assess(mailbox: str, *, synced: int, read: int | None, deletes: int, overwrites: int,
           limits: Limits) -> str | None:
    """Why this mailbox's writes must wait for approval, or None when they may go.

    ``synced``: linked meetings the ledger holds for the mailbox; ``read``: how many
    items a full read of it returned (None: no full read this time, a delta);
    ``deletes`` / ``overwrites``: meetings the plan would delete or rewrite there
    (a series counts once, however many occurrences it updates).
    """
    if read == 0 and synced > 0:
        return (f"{EMPTY_READ} of {mailbox} returned no items while the ledger holds "
                f"{synced} synced meeting(s) for it")
    changed = deletes + overwrites
    if changed > limits.count or (synced and changed >= limits.minimum
                                  and changed > limits.share * synced):
        return (f"the plan would delete {deletes} and overwrite {overwrites} of the "
                f"{synced} synced meeting(s) of {mailbox} (limit {limits.share:.0%} or "
                f"{limits.count})")
    return None


class Safety(Aggregate):
    """Full reads and the guard's per-mailbox state, in the order they were observed."""

    class Started(Aggregate.Created):
        pass

    class CalendarWasRead(Aggregate.Event):
        observation: dict[str, Any]

        def apply(self, s: Safety) -> None:
            rec = self.observation
            key = f"{rec['source']}|{rec['mailbox']}"
            held = s.reads.get(key)
            # the latest read by observed_at: an older one recorded later (another file)
            # is history, not what the calendar holds now
            if held is None or _ts(held["observed_at"]) <= _ts(rec["observed_at"]):
                s.reads[key] = rec

    class MassChangeHeld(Aggregate.Event):
        mailbox: str
        reason: str

        def apply(self, s: Safety) -> None:
            s.note("MassChangeHeld", self.mailbox, self.timestamp)
            s.held[self.mailbox] = self.reason

    class MassChangeApproved(Aggregate.Event):
        mailbox: str
        reason: str

        def apply(self, s: Safety) -> None:
            s.note("MassChangeApproved", self.mailbox, self.timestamp)
            s.approved[self.mailbox] = self.reason

    class MassChangeReleased(Aggregate.Event):
        mailbox: str
        reason: str

        def apply(self, s: Safety) -> None:
            s.note("MassChangeReleased", self.mailbox, self.timestamp)
            s.held.pop(self.mailbox, None)
            s.approved.pop(self.mailbox, None)

    class MailboxSuspended(Aggregate.Event):
        mailbox: str
        reason: str

        def apply(self, s: Safety) -> None:
            s.note("MailboxSuspended", self.mailbox, self.timestamp)
            s.suspended[self.mailbox] = self.reason

    class MailboxResumed(Aggregate.Event):
        mailbox: str
        reason: str

        def apply(self, s: Safety) -> None:
            s.note("MailboxResumed", self.mailbox, self.timestamp)
            s.suspended.pop(self.mailbox, None)

    def __init__(self) -> None:
        self.reads: dict[str, dict[str, Any]] = {}  # "source|mailbox" -> latest full read
        self.held: dict[str, str] = {}  # mailbox -> why its writes wait
        self.approved: dict[str, str] = {}  # mailbox -> approval not yet used
        self.suspended: dict[str, str] = {}  # mailbox -> why the service stopped pulling it
        #: every note ever recorded (what, mailbox, when): a note read again (a re-ingest)
        #: is a duplicate, also when the state it set has changed since
        self.noted: set[str] = set()
        #: "guard|mailbox" / "suspension|mailbox" -> the newest note's time: an older note
        #: read later (the state it would set was overtaken) changes nothing
        self.last_note: dict[str, datetime] = {}

    def note(self, event: str, mailbox: str, at: datetime) -> None:
        """Keep a guard or suspension note (its event's name, the mailbox, when)."""
        self.noted.add(_note_key(event, mailbox, at))
        family = f"{_FAMILY[event]}|{mailbox}"
        if family not in self.last_note or self.last_note[family] < at:
            self.last_note[family] = at

    @classmethod
    def start(cls, observed_at: str) -> Safety:
        return cls._create(cls.Started, id=SAFETY_ID, timestamp=_ts(observed_at))

    def observe(self, obs: CalendarRead | GuardNoted | SuspensionNoted) -> bool:
        """Record one observation; False when it changes nothing."""
        ts = _ts(obs.observed_at)
        if isinstance(obs, CalendarRead):
            rec = {"observed_at": obs.observed_at, "source": obs.source,
                   "mailbox": obs.mailbox, "start": obs.start, "end": obs.end,
                   "ids": sorted(obs.ids)}
            self.trigger_event(Safety.CalendarWasRead, timestamp=ts, observation=rec)
            return True
        event = _NOTE_EVENTS[obs.action]
        newest = self.last_note.get(f"{_FAMILY[event]}|{obs.mailbox}")
        if _note_key(event, obs.mailbox, ts) in self.noted or (newest and ts < newest):
            return False  # recorded before (a re-ingest), or overtaken by a newer note
        if isinstance(obs, SuspensionNoted):
            return self._suspension(obs, ts)
        if obs.action == "held":
            if self.held.get(obs.mailbox) == obs.reason:
                return False
            self.trigger_event(Safety.MassChangeHeld, timestamp=ts, mailbox=obs.mailbox,
                               reason=obs.reason)
        elif obs.action == "approved":
            self.trigger_event(Safety.MassChangeApproved, timestamp=ts, mailbox=obs.mailbox,
                               reason=obs.reason)
        else:
            if obs.mailbox not in self.held and obs.mailbox not in self.approved:
                return False
            self.trigger_event(Safety.MassChangeReleased, timestamp=ts, mailbox=obs.mailbox,
                               reason=obs.reason)
        return True

    def _suspension(self, obs: SuspensionNoted, ts: datetime) -> bool:
        """A suspension already in force (or a resume of a mailbox not suspended) is a
        repeat: the service may say it again after a restart."""
        if obs.action == "suspended":
            if obs.mailbox in self.suspended:
                return False
            self.trigger_event(Safety.MailboxSuspended, timestamp=ts, mailbox=obs.mailbox,
                               reason=obs.reason)
            return True
        if obs.mailbox not in self.suspended:
            return False
        self.trigger_event(Safety.MailboxResumed, timestamp=ts, mailbox=obs.mailbox,
                           reason=obs.reason)
        return True


#: A guard or suspension note's action -> the event that records it.
_NOTE_EVENTS = {"held": "MassChangeHeld", "approved": "MassChangeApproved",
                "released": "MassChangeReleased", "suspended": "MailboxSuspended",
                "resumed": "MailboxResumed"}


_FAMILY = {"MassChangeHeld": "guard", "MassChangeApproved": "guard",
           "MassChangeReleased": "guard", "MailboxSuspended": "suspension",
           "MailboxResumed": "suspension"}


def _note_key(event: str, mailbox: str, at: datetime) -> str:
    return f"{event}|{mailbox}|{at.isoformat()}"


def _ts(observed_at: str) -> datetime:
    return datetime.fromisoformat(observed_at)
