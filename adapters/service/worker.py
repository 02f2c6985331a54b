"""``syncledger worker`` and ``syncledger schedule``: the jobs on procrastinate over PostgreSQL.

procrastinate keeps its queue in the ledger's own PostgreSQL schema, so any
number of worker processes on any number of machines share one ledger and one
queue, with no other server. What keeps them out of each other's way:

* every task has a ``lock``: a mailbox's job ``mailbox:<address>``, the
  Salesforce pull and the Salesforce writes ``salesforce``, the catch-up
  ``catch-up``; procrastinate never starts a job while another job with its lock
  is running, so one mailbox is never pulled by two workers at once;
* and a ``queueing_lock`` of the same name, so a job waiting in the queue is not
  queued twice (a second defer raises ``AlreadyEnqueued``, which we ignore);
* the tick and ``schedule`` go further for the pulls: they never queue a mailbox
  (or the Salesforce pull) while a job of it waits *or runs* (:func:`_queueing`);
* each worker sends a heartbeat; the periodic ``tick`` task (every
  ``--tick`` seconds, on whichever worker is free) sends back to the queue the
  jobs of workers whose heartbeat stopped (kill -9, a lost machine), so another
  worker runs them again. That is safe because every job is idempotent
  (``adapters/sync/jobs.py``), and the lock is released when the job is retried
  (:func:`retry_stalled`);
* the tick also queues each mailbox whose interval has passed (per-mailbox
  jitter, back-off and suspension from ``policy.py``) and the Salesforce pull;
* an hourly ``prune`` task deletes finished jobs older than ``--job-history-hours``
  (failed, cancelled and aborted ones after 7 times as long): procrastinate keeps
  every job it ran, and an org of 2,000 mailboxes pulled every 5 minutes adds
  about 576,000 rows a day to its table (and more to its events table).

``syncledger schedule`` queues one whole cycle at once (every mailbox, then the
Salesforce pull at a lower priority, so workers take the mailboxes first).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import procrastinate
from procrastinate import exceptions as procrastinate_errors

from adapters.service.policy import Policy, connect, finish, key_of
from adapters.sync import jobs
from adapters.sync.config import SyncConfig
from adapters.sync.cycle import utcnow
from ledger.store import Store, StoreURL
from projections import status

MAILBOX_PRIORITY = 10  # higher runs first: a cycle's mailboxes before its Salesforce pull
TASK_NAMES = {jobs.MAILBOX: "syncledger.mailbox", jobs.SALESFORCE: "syncledger.salesforce",
              jobs.SALESFORCE_WRITES: "syncledger.salesforce_writes",
              jobs.CATCH_UP: "syncledger.catch_up"}
TICK = "syncledger.tick"
PRUNE = "syncledger.prune"
#: Finished jobs are kept ``--job-history-hours`` (default 24); failed, cancelled and
#: aborted ones this many times as long, so a failure can still be looked at.
FAILED_KEPT_FACTOR = 7


def lock_of(kind: str, mailbox: str | None = None) -> str:
    """The procrastinate lock (and queueing lock) of a job."""
    if kind == jobs.MAILBOX:
        return f"mailbox:{(mailbox or '').lower()}"
    return jobs.SALESFORCE if kind == jobs.SALESFORCE_WRITES else kind


def queueing_lock_of(kind: str, mailbox: str | None = None) -> str:
    return lock_of(kind, mailbox) if kind != jobs.SALESFORCE_WRITES else kind


def conninfo(url: StoreURL) -> str:
    """psycopg's connection string for the ledger's database, searching the ledger's schema."""
    if url.kind != "postgresql":
        raise ValueError("syncledger worker needs the ledger on PostgreSQL (--db postgresql://"
                         "...); on SQLite use 'syncledger run'")
    parts = [f"host={url.host}", f"port={url.port}", f"dbname={url.dbname}",
             f"user={url.user}"]
    if url.password:
        parts.append(f"password={url.password}")
    parts.append(f"options='-c search_path={url.schema or 'public'}'")
    return " ".join(parts)


