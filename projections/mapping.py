"""The id mapping: which Exchange item is which Salesforce Event, both ways.

One row per linked Exchange item (mailbox + item id; an occurrence also by
its original start) with the Salesforce Event it is linked to, from the
ledger's ``Linked`` / ``Unlinked`` decisions. A series master's row links the
two masters. ``ical_uid`` and ``kind`` come from the item's latest
observation before the link; for an occurrence or exception ``ical_uid`` is
its series master's (Graph gives each occurrence its own iCalUId, so the
series' uid plus ``occurrence_start`` is what names an occurrence). The
facts of every observed item are kept in ``proj_mapping_items`` so a link
decided batches later needs no event replay.

The rule, for the item and its master alike: their facts as they stood at the
``Linked`` event's log position; an observation after it changes
``proj_mapping_items``, never the row already linked. So the rows are the
same however the log is cut: in one pass (``final_rows``) or batch by batch
(``flush``), where an item the batch had not observed by the link's position
takes the stored facts (those of the earlier batches, all before the link).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from projections.base import (
    Handler,
    Projection,
    Row,
    Str,
    as_dict,
    chunks,
    deleter,
    in_column_order,
    metadata,
    upserter,
)

mapping_table = sa.Table(
    "proj_mapping", metadata,
    sa.Column("mailbox", Str, primary_key=True),
    sa.Column("exchange_id", Str, primary_key=True),
    sa.Column("meeting_id", Str, nullable=False),
    sa.Column("ical_uid", Str),
    sa.Column("occurrence_start", Str),
    sa.Column("salesforce_id", Str, nullable=False),
    sa.Column("kind", Str),  # single | master | occurrence | exception
    sa.Column("how", Str),
    sa.Column("linked_at", Str),
    sa.Index("ix_proj_mapping_salesforce_id", "salesforce_id"),
    sa.Index("ix_proj_mapping_exchange_id", "exchange_id"),
)

items_table = sa.Table(
    "proj_mapping_items", metadata,
    sa.Column("exchange_id", Str, primary_key=True),
    sa.Column("mailbox", Str, primary_key=True),
    sa.Column("meeting_id", Str, nullable=False),
    sa.Column("ical_uid", Str),
    sa.Column("item_type", Str),
    sa.Column("series_master_id", Str),
)

_write_items = upserter(items_table)
_write_links = upserter(mapping_table)
_unlink = deleter(mapping_table, "mailbox", "exchange_id")

#: Item facts: (ical_uid, item_type, series_master_id), keyed by (mailbox, item id).
Facts = tuple[str | None, str | None, str | None]
#: Stored facts of these items (mailbox, item id): what earlier batches wrote.
Lookup = Callable[[set[tuple[str, str]]], dict[tuple[str, str], Facts]]
#: Item kinds whose mapping row takes its series master's iCalUId.
_IN_SERIES = ("occurrence", "exception")


class MappingProjection(Projection):
    """Links from the ledger's decisions; item facts from its observations."""

    name = "mapping"
    tables = (items_table, mapping_table)

    def __init__(self) -> None:
        #: (exchange_id, mailbox, meeting_id, ical_uid, item_type, series_master_id): a row
        #: of ``proj_mapping_items`` in column order, by (mailbox, item id).
        self.items: dict[tuple[str, str], tuple[Any, ...]] = {}
        #: Log position of each item's first observation here (this batch, or the fold).
        self.first_seen: dict[tuple[str, str], int] = {}
        #: Items whose facts changed here (rare): every (position, facts) in log order,
        #: the first observation's included; any other item's held from ``first_seen``.
        self.changes: dict[tuple[str, str], list[tuple[int, Facts]]] = {}
        self.links: dict[tuple[str, str], Row] = {}
        self.unlinks: set[tuple[str, str]] = set()

    def handlers(self) -> Mapping[str, Handler]:
        return {"Meeting.ExchangeItemObserved": self.on_item,
                "Meeting.Linked": self.on_linked,
                "Meeting.Unlinked": self.on_unlinked}

    def on_item(self, meeting_id: str, state: dict[str, Any], position: int) -> None:
        obs = state["observation"]
        mailbox, xid = obs["mailbox"], obs["item_id"]
        key = (mailbox, xid)
        row = (xid, mailbox, meeting_id, obs["ical_uid"], obs["item_type"],
               obs["series_master_id"])
        old = self.items.get(key)
        if old is None:
            self.first_seen[key] = position
        elif old[3:] != row[3:]:  # a link before this position keeps the old facts
            self.changes.setdefault(key, [(self.first_seen[key], old[3:])]).append(
                (position, row[3:]))
        self.items[key] = row

    def on_linked(self, meeting_id: str, state: dict[str, Any], position: int) -> None:
        key = (state["mailbox"], state["exchange_id"])
        row: Row = {"mailbox": key[0], "exchange_id": key[1], "meeting_id": meeting_id,
                    "ical_uid": None, "occurrence_start": state["occurrence_start"],
                    "salesforce_id": state["salesforce_id"], "kind": None,
                    "how": state["how"], "linked_at": state["timestamp"],
                    "_at": position}  # its facts are those at this position (``_fill_facts``)
        self.links[key] = row
        self.unlinks.discard(key)

    def on_unlinked(self, meeting_id: str, state: dict[str, Any], position: int) -> None:
        key = (state["mailbox"], state["exchange_id"])
        self.links.pop(key, None)
        self.unlinks.add(key)

    def flush(self, conn: Connection) -> None:
        links = list(self.links.values())
        self._fill_facts(links, lambda keys: _lookup(conn, keys))
        # Item facts are written after the links took theirs from the database,
        # so a link sees the item as the batch found it, not as the batch left it.
        _write_items.tuples(conn, list(self.items.values()))
        _unlink.tuples(conn, sorted(self.unlinks))
        _write_links(conn, links)
        self.items, self.links, self.unlinks = {}, {}, set()
        self.first_seen, self.changes = {}, {}

    def final_rows(self) -> Iterable[tuple[sa.Table, list[Sequence[Any]]]]:
        links = list(self.links.values())
        self._fill_facts(links, lambda keys: {})  # nothing stored: every fact is in memory
        yield items_table, list(self.items.values())
        yield mapping_table, in_column_order(mapping_table, links)

    def _fill_facts(self, links: list[Row], lookup: Lookup) -> None:
        """Set ``kind`` and ``ical_uid`` of new links from the item's facts and its series
        master's, both as at the link (two bulk lookups, not one per link)."""
        if not links:
            return
        keys = [(r["mailbox"], r["exchange_id"]) for r in links]
        ats: list[int] = [r.pop("_at") for r in links]
        # The item's own facts at its link: observed here by then, else the stored ones.
        own = [self._facts_at(k, at) for k, at in zip(keys, ats, strict=True)]
        stored = lookup({k for k, f in zip(keys, own, strict=True) if f is None})
        own = [f or stored.get(k) for k, f in zip(keys, own, strict=True)]
        # An occurrence's or exception's series master (same mailbox): by the same rule.
        masters = [(k[0], f[2]) if f and f[1] in _IN_SERIES and f[2] else None
                   for k, f in zip(keys, own, strict=True)]
        series = [self._facts_at(m, at) if m else None
                  for m, at in zip(masters, ats, strict=True)]
        stored = lookup({m for m, f in zip(masters, series, strict=True) if m and f is None})
        for row, facts, m, of_master in zip(links, own, masters, series, strict=True):
            if facts is None:  # never observed: no kind, no uid
                continue
            row["ical_uid"], row["kind"] = facts[0], facts[1]
            if m is not None:
                of_master = of_master or stored.get(m)
                if of_master is not None and of_master[0]:
                    row["ical_uid"] = of_master[0]

    def _facts_at(self, key: tuple[str, str], position: int) -> Facts | None:
        """An item's facts as they stood at this log position, if observed here by then
        (None: the stored facts hold, as the earlier batches left them)."""
        first = self.first_seen.get(key)
        if first is None or first > position:
            return None
        for at, facts in reversed(self.changes.get(key, ())):
            if at <= position:
                return facts
        return self.items[key][3:]  # unchanged since its first observation here


