"""Analytics: one row per meeting, and daily counts of what the ledger saw and decided.

``proj_analytics_meetings`` says, per meeting, who organizes it, whether the
organizer and attendees use the sync, when it starts, whether it is a
series, where its sync stands (``conflict`` > ``not-synced`` with open
issues > ``pending`` writes > ``synced`` when linked > ``not-synced``),
which issue kinds are open, and the Salesforce record it relates to.
``proj_analytics_daily`` counts, per UTC day of observation, ``source``
(observation | issue | conflict), ``kind`` (observation kind or rule id) and
mailbox, the observations recorded and the issues and conflicts raised.

Who is a product user comes from the org settings *in force now* (kept in
``proj_analytics_settings``), and a settings change re-derives every row: the
table then depends only on the log, not on how it was cut into batches, and
it does not depend on intake saving a batch's settings change after the
meetings decided under it. Each meeting's raw facts (organizer, attendees,
open issues, links, pending writes) are kept as JSON in its row, loaded once
per batch for the meetings the batch touches.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ledger.settings import OrgSettings
from projections.base import (
    Bulk,
    Handler,
    Projection,
    Row,
    Str,
    as_dict,
    chunks,
    in_column_order,
    metadata,
    upserter,
)
from projections.sync_state import sync_state

meetings_table = sa.Table(
    "proj_analytics_meetings", metadata,
    sa.Column("meeting_id", Str, primary_key=True),
    sa.Column("subject", Str),  # the main item's, else the Event's (private: "")
    sa.Column("organizer", Str),
    sa.Column("organizer_is_user", sa.Boolean, nullable=False),
    sa.Column("attendees_are_users", Str, nullable=False),  # all | some | none
    sa.Column("start", Str),
    sa.Column("recurrence", Str),  # single | series
    sa.Column("sync_state", Str, nullable=False),  # synced | pending | not-synced | conflict
    sa.Column("open_issue_kinds", Str, nullable=False),  # comma list of rule ids
    sa.Column("what_id", Str),
    sa.Column("facts", sa.Text, nullable=False),  # JSON: what the columns are derived from
)

daily_table = sa.Table(
    "proj_analytics_daily", metadata,
    sa.Column("day", Str, primary_key=True),  # YYYY-MM-DD (UTC) of the observation
    sa.Column("source", Str, primary_key=True),  # observation | issue | conflict
    sa.Column("kind", Str, primary_key=True),
    sa.Column("mailbox", Str, primary_key=True),  # "" when none applies
    sa.Column("count", sa.BigInteger, nullable=False),
)

settings_table = sa.Table(
    "proj_analytics_settings", metadata,
    sa.Column("name", Str, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),  # OrgSettings.as_record() as JSON
)

_write_meetings = upserter(meetings_table)
_add_counts = upserter(daily_table,
                       lambda stmt: {"count": daily_table.c["count"] + stmt.excluded["count"]})
_write_settings = upserter(settings_table)
_REDERIVED = ("organizer", "organizer_is_user", "attendees_are_users")
_rederive = Bulk(lambda _: meetings_table.update().where(
    meetings_table.c.meeting_id == sa.bindparam("mid"),
).values({n: sa.bindparam("new_" + n) for n in _REDERIVED}))

#: Observation events and the feed kind each one records.
OBSERVATIONS = {
    "Meeting.ExchangeItemObserved": "exchange.item",
    "Meeting.ExchangeItemRemoved": "exchange.removed",
    "Meeting.SalesforceEventObserved": "salesforce.event",
    "Meeting.SalesforceEventDeleted": "salesforce.deleted",
    "Meeting.SidebarSaveObserved": "sidebar.save",
}
SERIES_TYPES = frozenset({"master", "occurrence", "exception"})


def new_facts() -> dict[str, Any]:
    return {"organizer": None, "subject": None, "attendees": [], "main": False, "start": None,
            "recurrence": None, "exchange": False, "owner_id": None, "what_id": None,
            "issues": {}, "conflicts": [], "links": [], "pending": []}


class AnalyticsProjection(Projection):
    """Per-meeting facts folded as events arrive; daily counters added up in SQL.

    The batch's meetings' stored facts are loaded before its events are
    dispatched, so each handler folds its event into plain dicts at once and
    the decoded event is dropped right away (keeping every event of a batch
    until ``flush`` cost memory and collector time). Each touched meeting's
    row is written once per batch.
    """

    name = "analytics"
    tables = (meetings_table, daily_table, settings_table)

    def __init__(self) -> None:
        self.settings = OrgSettings()
        self.settings_changed = False
        self.stored: dict[str, dict[str, Any]] = {}  # facts of the batch's meetings, as loaded
        self.touched: dict[str, dict[str, Any]] = {}  # facts this batch folded into
        self.counts: dict[tuple[str, str, str, str], int] = {}

    def handlers(self) -> Mapping[str, Handler]:
        out: dict[str, Handler] = {name: self.on_observation for name in OBSERVATIONS}
        out.update({
            "Meeting.SyncIssueRaised": self.on_issue,
            "Meeting.SyncIssueResolved": self.on_issue_resolved,
            "Meeting.ConflictDetected": self.on_conflict,
            "Meeting.ConflictResolved": self.on_conflict_resolved,
            "Meeting.Linked": self.on_linked,
            "Meeting.Unlinked": self.on_unlinked,
            "Meeting.WritesPlanned": self.on_planned,
            "Meeting.WritesSettled": self.on_settled,
            "Meeting.SaveAccepted": self.on_save,
            "Org.SettingsChanged": self.on_settings,
        })
        return out

    def facts(self, meeting_id: str) -> dict[str, Any]:
        """The meeting's facts to fold into (its stored ones, or new), now touched."""
        f = self.touched.get(meeting_id)
        if f is None:
            stored: dict[str, Any] | None = self.stored.pop(meeting_id, None)
            f = self.touched[meeting_id] = new_facts() if stored is None else stored
        return f

    def count(self, day: str, source: str, kind: str, mailbox: str | None) -> None:
        key = (day, source, kind, mailbox or "")
        self.counts[key] = self.counts.get(key, 0) + 1

    # --- handlers: count and fold at once -----------------------------------

    def on_observation(self, meeting_id: str, state: dict[str, Any], position: int) -> None:
        obs = state["observation"]
        kind = obs["kind"]
        key = (state["timestamp"][:10], "observation", kind, obs.get("mailbox") or "")
        counts = self.counts  # ``count`` inlined: this runs for most events of the log
        counts[key] = counts.get(key, 0) + 1
        if kind == "exchange.item":
            # ``facts`` inlined for the meetings already touched, as ``count`` above
            f = self.touched.get(meeting_id) or self.facts(meeting_id)
            item_type = obs["item_type"]
            main = item_type == "single" or item_type == "master"
            if main or not f["main"]:
                f["organizer"] = obs["organizer"]
                f["subject"] = obs["subject"]
                f["attendees"] = sorted({a["email"] for a in obs["attendees"]})
                f["start"] = obs["start"]
                f["recurrence"] = "series" if item_type in SERIES_TYPES else "single"
                f["main"] = main
            f["exchange"] = True
        elif kind == "salesforce.event":
            f = self.touched.get(meeting_id) or self.facts(meeting_id)
            if obs["series_id"] is None:  # the meeting's own record, not a Classic occurrence
                f["owner_id"] = obs["owner_id"]
                if obs["what_id"] is not None:
                    f["what_id"] = obs["what_id"]
                if not f["exchange"]:
                    f["start"] = obs["start"]
                    f["subject"] = obs["subject"]
                    f["recurrence"] = ("series" if obs["is_series_master"]
                                       or obs["is_lightning_series"] else "single")

    def on_save(self, meeting_id: str, state: dict[str, Any], position: int) -> None:
        f = self.facts(meeting_id)
        if state["what_id"] is not None:
            f["what_id"] = state["what_id"]

    def on_issue(self, meeting_id: str, state: dict[str, Any], position: int) -> None:
        self.count(state["timestamp"][:10], "issue", state["rule"], state["mailbox"])
        f = self.facts(meeting_id)
        f["issues"][state["issue_key"]] = state["rule"]

    def on_issue_resolved(self, meeting_id: str, state: dict[str, Any], position: int) -> None:
        f = self.facts(meeting_id)
        f["issues"].pop(state["issue_key"], None)

    def on_conflict(self, meeting_id: str, state: dict[str, Any], position: int) -> None:
        self.count(state["timestamp"][:10], "conflict", state["rule"], state["mailbox"])
        f = self.facts(meeting_id)
        f["conflicts"] = sorted({*f["conflicts"], state["conflict_key"]})

    def on_conflict_resolved(self, meeting_id: str, state: dict[str, Any], position: int
                             ) -> None:
        f = self.facts(meeting_id)
        key = state["conflict_key"]
        f["conflicts"] = [k for k in f["conflicts"] if k != key]

    def on_linked(self, meeting_id: str, state: dict[str, Any], position: int) -> None:
        f = self.facts(meeting_id)
        f["links"] = sorted({*f["links"], state["mailbox"] + "|" + state["exchange_id"]})

    def on_unlinked(self, meeting_id: str, state: dict[str, Any], position: int) -> None:
        f = self.facts(meeting_id)
        key = state["mailbox"] + "|" + state["exchange_id"]
        f["links"] = [k for k in f["links"] if k != key]

    def on_planned(self, meeting_id: str, state: dict[str, Any], position: int) -> None:
        f = self.facts(meeting_id)
        f["pending"] = sorted({*f["pending"], *(w["key"] for w in state["writes"])})

    def on_settled(self, meeting_id: str, state: dict[str, Any], position: int) -> None:
        f = self.facts(meeting_id)
        gone = set(state["keys"])
        f["pending"] = [k for k in f["pending"] if k not in gone]

    def on_settings(self, meeting_id: str, state: dict[str, Any], position: int) -> None:
        self.count(state["timestamp"][:10], "observation", "org.settings", "")
        self.settings = self.settings.applied(state["changes"])
        self.settings_changed = True

    # --- batch ------------------------------------------------------------

    def start_batch(self, conn: Connection, meetings: Collection[str]) -> None:
        value = conn.execute(sa.select(settings_table.c.value)
                             .where(settings_table.c.name == "org")).scalar()
        self.settings = _settings_from(orjson.loads(value)) if value else OrgSettings()
        self.settings_changed = False
        self.stored = self._load(conn, sorted(meetings))

    def flush(self, conn: Connection) -> None:
        _write_meetings(conn, self._meeting_rows(sorted(self.touched)))
        _add_counts.tuples(conn, [(*k, n) for k, n in sorted(self.counts.items())])
        if self.settings_changed:
            _write_settings(conn, self._settings_rows())
            self._rederive_all(conn)
        self.stored, self.touched, self.counts = {}, {}, {}
        self.settings_changed = False

    def final_rows(self) -> Iterable[tuple[sa.Table, list[Sequence[Any]]]]:
        # Every row derived once, under the settings in force at the end: nothing to
        # re-derive, and each day's counts are already whole.
        yield meetings_table, in_column_order(meetings_table, self._meeting_rows(self.touched))
        yield daily_table, [(*k, n) for k, n in self.counts.items()]
        yield settings_table, in_column_order(
            settings_table, self._settings_rows() if self.settings_changed else [])

    def _meeting_rows(self, ids: Iterable[str]) -> list[Row]:
        settings, dumps, touched = self.settings, orjson.dumps, self.touched
        return [{"meeting_id": mid, **derive(touched[mid], settings),
                 "facts": dumps(touched[mid]).decode()} for mid in ids]

    def _settings_rows(self) -> list[Row]:
        return [{"name": "org", "value": orjson.dumps(self.settings.as_record()).decode()}]

    def _load(self, conn: Connection, ids: list[str]) -> dict[str, dict[str, Any]]:
        t = meetings_table
        query = sa.select(t.c.meeting_id, t.c.facts).where(
            t.c.meeting_id.in_(sa.bindparam("ids", expanding=True)))
        out: dict[str, dict[str, Any]] = {}
        for part in chunks(ids):
            for mid, raw in conn.execute(query, {"ids": list(part)}):
                out[mid] = orjson.loads(raw)
        return out

    def _rederive_all(self, conn: Connection) -> None:
        """Settings changed: who is a product user may have changed for every meeting."""
        t = meetings_table
        changed = []
        for mid, raw, *old in conn.execute(sa.select(t.c.meeting_id, t.c.facts,
                                                     *(t.c[n] for n in _REDERIVED))):
            new = derive(orjson.loads(raw), self.settings)
            if tuple(new[n] for n in _REDERIVED) != (old[0], bool(old[1]), old[2]):
                changed.append({"mid": mid, **{"new_" + n: new[n] for n in _REDERIVED}})
        _rederive(conn, changed)