@dataclass
class Context:
    """What this worker process's tasks share: the ledger, the clients, the policy."""

    store: Store
    config: SyncConfig
    policy: Policy
    stalled_after: float
    log: Any = None  # adapters.service.scheduler.Log: one line per finished job
    clients: jobs.Clients | None = None
    #: the org's mailboxes, lower case (from ``config``): asked in every job, built once
    #: (2,000 a job cost a worker more CPU per job as the org grew)
    mailboxes: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        self.mailboxes = frozenset(m.lower() for m in self.config.graph.mailboxes)

    def connected(self) -> jobs.Clients:
        if self.clients is None:
            self.clients = connect(self.config)
        return self.clients


_context: Context | None = None


def bind(context: Context) -> None:
    """Give this process's tasks their ledger and clients (before the worker starts)."""
    global _context
    _context = context


def _ctx() -> Context:
    if _context is None:
        raise RuntimeError("syncledger worker tasks run only inside 'syncledger worker'")
    return _context


def make_app(url: StoreURL, *, tick_seconds: int = 10,
             history_hours: int = 24) -> procrastinate.App:
    """The procrastinate app: its connector on the ledger's schema, the four job tasks,
    the tick and the hourly prune of the job history."""
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(
        conninfo=conninfo(url), min_size=1, max_size=4))

    def run(kind: str, mailbox: str | None = None) -> None:
        ctx = _ctx()
        if kind == jobs.MAILBOX and (mailbox or "").lower() not in ctx.mailboxes:
            return  # a request for a mailbox this org does not sync
        key = key_of(kind, mailbox)
        previous = status.one(ctx.store, key)
        if kind == jobs.MAILBOX and previous and previous.get("suspended"):
            return
        started = utcnow()
        result = jobs.run_job(ctx.store, ctx.connected(), kind, mailbox)
        rec = finish(ctx.store, result, started, utcnow(), ctx.policy, previous)
        if ctx.log is not None:
            ctx.log.job(rec)
        # Every pull queues its follow-ups, and the queueing lock refuses them while one
        # waits (which then runs after this job's events, so a catch-up always follows a
        # pull that recorded something). Measured at 50 mailboxes, 3 workers: 48 of 51
        # catch-up defers refused in a quiet cycle, about 97 of 103 follow-ups in one with
        # changes, ~1.2 ms each on a local PostgreSQL: 1-2 ms a mailbox job. Kept: asking
        # first whether one waits would cost the same round trip.
        if kind in (jobs.MAILBOX, jobs.SALESFORCE):
            if sum(result.report.observed.values()) or result.report.writes:
                defer(app, jobs.SALESFORCE_WRITES)
            defer(app, jobs.CATCH_UP)
        elif kind == jobs.SALESFORCE_WRITES and result.report.writes:
            defer(app, jobs.CATCH_UP)

    @app.task(name=TASK_NAMES[jobs.MAILBOX], retry=2)
    def mailbox(mailbox: str) -> None:
        run(jobs.MAILBOX, mailbox)

    @app.task(name=TASK_NAMES[jobs.SALESFORCE], retry=2)
    def salesforce() -> None:
        run(jobs.SALESFORCE)

    @app.task(name=TASK_NAMES[jobs.SALESFORCE_WRITES], retry=2)
    def salesforce_writes() -> None:
        run(jobs.SALESFORCE_WRITES)

    @app.task(name=TASK_NAMES[jobs.CATCH_UP], retry=2)
    def catch_up() -> None:
        run(jobs.CATCH_UP)

    @app.periodic(cron=f"*/{tick_seconds} * * * * *")
    @app.task(name=TICK, queueing_lock=TICK, lock=TICK)
    async def tick(timestamp: int) -> None:
        ctx = _ctx()
        await retry_stalled(app, ctx.stalled_after)
        await asyncio.to_thread(defer_due, app, ctx.store, ctx.config, ctx.policy)

    @app.periodic(cron="7 * * * *")
    @app.task(name=PRUNE, queueing_lock=PRUNE, lock=PRUNE)
    async def prune(timestamp: int) -> None:
        await prune_history(app, history_hours)

    return app


