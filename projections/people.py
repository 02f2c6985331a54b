"""People: whom each meeting's attendees are in Salesforce, and who matches nobody.

``proj_people_unresolved`` holds one row per (meeting, attendee email) that
matched no User, Contact or Lead (``AttendeeUnresolved``), with since when;
a later ``AttendeeRelated`` for that email marks it ``resolved`` (the relation
is then written), and a later ``AttendeeLeft`` (taken off the organizer's item)
marks it ``left``, so the list answers "what is open now" and "how long did it
take". ``proj_people_coverage`` counts, per meeting, the attendees related to
Users, Contacts and Leads and those unresolved, for BI reports of coverage
(``analytics`` shows the counts beside each meeting).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from projections.base import (
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

unresolved_table = sa.Table(
    "proj_people_unresolved", metadata,
    sa.Column("meeting_id", Str, primary_key=True),
    sa.Column("email", Str, primary_key=True),
    sa.Column("since", Str, nullable=False),
    sa.Column("state", Str, nullable=False),  # open | resolved | left
    sa.Column("resolved_at", Str),
    sa.Column("relation_id", Str),  # whom it was related to once resolved
)

coverage_table = sa.Table(
    "proj_people_coverage", metadata,
    sa.Column("meeting_id", Str, primary_key=True),
    sa.Column("related_users", sa.Integer, nullable=False),
    sa.Column("related_contacts", sa.Integer, nullable=False),
    sa.Column("related_leads", sa.Integer, nullable=False),
    sa.Column("unresolved_attendees", sa.Integer, nullable=False),
    sa.Column("people", sa.Text, nullable=False),  # JSON: email -> type | "unresolved"
)

_write_unresolved = upserter(unresolved_table)
_write_coverage = upserter(coverage_table)
COUNTS = ("related_users", "related_contacts", "related_leads", "unresolved_attendees")
#: The state of an unresolved attendee taken off the meeting (``Meeting.AttendeeLeft``).
LEFT = "left"
_COUNTED = {"User": "related_users", "Contact": "related_contacts", "Lead": "related_leads",
            "unresolved": "unresolved_attendees"}


class PeopleProjection(Projection):
    """Unresolved attendees and per-meeting coverage, from the relating decisions."""

    name = "people"
    tables = (unresolved_table, coverage_table)

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], Row] = {}
        self.people: dict[str, dict[str, str]] = {}  # meeting -> email -> type (this batch)

    def handlers(self) -> Mapping[str, Handler]:
        return {"Meeting.AttendeeUnresolved": self.on_unresolved,
                "Meeting.AttendeeRelated": self.on_related,
                "Meeting.AttendeeLeft": self.on_left}

    def on_unresolved(self, meeting_id: str, state: dict[str, Any], position: int) -> None:
        email = state["email"]
        self.rows[(meeting_id, email)] = {
            "meeting_id": meeting_id, "email": email, "since": state["since"],
            "state": "open", "resolved_at": None, "relation_id": None}
        self.people.setdefault(meeting_id, {})[email] = "unresolved"

    def on_related(self, meeting_id: str, state: dict[str, Any], position: int) -> None:
        email = state["email"]
        self.people.setdefault(meeting_id, {})[email] = state["person_type"]
        row = self.rows.get((meeting_id, email))
        if row is not None:
            row.update(state="resolved", resolved_at=state["timestamp"],
                       relation_id=state["relation_id"])
        else:  # maybe unresolved in an earlier batch: resolved in flush
            self.rows[(meeting_id, email)] = {
                "meeting_id": meeting_id, "email": email, "since": None, "state": "resolved",
                "resolved_at": state["timestamp"], "relation_id": state["relation_id"]}

    def on_left(self, meeting_id: str, state: dict[str, Any], position: int) -> None:
        """An unresolved attendee taken off the organizer's item: no longer open, and
        no longer counted in the meeting's coverage."""
        email = state["email"]
        self.people.setdefault(meeting_id, {})[email] = LEFT
        row = self.rows.get((meeting_id, email))
        if row is not None:
            row.update(state=LEFT, resolved_at=state["timestamp"], relation_id=None)
        else:  # unresolved in an earlier batch: its since is read in flush
            self.rows[(meeting_id, email)] = {
                "meeting_id": meeting_id, "email": email, "since": None, "state": LEFT,
                "resolved_at": state["timestamp"], "relation_id": None}

    def flush(self, conn: Connection) -> None:
        t = unresolved_table
        keys = [k for k, r in self.rows.items() if r["since"] is None]
        earlier: dict[tuple[str, str], str] = {}
        for part in chunks(sorted({m for m, _ in keys})):
            for mid, email, since in conn.execute(
                    sa.select(t.c.meeting_id, t.c.email, t.c.since)
                    .where(t.c.meeting_id.in_(list(part)))):
                earlier[(mid, email)] = since
        rows = []
        for key, row in sorted(self.rows.items()):
            if row["since"] is None:
                if key not in earlier:
                    continue  # related at once: never unresolved
                row = {**row, "since": earlier[key]}
            rows.append(row)
        _write_unresolved(conn, rows)
        c = coverage_table
        stored = {}
        for part in chunks(sorted(self.people)):
            for mid, raw in conn.execute(sa.select(c.c.meeting_id, c.c.people)
                                         .where(c.c.meeting_id.in_(list(part)))):
                stored[mid] = orjson.loads(raw)
        _write_coverage(conn, [_coverage(mid, {**stored.get(mid, {}), **people})
                               for mid, people in sorted(self.people.items())])
        self.rows, self.people = {}, {}

    def final_rows(self) -> Iterable[tuple[sa.Table, list[Sequence[Any]]]]:
        # A row related with no unresolved row before it was never unresolved.
        yield unresolved_table, in_column_order(
            unresolved_table, (r for r in self.rows.values() if r["since"] is not None))
        yield coverage_table, in_column_order(
            coverage_table, (_coverage(mid, people) for mid, people in self.people.items()))


def _coverage(meeting_id: str, people: dict[str, str]) -> Row:
    """A meeting's coverage row from everyone known about its attendees (those who left
    the meeting unresolved are not counted)."""
    people = {email: kind for email, kind in people.items() if kind != LEFT}
    counts = dict.fromkeys(COUNTS, 0)
    for kind in people.values():
        counts[_COUNTED[kind]] += 1
    return {"meeting_id": meeting_id, **counts,
            "people": orjson.dumps(people, option=orjson.OPT_SORT_KEYS).decode()}


UNRESOLVED_COLUMNS = ("meeting_id", "email", "since", "state", "resolved_at", "relation_id")


def select_unresolved(conn: Connection, *, state: str | None = "open",
                      meeting_id: str | None = None) -> list[dict[str, Any]]:
    """Unresolved attendees, oldest first (``state=None``: resolved ones too)."""
    t = unresolved_table
    q = sa.select(*(t.c[c] for c in UNRESOLVED_COLUMNS)).order_by(
        t.c.since, t.c.meeting_id, t.c.email)
    if state is not None:
        q = q.where(t.c.state == state)
    if meeting_id is not None:
        q = q.where(t.c.meeting_id == meeting_id)
    return [as_dict(r) for r in conn.execute(q)]


def select_coverage(conn: Connection) -> dict[str, dict[str, int]]:
    """Per meeting: attendees related to Users, Contacts, Leads, and unresolved."""
    c = coverage_table
    return {str(r[0]): dict(zip(COUNTS, (int(v) for v in r[1:]), strict=True))
            for r in conn.execute(sa.select(c.c.meeting_id, *(c.c[n] for n in COUNTS)))}