def derive(f: dict[str, Any], settings: OrgSettings) -> Row:
    """The visible columns of a meeting's row, from its facts and the current settings."""
    organizer = f["organizer"]
    if organizer is None and f["owner_id"]:
        organizer = settings.mailbox_of(f["owner_id"])
    others = [a for a in f["attendees"] if a != organizer]
    users = sum(1 for a in others if settings.is_product_user(a))
    state = sync_state(conflict=bool(f["conflicts"]), issue_rules=f["issues"].values(),
                       pending=bool(f["pending"]), linked=bool(f["links"]))
    return {
        "subject": f.get("subject"),  # facts folded before the column existed lack it
        "organizer": organizer,
        "organizer_is_user": bool(organizer) and settings.is_product_user(organizer),
        "attendees_are_users": ("none" if users == 0 else "all" if users == len(others)
                                else "some"),
        "start": f["start"], "recurrence": f["recurrence"], "sync_state": state,
        "open_issue_kinds": ",".join(sorted(set(f["issues"].values()))),
        "what_id": f["what_id"],
    }


def _settings_from(record: dict[str, Any]) -> OrgSettings:
    return OrgSettings(
        org_domains=frozenset(record["org_domains"]),
        product_users=dict(record["product_users"]),
        sync_private_items=bool(record["sync_private_items"]),
        salesforce_time_zones=frozenset(record["salesforce_time_zones"]),
        version=int(record["version"]))


