"""The org aggregate: settings changes in the order they were observed.

Settings are events too (DOMAIN.md §2), so a replay re-decides every meeting
under the settings that were in force when its observations arrived.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from eventsourcing.domain import Aggregate

from ledger.identity import ORG_SETTINGS_ID
from ledger.settings import OrgSettings


class Org(Aggregate):
    class Started(Aggregate.Created):
        pass

    class SettingsChanged(Aggregate.Event):
        changes: dict[str, Any]

        def apply(self, org: Org) -> None:
            org.changes.append(self.changes)
            org.recorded.add(_change_key(self.changes, self.timestamp))

    def __init__(self) -> None:
        self.changes: list[dict[str, Any]] = []
        #: (when, what) of every change recorded: the same settings line again is a
        #: duplicate, even after later lines changed the settings further
        self.recorded: set[tuple[datetime, str]] = set()

    @classmethod
    def start(cls, observed_at: str) -> Org:
        return cls._create(cls.Started, id=ORG_SETTINGS_ID,
                           timestamp=datetime.fromisoformat(observed_at))

    def change(self, changes: dict[str, Any], observed_at: str) -> bool:
        """Record validated changes; False when they change nothing or were recorded."""
        when = datetime.fromisoformat(observed_at)
        if _change_key(changes, when) in self.recorded:
            return False
        current = self.settings()
        if current.applied(changes).as_record() == {**current.as_record(),
                                                     "version": current.version + 1}:
            return False
        self.trigger_event(Org.SettingsChanged, changes=changes,
                           timestamp=when)
        return True

    def settings(self) -> OrgSettings:
        out = OrgSettings()
        for change in self.changes:
            out = out.applied(change)
        return out


def _change_key(changes: dict[str, Any], when: datetime) -> tuple[datetime, str]:
    return when, json.dumps(changes, sort_keys=True)