def _lookup(conn: Connection, keys: set[tuple[str, str]]) -> dict[tuple[str, str], Facts]:
    """Stored facts of these items, in a few ``IN`` queries."""
    out: dict[tuple[str, str], Facts] = {}
    if not keys:
        return out
    t = items_table
    ids = sorted({x for _, x in keys})
    for part in chunks(ids):
        rows = conn.execute(sa.select(t.c.mailbox, t.c.exchange_id, t.c.ical_uid, t.c.item_type,
                                      t.c.series_master_id).where(t.c.exchange_id.in_(part)))
        for mailbox, xid, ical_uid, item_type, master_id in rows:
            if (mailbox, xid) in keys:
                out[(mailbox, xid)] = (ical_uid, item_type, master_id)
    return out


COLUMNS = ("meeting_id", "mailbox", "exchange_id", "ical_uid", "occurrence_start",
           "salesforce_id")


def select_rows(conn: Connection, *, mailbox: str | None = None, kind: str | None = None,
                exchange_id: str | None = None, salesforce_id: str | None = None
                ) -> list[dict[str, Any]]:
    """Mapping rows, in a stable order; ``kind`` is single|master|occurrence|exception."""
    t = mapping_table
    q = sa.select(*(t.c[c] for c in COLUMNS)).order_by(
        t.c.meeting_id, t.c.mailbox, t.c.occurrence_start.nulls_first(), t.c.exchange_id)
    if mailbox is not None:
        q = q.where(t.c.mailbox == mailbox.lower())
    if kind is not None:
        q = q.where(t.c.kind == kind)
    if exchange_id is not None:
        q = q.where(t.c.exchange_id == exchange_id)
    if salesforce_id is not None:
        q = q.where(t.c.salesforce_id == salesforce_id)
    return [as_dict(r) for r in conn.execute(q)]


def find_by_exchange(conn: Connection, exchange_id: str, mailbox: str | None = None
                     ) -> list[dict[str, Any]]:
    """Rows of an Exchange item id (Graph ids differ per mailbox; give it to narrow)."""
    return select_rows(conn, exchange_id=exchange_id, mailbox=mailbox)


def find_by_salesforce(conn: Connection, salesforce_id: str) -> list[dict[str, Any]]:
    """Rows of a Salesforce Event id (18 characters; several for a series' master)."""
    return select_rows(conn, salesforce_id=salesforce_id)