MEETING_COLUMNS = ("meeting_id", "subject", "organizer", "organizer_is_user", "attendees_are_users",
                   "start", "recurrence", "sync_state", "open_issue_kinds", "what_id")


def select_meetings(conn: Connection, *, mailbox: str | None = None,
                    state: str | None = None) -> list[dict[str, Any]]:
    """Per-meeting rows by start; ``mailbox`` matches the organizer, ``state`` the sync state."""
    t = meetings_table
    q = sa.select(*(t.c[c] for c in MEETING_COLUMNS)).order_by(
        t.c.start.nulls_first(), t.c.meeting_id)
    if mailbox is not None:
        q = q.where(t.c.organizer == mailbox.lower())
    if state is not None:
        q = q.where(t.c.sync_state == state)
    out = []
    for r in conn.execute(q):
        row = as_dict(r)
        row["organizer_is_user"] = bool(row["organizer_is_user"])
        out.append(row)
    return out


def select_daily(conn: Connection, *, mailbox: str | None = None, kind: str | None = None
                 ) -> list[dict[str, Any]]:
    """Daily counts by day, source, kind and mailbox."""
    t = daily_table
    q = sa.select(t.c.day, t.c.source, t.c.kind, t.c.mailbox, t.c["count"]).order_by(
        t.c.day, t.c.source, t.c.kind, t.c.mailbox)
    if mailbox is not None:
        q = q.where(t.c.mailbox == mailbox.lower())
    if kind is not None:
        q = q.where(t.c.kind == kind)
    return [as_dict(r) for r in conn.execute(q)]
