"""The org aggregate: settings changes in the order they were observed.

Settings are events too (DOMAIN.md §2), so a replay re-decides every meeting
under the settings that were in force when its observations arrived. A key's value
is the one observed last by ``observed_at``: a change read late (two files, two
overlapping runs) whose key changed again after it records nothing for that key.
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
            for key in self.changes:
                org.changed_at[key] = max(org.changed_at.get(key, self.timestamp),
                                          self.timestamp)

    def __init__(self) -> None:
        self.changes: list[dict[str, Any]] = []
        #: (when, what) of every change recorded: the same settings line again is a
        #: duplicate, even after later lines changed the settings further
        self.recorded: set[tuple[datetime, str]] = set()
        #: when each key was last changed (the newest ``observed_at`` that set it)
        self.changed_at: dict[str, datetime] = {}

    @classmethod
    def start(cls, observed_at: str) -> Org:
        return cls._create(cls.Started, id=ORG_SETTINGS_ID,
                           timestamp=datetime.fromisoformat(observed_at))

    def change(self, changes: dict[str, Any], observed_at: str) -> bool:
        """Record validated changes; False when they change nothing, were recorded, or
        every key they set was changed again by a later observation."""
        when = datetime.fromisoformat(observed_at)
        if _change_key(changes, when) in self.recorded:
            return False
        # keys set again after this change was observed keep their newer value
        changes = {k: v for k, v in changes.items()
                   if k not in self.changed_at or self.changed_at[k] <= when}
        if not changes:
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
