"""Fingerprints of a ledger and of a sandbox cloud, to compare two runs that should agree.

A fingerprint is a multiset (``Counter``) of canonical rows per part (events per
aggregate, index rows, quarantine, each read model's rows, the cloud's items), so
``compare`` can say how many rows one run lost or duplicated against the other and
which parts differ otherwise. Used by the concurrent-writer test, by
``scripts/writers.py`` and by ``scripts/chaos.py``.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from ledger.store import Store

Fingerprint = dict[str, Counter[str]]

#: The read models compared (``projections.base.metadata``), tracking excluded.
READ_MODELS = ("proj_mapping", "proj_mapping_items", "proj_conflicts", "proj_issues",
               "proj_plan", "proj_analytics_meetings", "proj_analytics_daily",
               "proj_analytics_settings", "proj_people_unresolved", "proj_people_coverage")


def _canon(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS, default=str).decode()


def _digest(value: Any) -> str:
    return hashlib.sha256(_canon(value).encode()).hexdigest()[:24]


def events(store: Store, *, drop: Iterable[str] = ()) -> Fingerprint:
    """Per aggregate (``events:<id>``): its events' topic and state, the version left out
    (two runs may append one aggregate's events in another order), and ``drop`` keys."""
    dropped = {"originator_version", *drop}
    out: Fingerprint = {}
    after = 0
    while True:
        rows = store.read_log(after, 5000)
        if not rows:
            return out
        for position, oid, _version, topic, state in rows:
            data = {k: v for k, v in orjson.loads(state).items() if k not in dropped}
            out.setdefault(f"events:{oid.replace('-', '')}", Counter())[
                _digest([topic, data])] += 1
            after = position


def side_rows(store: Store) -> Fingerprint:
    """The external-id index and the quarantine (keyed by line content and error)."""
    keys = Counter(_canon(list(r)) for r in
                   store.query("SELECT key, meeting_id FROM {p}meeting_keys"))
    quarantine = Counter(_canon([r[0], r[1], r[2]]) for r in store.query(
        "SELECT digest, field, error FROM {p}quarantine"))
    return {"index": keys, "quarantine": quarantine}


def read_models(store: Store, tables: Iterable[str] = READ_MODELS,
                *, drop: Mapping[str, Iterable[str]] | None = None) -> Fingerprint:
    """Every row of each read model (``syncledger project`` first); ``drop`` names columns
    to leave out per table (times taken from a clock, in sync runs)."""
    out: Fingerprint = {}
    for table in tables:
        with store.cursor() as c:
            c.execute(store._sql(f"SELECT * FROM {{p}}{table}"))
            # the library's SQLite cursor wraps sqlite3's, which has the description
            names = [d[0] for d in getattr(c, "sqlite_cursor", c).description]
            rows = [tuple(r.values()) if isinstance(r, dict) else tuple(r)
                    for r in c.fetchall()]
        skip = set((drop or {}).get(table, ()))
        out[table] = Counter(_canon({n: v for n, v in zip(names, row, strict=True)
                                     if n not in skip}) for row in rows)
    return out


def ledger(store: Store) -> Fingerprint:
    """Events, index and quarantine rows, and read models: the whole ledger after ``project``."""
    return {**events(store), **side_rows(store), **read_models(store)}


#: Cloud fields set by the emulators themselves (ids, stamps), left out of a cloud fingerprint.
_GRAPH_OWN = {"id", "changeKey", "@odata.etag", "lastModifiedDateTime", "createdDateTime",
              "iCalUId", "seriesMasterId", "singleValueExtendedProperties"}
_SF_OWN = {"Id", "SystemModstamp", "LastModifiedDate", "CreatedDate", "EventId"}


def cloud(state: Mapping[str, Any]) -> Fingerprint:
    """A saved sandbox cloud (``SandboxCloud.save``): each mailbox's Outlook items and each
    Salesforce object's records, without what the emulator made up (ids, stamps), so two
    clouds that hold the same meetings compare equal however their ids were numbered."""
    out: Fingerprint = {}
    for mailbox, items in state["graph"]["events"].items():
        out[f"graph:{mailbox}"] = Counter(
            _canon({k: v for k, v in item.items() if k not in _GRAPH_OWN})
            for item in items.values())
    records = state["salesforce"]["records"]
    subject = {i: r.get("Subject") for i, r in records.get("Event", {}).items()}
    for sobject, rows in records.items():
        out[f"salesforce:{sobject}"] = Counter(
            _canon({**{k: v for k, v in r.items() if k not in _SF_OWN and "ICalUId" not in k},
                    "event": subject.get(str(r.get("EventId")))}) for r in rows.values())
    return out


@dataclass
class Difference:
    """How a fingerprint differs from the reference one."""

    lost: int = 0  # rows the reference has and this one lacks
    duplicated: int = 0  # rows this one has more often than the reference
    diverged: list[str] = field(default_factory=list)  # parts that differ at all

    def __bool__(self) -> bool:
        return bool(self.lost or self.duplicated or self.diverged)


def compare(reference: Fingerprint, other: Fingerprint) -> Difference:
    diff = Difference()
    for part in sorted(set(reference) | set(other)):
        want, got = reference.get(part, Counter()), other.get(part, Counter())
        if want == got:
            continue
        missing, extra = want - got, got - want
        diff.lost += sum(missing.values())
        diff.duplicated += sum(n for row, n in extra.items() if row in want)
        diff.diverged.append(part)
    return diff
