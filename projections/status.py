"""Per-mailbox sync status: the read model behind ``syncledger status`` and the web overview.

Unlike the other read models this one is not folded from the ledger's events:
it holds how the service's jobs went (when a mailbox was last pulled, its last
error, its back-off, whether it is suspended), which is operational state, not
meeting history, so it is written by the service as each job ends
(:func:`record`) and is not replayed by ``rebuild``. Reading it joins two
things the ledger does know: the items synced per mailbox (the mapping read
model) and the writes parked in the outbox (failed three times).

How to read it (e.g. from the web overview)::

    from projections import status
    rows = status.rows(store, now=datetime.now(UTC))          # every mailbox + org jobs
    one = status.rows(store, mailbox="bob@contoso.com", now=...)

Each row is a dict with the keys of :data:`COLUMNS`; times are ISO-8601 UTC
strings or None, ``delta_token_age_seconds`` is a float or None.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from ledger.store import Store
from projections import runner

DDL = ("CREATE TABLE IF NOT EXISTS {p}sync_status (key TEXT PRIMARY KEY, kind TEXT NOT NULL, "
       "last_started TEXT, last_success TEXT, last_error TEXT, last_error_at TEXT, "
       "failures INTEGER NOT NULL DEFAULT 0, backoff_until TEXT, "
       "suspended INTEGER NOT NULL DEFAULT 0, jobs_ok INTEGER NOT NULL DEFAULT 0, "
       "jobs_failed INTEGER NOT NULL DEFAULT 0, observed INTEGER NOT NULL DEFAULT 0, "
       "writes INTEGER NOT NULL DEFAULT 0, last_seconds REAL, requested_at TEXT, "
       "updated_at TEXT NOT NULL)")

#: The keys of each row :func:`rows` returns, in order.
COLUMNS = ("key", "kind", "last_success", "delta_token_age_seconds", "last_error",
           "last_error_at", "failures", "backoff_until", "suspended", "parked_writes",
           "items_synced", "jobs_ok", "jobs_failed", "observed", "writes", "last_seconds",
           "requested_at")
#: An outbox entry that failed this often is parked: the sync no longer retries it.
PARKED_AFTER = 3


@dataclass(frozen=True)
class JobRecord:
    """How one job ended, as the service records it."""

    key: str  # the mailbox address, or the org job's kind (salesforce, catch-up, ...)
    kind: str
    started: str
    ended: str
    ok: bool
    error: str | None = None
    seconds: float = 0.0
    observed: int = 0
    writes: int = 0
    failures: int = 0  # consecutive failures after this job (0 when it succeeded)
    backoff_until: str | None = None
    suspended: bool = False


def ensure(store: Store) -> None:
    store.create_once(DDL)  # the service records a job's end in every job


def record(store: Store, job: JobRecord) -> None:
    """Record how a job ended (one row per mailbox or org job, upserted)."""
    ensure(store)
    store.execute(
        "INSERT INTO {p}sync_status (key, kind, last_started, last_success, last_error, "
        "last_error_at, failures, backoff_until, suspended, jobs_ok, jobs_failed, observed, "
        "writes, last_seconds, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (key) DO UPDATE SET kind = excluded.kind, "
        "last_started = excluded.last_started, "
        "last_success = COALESCE(excluded.last_success, sync_status.last_success), "
        "last_error = COALESCE(excluded.last_error, sync_status.last_error), "
        "last_error_at = COALESCE(excluded.last_error_at, sync_status.last_error_at), "
        "failures = excluded.failures, backoff_until = excluded.backoff_until, "
        "suspended = excluded.suspended, "
        "jobs_ok = sync_status.jobs_ok + excluded.jobs_ok, "
        "jobs_failed = sync_status.jobs_failed + excluded.jobs_failed, "
        "observed = sync_status.observed + excluded.observed, "
        "writes = sync_status.writes + excluded.writes, "
        "last_seconds = excluded.last_seconds, updated_at = excluded.updated_at",
        (job.key, job.kind, job.started, job.ended if job.ok else None,
         None if job.ok else job.error, None if job.ok else job.ended, job.failures,
         job.backoff_until, int(job.suspended), int(job.ok), int(not job.ok), job.observed,
         job.writes, round(job.seconds, 3), job.ended))


def request(store: Store, key: str, at: str) -> None:
    """Note that someone asked for this mailbox's pull now (a change notification)."""
    ensure(store)
    store.execute(
        "INSERT INTO {p}sync_status (key, kind, requested_at, updated_at) VALUES (?, 'mailbox', "
        "?, ?) ON CONFLICT (key) DO UPDATE SET requested_at = excluded.requested_at", (key, at, at))