async def retry_stalled(app: procrastinate.App, stalled_after: float) -> None:
    """Send the jobs of dead workers back to the queue.

    A stalled job keeps its lock (and, for a mailbox, keeps the tick from queueing
    the mailbox again) until this puts it back to 'todo', where the next free
    worker runs it. When the same job is already waiting (a catch-up or the
    Salesforce writes, which are queued while one of them runs), putting it back
    would break the queueing lock, so it is ended as aborted instead: the waiting
    one does the same work. Without that the retry failed at every tick, and the
    dead job held its lock, and the tick, forever.
    """
    for job in await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=stalled_after):
        try:
            await app.job_manager.retry_job(job)
        except procrastinate_errors.UniqueViolation:
            await app.job_manager.finish_job(job, procrastinate.jobs.Status.ABORTED,
                                             delete_job=False)


async def prune_history(app: procrastinate.App, hours: int) -> None:
    """Delete the jobs that finished more than ``hours`` ago (failed, cancelled and
    aborted ones: ``FAILED_KEPT_FACTOR`` times as long), with their events; waiting
    and running jobs are never touched. The per-mailbox outcome stays in the status
    read model, which this does not touch either."""
    manager = app.job_manager
    await manager.delete_old_jobs(nb_hours=hours)
    await manager.delete_old_jobs(nb_hours=hours * FAILED_KEPT_FACTOR, include_failed=True,
                                  include_cancelled=True, include_aborted=True)


def defer(app: procrastinate.App, kind: str, mailbox: str | None = None,
          priority: int = 0) -> bool:
    """Queue one job; False when the same job is already waiting (its queueing lock)."""
    task = app.tasks[TASK_NAMES[kind]]
    args = {"mailbox": mailbox} if kind == jobs.MAILBOX else {}
    try:
        task.configure(lock=lock_of(kind, mailbox),
                       queueing_lock=queueing_lock_of(kind, mailbox),
                       priority=priority).defer(**args)
    except procrastinate_errors.AlreadyEnqueued:
        return False
    return True


@contextmanager
def _queueing(url: StoreURL) -> Iterator[dict[str, set[str]]]:
    """The queueing locks of the jobs waiting or running, each with the states of its
    jobs ('todo', 'doing'), while no one else queues pulls.

    Why ask the queue rather than the status read model: procrastinate's
    ``queueing_lock`` only refuses a job while another waits ('todo'); once it
    runs ('doing') a second one is accepted, and the status read model learns of
    a job only when it ends. So a mailbox whose pull spans several ticks (a slow
    mailbox, a first cycle) was queued again at every tick, and pulled again right
    after. The jobs table is the one place that knows what waits and runs, and a
    dead worker's job needs no clean-up there: it stays 'doing' (and its mailbox
    skipped) only until the tick's :func:`retry_stalled` puts it back to 'todo',
    and it is then run, not queued again. A start time written to the status at
    job start would stay behind a killed worker and need a time-out of its own.

    The transaction's advisory lock keeps the tick and ``schedule`` from both
    finding a mailbox free and both queueing it (one job could start in between);
    one query and one lock per tick, whatever the number of mailboxes.
    """
    import psycopg

    with psycopg.connect(conninfo(url)) as conn:
        # Keyed by the ledger's schema: two ledgers in one database do not wait for each other.
        conn.execute(b"SELECT pg_advisory_xact_lock(hashtext(%s))",
                     (f"syncledger-queueing:{url.schema or 'public'}",))
        found = conn.execute(b"SELECT DISTINCT queueing_lock, status::text FROM "
                             b"procrastinate_jobs WHERE status IN ('todo', 'doing') "
                             b"AND queueing_lock IS NOT NULL").fetchall()
        busy: dict[str, set[str]] = {}
        for lock, state in found:
            busy.setdefault(str(lock), set()).add(str(state))
        yield busy


def defer_cycle(app: procrastinate.App, store: Store, config: SyncConfig) -> dict[str, int]:
    """Queue one whole cycle (``syncledger schedule``); returns how many jobs were queued,
    were already waiting or running (not queued again) and were suspended."""
    jobs.apply_settings(store, connect(config))
    rows = status.raw(store)
    queued = waiting = skipped = 0
    with _queueing(store.url) as busy:
        for kind, mailbox in jobs.cycle_jobs(config.graph.mailboxes):
            if kind != jobs.MAILBOX and kind != jobs.SALESFORCE:
                continue  # writes and catch-up follow the pulls that call for them
            if kind == jobs.MAILBOX and rows.get(key_of(kind, mailbox), {}).get("suspended"):
                skipped += 1
                continue
            ok = queueing_lock_of(kind, mailbox) not in busy and defer(
                app, kind, mailbox, priority=MAILBOX_PRIORITY if kind == jobs.MAILBOX else 0)
            queued += ok
            waiting += not ok
    return {"queued": queued, "already_waiting": waiting, "suspended": skipped}


