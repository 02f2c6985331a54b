"""The directory of people: Salesforce Users, Contacts and Leads, as the look-ups found them.

One aggregate for the org (like ``ledger.org``): each ``salesforce.person``
observation is an event on it, so relating a meeting's attendees reads the
ledger, never Salesforce, and a replay of the same observations relates the
same people (DOMAIN.md §2, §12). Who matches an email is decided here, in one
place: a User first (an invitee), else the oldest Contact, else the oldest
Lead ("oldest" = lowest Id, so the answer never depends on look-up order).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from eventsourcing.domain import Aggregate

from ledger.identity import DIRECTORY_ID
from ledger.observations import PersonSeen, to_record

_RANK = {"User": 0, "Contact": 1, "Lead": 2}


class Directory(Aggregate):
    """Everyone the people look-ups have found, by email and by Id."""

    class Started(Aggregate.Created):
        pass

    class PersonObserved(Aggregate.Event):
        observation: dict[str, Any]

        def apply(self, d: Directory) -> None:
            d.add(self.observation)

    def __init__(self) -> None:
        self.by_id: dict[str, dict[str, Any]] = {}
        self.by_email: dict[str, dict[str, dict[str, Any]]] = {}  # email -> id -> person

    @classmethod
    def start(cls, observed_at: str) -> Directory:
        return cls._create(cls.Started, id=DIRECTORY_ID,
                           timestamp=datetime.fromisoformat(observed_at))

    def add(self, rec: dict[str, Any]) -> None:
        old = self.by_id.get(rec["person_id"])
        if old is not None:
            self.by_email.get(old["email"], {}).pop(old["person_id"], None)
        self.by_id[rec["person_id"]] = rec
        self.by_email.setdefault(rec["email"], {})[rec["person_id"]] = rec

    def observe(self, obs: PersonSeen) -> bool:
        """Record a person; False when the directory already holds exactly this, or a
        later look-up of them (an email changed since: the older answer is stale)."""
        rec = to_record(obs)
        old = self.by_id.get(obs.person_id)
        if old is not None and {**old, "observed_at": ""} == {**rec, "observed_at": ""}:
            return False
        if old is not None and datetime.fromisoformat(obs.observed_at) \
                < datetime.fromisoformat(old["observed_at"]):
            return False  # a look-up older than the one held, delivered late: stale
        self.trigger_event(Directory.PersonObserved, observation=rec,
                           timestamp=datetime.fromisoformat(obs.observed_at))
        return True

    def match(self, email: str) -> dict[str, Any] | None:
        """The person an attendee email relates to, or None (unresolved)."""
        found = self.by_email.get(email.lower())
        if not found:
            return None
        return min(found.values(), key=lambda p: (_RANK.get(p["person_type"], 9),
                                                   p["person_id"]))

    def person(self, person_id: str) -> dict[str, Any] | None:
        return self.by_id.get(person_id)


class People(Protocol):
    """What relating attendees asks of the directory (``Directory``, or ``NO_PEOPLE``)."""

    def match(self, email: str) -> dict[str, Any] | None: ...

    def person(self, person_id: str) -> dict[str, Any] | None: ...


class _NoPeople:
    """The directory before any look-up was recorded: nobody matches."""

    def match(self, email: str) -> dict[str, Any] | None:
        return None

    def person(self, person_id: str) -> dict[str, Any] | None:
        return None


NO_PEOPLE: People = _NoPeople()