def take_requests(store: Store) -> list[str]:
    """Mailboxes whose pull was requested, cleared as they are handed out."""
    ensure(store)
    keys = [str(k) for (k,) in store.query(
        "SELECT key FROM {p}sync_status WHERE requested_at IS NOT NULL ORDER BY requested_at")]
    for key in keys:
        store.execute("UPDATE {p}sync_status SET requested_at = NULL WHERE key = ?", (key,))
    return keys


def resume(store: Store, key: str, at: str) -> bool:
    """Lift a suspension (and its back-off); False when there was no such row."""
    ensure(store)
    found = bool(store.query("SELECT 1 FROM {p}sync_status WHERE key = ?", (key,)))
    store.execute("UPDATE {p}sync_status SET suspended = 0, failures = 0, backoff_until = NULL, "
                  "updated_at = ? WHERE key = ?", (at, key))
    return found


_RAW = ("key", "kind", "last_started", "last_success", "last_error", "last_error_at",
        "failures", "backoff_until", "suspended", "jobs_ok", "jobs_failed", "observed",
        "writes", "last_seconds", "requested_at")


def raw(store: Store) -> dict[str, dict[str, Any]]:
    """The stored rows by key (what the scheduler needs: failures, back-off, suspended)."""
    return _raw(store, "", ())


def one(store: Store, key: str) -> dict[str, Any] | None:
    """One stored row (as :func:`raw` gives it), or None: what a job needs of its own
    status, without reading every mailbox's."""
    return _raw(store, " WHERE key = ?", (key,)).get(key)


def _raw(store: Store, where: str, params: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    ensure(store)
    out = {}
    for row in store.query(f"SELECT {', '.join(_RAW)} FROM {{p}}sync_status{where}", params):
        item = dict(zip(_RAW, row, strict=True))
        item["suspended"] = bool(item["suspended"])
        out[str(item["key"])] = item
    return out


def rows(store: Store, *, now: datetime, mailbox: str | None = None,
         mailboxes: tuple[str, ...] | list[str] = ()) -> list[dict[str, Any]]:
    """Status per mailbox (configured ``mailboxes`` show even before their first job),
    then the org-wide jobs; with ``mailbox``, that mailbox's row only."""
    stored = raw(store)
    for m in mailboxes:
        stored.setdefault(m.lower(), {"key": m.lower(), "kind": "mailbox"})
    synced = _items_synced(store)
    parked = parked_writes(store)
    out = []
    for key, item in stored.items():
        if mailbox is not None and key != mailbox.lower():
            continue
        success = item.get("last_success")
        age = ((now - datetime.fromisoformat(str(success))).total_seconds()
               if success and item["kind"] == "mailbox" else None)
        row = {c: item.get(c) for c in COLUMNS}
        row.update(delta_token_age_seconds=round(age, 1) if age is not None else None,
                   parked_writes=parked.get(key, 0),
                   items_synced=synced.get(key, 0) if item["kind"] == "mailbox" else None,
                   failures=item.get("failures") or 0, suspended=bool(item.get("suspended")),
                   jobs_ok=item.get("jobs_ok") or 0, jobs_failed=item.get("jobs_failed") or 0,
                   observed=item.get("observed") or 0, writes=item.get("writes") or 0)
        out.append(row)
    out.sort(key=lambda r: (r["kind"] != "mailbox", str(r["key"])))
    return out


def _items_synced(store: Store) -> dict[str, int]:
    """Linked Exchange items per mailbox (the mapping read model, caught up first)."""
    runner.catch_up(store, ["mapping"])
    with runner.reading(store) as conn:
        import sqlalchemy as sa

        from projections.mapping import mapping_table as t

        result = conn.execute(sa.select(t.c.mailbox, sa.func.count()).group_by(t.c.mailbox))
        return {str(m): int(n) for m, n in result}


def last_job_ended(store: Store) -> str | None:
    """When the newest job the service recorded ended (ISO-8601 UTC); None before any."""
    ends = [str(t) for row in raw(store).values()
            for t in (row.get("last_success"), row.get("last_error_at")) if t]
    return max(ends) if ends else None


def parked_writes(store: Store) -> dict[str, int]:
    """Writes the outbox gave up on, by the mailbox they belong to (org writes: 'salesforce')."""
    with runner.reading(store) as conn:
        import sqlalchemy as sa

        if not sa.inspect(conn).has_table("outbox"):
            return {}  # nothing was ever written
    found = store.query("SELECT request FROM {p}outbox WHERE state = 'failed' "
                        "AND attempts >= ?", (PARKED_AFTER,))
    out: dict[str, int] = {}
    for (request,) in found:
        mailbox = orjson.loads(request).get("mailbox") or "salesforce"
        out[str(mailbox).lower()] = out.get(str(mailbox).lower(), 0) + 1
    return out
