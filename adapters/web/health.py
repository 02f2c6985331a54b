"""``/healthz`` and the overview's service columns, read from the service's own modules.

Nothing is counted here: mailbox status, parked writes and when the last job
ended come from the status read model (``projections.status``, what
``syncledger status`` prints), the Prometheus page from
``adapters.service.metrics``. A ledger no service has run on yet (filled by
``ingest`` or one-shot ``sync``) has no job recorded: its "last cycle" is then
the newest event in the ledger (``source: ledger``).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import orjson

from ledger.store import Store
from projections import status


def mailbox_status(store: Store, mailboxes: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """``syncledger status`` rows of the mailboxes, keyed ``mailbox`` instead of ``key``."""
    return [{"mailbox": row["key"], **{k: v for k, v in row.items() if k not in ("key", "kind")}}
            for row in status.rows(store, now=datetime.now(UTC), mailboxes=mailboxes)
            if row["kind"] == "mailbox"]


def parked_writes(store: Store) -> int:
    return sum(status.parked_writes(store).values())


def last_cycle(store: Store) -> dict[str, Any]:
    """When the service last finished a job (else: the ledger last recorded something),
    how long ago in seconds, and the ledger's position."""
    head = store.max_position()
    at, source = status.last_job_ended(store), "service"
    if at is None and head:
        rows = store.read_log(head - 1, 1)
        at, source = (orjson.loads(rows[0][4]).get("timestamp") if rows else None), "ledger"
    age = None
    if at:
        when = datetime.fromisoformat(str(at).replace("Z", "+00:00"))
        age = round((datetime.now(UTC) - when).total_seconds(), 1)
    return {"at": at, "age_seconds": age, "position": head, "source": source if at else None}


def check(store: Store, *, started: float) -> dict[str, Any]:
    try:
        cycle = last_cycle(store)
    except Exception as exc:  # any driver error: the store is not reachable
        return {"store": "unreachable", "error": type(exc).__name__,
                "uptime_seconds": round(time.monotonic() - started, 1)}
    return {"store": "ok", "last_cycle": cycle,
            "uptime_seconds": round(time.monotonic() - started, 1)}
