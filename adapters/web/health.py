"""Health, the last cycle, parked writes and the Prometheus page, for ``serve``.

What the service's status read model does not answer yet is read here from
the ledger itself: the newest recorded event stands for the last cycle (a
cycle that saw no change records nothing, so this is "last change recorded"),
parked writes are outbox entries that failed three times and are no longer
retried (``adapters.sync.cycle``).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from ledger.store import Store
from projections import queries

PARK_AFTER = 3  # attempts; the cycle stops retrying a write after this many


def _outbox_rows(store: Store) -> list[tuple[Any, ...]]:
    try:
        return store.query("SELECT state, attempts, updated_at FROM {p}outbox")
    except Exception:  # no outbox yet: nothing was ever written (the driver's own error)
        return []


def parked_writes(store: Store) -> int:
    return sum(1 for state, attempts, _ in _outbox_rows(store)
               if state == "failed" and int(attempts) >= PARK_AFTER)


def last_cycle(store: Store) -> dict[str, Any]:
    """When the ledger last recorded something, and how long ago (seconds)."""
    head = store.max_position()
    if not head:
        return {"at": None, "age_seconds": None, "position": 0}
    rows = store.read_log(head - 1, 1)
    at = orjson.loads(rows[0][4]).get("timestamp") if rows else None
    writes = [str(r[2]) for r in _outbox_rows(store)]
    if writes and (at is None or max(writes) > at):
        at = max(writes)
    age = None
    if at:
        when = datetime.fromisoformat(str(at).replace("Z", "+00:00"))
        age = round((datetime.now(UTC) - when).total_seconds(), 1)
    return {"at": at, "age_seconds": age, "position": head}


def mailbox_status(store: Store) -> list[dict[str, Any]]:
    """Per mailbox: has a delta pull ever completed (its checkpoint is kept)."""
    rows = store.query("SELECT name FROM {p}checkpoints WHERE name LIKE 'graph.delta:%'")
    return [{"mailbox": str(name).partition(":")[2], "pulled": True} for (name,) in rows]


def check(store: Store, *, started: float) -> dict[str, Any]:
    try:
        cycle = last_cycle(store)
    except Exception as exc:  # any driver error: the store is not reachable
        return {"store": "unreachable", "error": type(exc).__name__,
                "uptime_seconds": round(time.monotonic() - started, 1)}
    return {"store": "ok", "last_cycle": cycle,
            "uptime_seconds": round(time.monotonic() - started, 1)}


class LedgerCollector(Collector):
    """Gauges read from the read models at scrape time."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Any:
        data = queries.overview(self.store)
        cycle = last_cycle(self.store)
        for name, help_text in (("open_issues", "open sync issues"),
                                ("open_conflicts", "open sync conflicts"),
                                ("pending_writes", "writes the plan still holds"),
                                ("linked_items", "Exchange items linked to Salesforce")):
            g = GaugeMetricFamily(f"syncledger_{name}", help_text, labels=["mailbox"])
            for row in data["mailboxes"]:
                g.add_metric([row["mailbox"]], row[name])
            yield g
        yield GaugeMetricFamily("syncledger_parked_writes", "writes no longer retried",
                                value=parked_writes(self.store))
        yield GaugeMetricFamily("syncledger_ledger_position", "events in the ledger",
                                value=cycle["position"])
        if cycle["age_seconds"] is not None:
            yield GaugeMetricFamily("syncledger_last_change_age_seconds",
                                    "seconds since the ledger last recorded something",
                                    value=cycle["age_seconds"])


def metrics_page(store: Store) -> tuple[bytes, str]:
    registry = CollectorRegistry()
    registry.register(LedgerCollector(store))
    return generate_latest(registry), CONTENT_TYPE_LATEST