def _jitter(mailbox: str, policy: Policy) -> float:
    """A stable per-mailbox share of the jitter, so every tick agrees on when it is due."""
    h = int(hashlib.sha1(mailbox.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return policy.interval * (1 + policy.jitter * h)


def defer_due(app: procrastinate.App, store: Store, config: SyncConfig, policy: Policy,
              now: datetime | None = None) -> int:
    """Queue the mailboxes whose interval has passed or whose pull was requested, and the
    Salesforce pull when its interval has; returns how many were queued.

    None whose job waits or runs (:func:`_queueing`): its ``last_started`` is
    written when that job ends, and the interval counts from there. A pull
    requested while the mailbox's job runs is kept for a later tick, since that
    job may have read its delta before the change.
    """
    now = now or datetime.now(UTC)
    with _queueing(store.url) as busy:
        rows = status.raw(store)
        requested = set(status.take_requests(store))
        queued = 0
        for m in (x.lower() for x in config.graph.mailboxes):
            row = rows.get(m) or {}
            if row.get("suspended"):
                continue
            until = row.get("backoff_until")
            if until and datetime.fromisoformat(str(until)) > now and m not in requested:
                continue
            last = row.get("last_started")
            due = last is None or now - datetime.fromisoformat(str(last)) >= timedelta(
                seconds=_jitter(m, policy))
            if not (due or m in requested):
                continue
            states = busy.get(queueing_lock_of(jobs.MAILBOX, m))
            if states:
                if m in requested and "todo" not in states:
                    status.request(store, m, now.isoformat())  # again, for a later tick
                continue
            queued += defer(app, jobs.MAILBOX, m, priority=MAILBOX_PRIORITY)
        row = rows.get(jobs.SALESFORCE) or {}
        last = row.get("last_started")
        if queueing_lock_of(jobs.SALESFORCE) not in busy and (
                last is None or now - datetime.fromisoformat(str(last)) >= timedelta(
                    seconds=policy.salesforce_interval)):
            queued += defer(app, jobs.SALESFORCE)
    return queued


def ensure_schema(app: procrastinate.App, url: StoreURL) -> None:
    """procrastinate's tables in the ledger's schema, created once (an advisory lock keeps
    two workers starting together from both creating them)."""
    import psycopg

    with psycopg.connect(conninfo(url)) as conn:
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{url.schema or "public"}"'.encode())
        conn.execute(b"SELECT pg_advisory_xact_lock(hashtext(%s))",
                     (f"syncledger-procrastinate:{url.schema or 'public'}",))
        row = conn.execute(b"SELECT to_regclass('procrastinate_jobs') IS NOT NULL").fetchone()
        if not (row and row[0]):
            conn.execute(app.schema_manager.get_schema().encode())


def pending(url: StoreURL) -> int:
    """Sync jobs waiting or running (the tick not counted)."""
    import psycopg

    with psycopg.connect(conninfo(url)) as conn:
        row = conn.execute(b"SELECT count(*) FROM procrastinate_jobs WHERE status IN "
                           b"('todo', 'doing') AND task_name <> %s", (TICK,)).fetchone()
        return int(row[0]) if row else 0


def wait_idle(url: StoreURL, *, timeout: float, poll: float = 0.5,
              settle: float = 1.0) -> bool:
    """Until no sync job waits or runs (for ``settle`` seconds); False on timeout."""
    deadline = time.monotonic() + timeout
    quiet_since: float | None = None
    while time.monotonic() < deadline:
        if pending(url) == 0:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= settle:
                return True
        else:
            quiet_since = None
        time.sleep(poll)
    return False


def run_worker(app: procrastinate.App, *, name: str, heartbeat: float,
               stalled_after: float, **options: Any) -> None:
    """Run one worker until SIGTERM / SIGINT (procrastinate finishes the job in hand)."""
    with app.open():
        app.run_worker(name=name, concurrency=1, update_heartbeat_interval=heartbeat,
                       stalled_worker_timeout=stalled_after, **options)
