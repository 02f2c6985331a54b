"""``syncledger run``: the embedded scheduler, one process on SQLite or PostgreSQL.

Each mailbox's job runs on its own interval (with jitter), the Salesforce pull
on its own, the Salesforce writes when a job recorded something new, and the
projections' catch-up after every job. A failing job backs off (see
``policy.py``); a mailbox failing ``max_failures`` times in a row is suspended.
A pull requested from outside (a Graph change notification, through
:func:`adapters.service.requests.request_pull`) runs at the next tick.

SIGTERM / SIGINT stop the loop once the job in hand is finished (jobs are short:
one mailbox's delta); a second signal abandons it, which loses nothing either,
since every page commits with its checkpoint and a re-run appends nothing twice.
"""

from __future__ import annotations

import random
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TextIO

import orjson

from adapters.service import metrics
from adapters.service.policy import Policy, connect, finish, key_of
from adapters.sync import jobs
from adapters.sync.config import SyncConfig
from adapters.sync.cycle import utcnow
from ledger.store import Store
from projections import status


@dataclass
class Totals:
    jobs: int = 0
    failed: int = 0
    cycles: int = 0
    writes: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


class Log:
    """A progress line on a terminal, one JSON object per job otherwise."""

    def __init__(self, fmt: str = "auto", stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.json = fmt == "json" or (fmt == "auto" and not self.stream.isatty())

    def job(self, rec: status.JobRecord, totals: Totals | None = None) -> None:
        totals = totals or Totals()
        if self.json:
            self.stream.write(orjson.dumps({
                "at": rec.ended, "event": "job", "kind": rec.kind, "key": rec.key,
                "ok": rec.ok, "error": rec.error, "seconds": round(rec.seconds, 3),
                "observed": rec.observed, "writes": rec.writes, "failures": rec.failures,
                "backoff_until": rec.backoff_until, "suspended": rec.suspended}).decode() + "\n")
        else:
            mark = "ok" if rec.ok else f"FAILED ({rec.failures}x)"
            self.stream.write(f"\rrun: cycle {totals.cycles + 1}, {totals.jobs} job(s), "
                              f"{totals.failed} failed, {totals.writes} write(s) | "
                              f"{rec.kind} {rec.key if rec.key != rec.kind else ''} {mark}"
                              "\x1b[K")
            if not rec.ok:
                self.stream.write(f"\n  {rec.key}: {rec.error}\n")
        self.stream.flush()

    def note(self, text: str, **fields: Any) -> None:
        if self.json:
            self.stream.write(orjson.dumps({"at": utcnow().isoformat(), "event": "note",
                                            "message": text, **fields}).decode() + "\n")
        else:
            self.stream.write(f"\nrun: {text}\n")
        self.stream.flush()


class Scheduler:
    """The loop of ``syncledger run``."""

    def __init__(self, store: Store, config: SyncConfig, *, policy: Policy | None = None,
                 clock: Callable[[], datetime] = utcnow, log: Log | None = None,
                 saves: Callable[[], list[tuple[str, dict[str, Any]]]] = lambda: [],
                 seed: int | None = None, tick: float = 1.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.store = store
        self.config = config
        self.policy = policy or Policy()
        self.clock = clock
        self.log = log or Log()
        self.saves = saves
        self.rng = random.Random(seed)
        self.tick = tick
        self.stop = threading.Event()
        self.totals = Totals()
        self.clients = connect(config, sleep=sleep)
        self.mailboxes = [m.lower() for m in config.graph.mailboxes]
        self.due: dict[str, datetime] = {}

    # --- signals ------------------------------------------------------------

    def install_signals(self) -> None:
        def handler(signum: int, frame: Any) -> None:
            if self.stop.is_set():
                raise KeyboardInterrupt  # a second signal: abandon the job in hand
            self.log.note(f"{signal.Signals(signum).name}: stopping after the current job")
            self.stop.set()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    # --- one job --------------------------------------------------------------

    def run_job(self, kind: str, mailbox: str | None = None) -> status.JobRecord:
        key = key_of(kind, mailbox)
        previous = status.one(self.store, key)
        started = self.clock()
        saves = [s for s in self.saves() if kind == jobs.MAILBOX] or None
        result = jobs.run_job(self.store, self.clients, kind, mailbox, clock=self.clock,
                              saves=saves)
        rec = finish(self.store, result, started, self.clock(), self.policy, previous)
        self.totals.jobs += 1
        self.totals.failed += 0 if rec.ok else 1
        self.totals.writes += rec.writes
        self.totals.by_kind[kind] = self.totals.by_kind.get(kind, 0) + 1
        self.log.job(rec, self.totals)
        return rec

    def cycle(self) -> None:
        """Every job once, in ``cycle_jobs`` order (suspended and backing-off mailboxes
        skipped), as ``run --cycles N`` and the bench run it."""
        began = time.monotonic()
        now = self.clock()
        rows = status.raw(self.store)
        jobs.apply_settings(self.store, self.clients, clock=self.clock)
        for kind, mailbox in jobs.cycle_jobs(self.mailboxes):
            if self.stop.is_set():
                return
            if kind == jobs.MAILBOX and not self._may_run(rows.get(key_of(kind, mailbox)), now):
                metrics.JOBS.labels(kind=kind, outcome="skipped").inc()
                continue
            self.run_job(kind, mailbox)
            if kind == jobs.MAILBOX:
                self.run_job(jobs.CATCH_UP)
        metrics.CYCLE_SECONDS.observe(time.monotonic() - began)
        metrics.SUSPENDED.set(sum(1 for r in status.raw(self.store).values() if r["suspended"]))
        self.totals.cycles += 1

    def _may_run(self, row: dict[str, Any] | None, now: datetime) -> bool:
        if row is None:
            return True
        if row["suspended"]:
            return False
        until = row.get("backoff_until")
        return not until or datetime.fromisoformat(str(until)) <= now

    # --- the loop -------------------------------------------------------------

    def run(self, cycles: int | None = None) -> Totals:
        """``cycles`` full cycles back to back, or (None) forever on the intervals."""
        if cycles is not None:
            for _ in range(cycles):
                if self.stop.is_set():
                    break
                self.cycle()
            return self.totals
        self.cycle()  # everything once at start, then each on its own clock
        now = self.clock()
        for m in self.mailboxes:
            self.due[m] = self.policy.next_due(now, self.rng)
        self.due[jobs.SALESFORCE] = self.policy.next_due(now, self.rng)
        while not self.stop.is_set():
            ran = self._due_jobs()
            if not ran:
                self.stop.wait(self.tick)
        return self.totals

    def _due_jobs(self) -> int:
        now = self.clock()
        rows = status.raw(self.store)
        wanted = set(status.take_requests(self.store))
        ran = 0
        dirty = False
        for m in self.mailboxes:
            if self.stop.is_set():
                break
            if (m in wanted or self.due.get(m, now) <= now) and self._may_run(rows.get(m), now):
                rec = self.run_job(jobs.MAILBOX, m)
                self.due[m] = self.policy.next_due(self.clock(), self.rng)
                dirty = dirty or rec.observed > 0
                ran += 1
        if not self.stop.is_set() and self.due.get(jobs.SALESFORCE, now) <= now \
                and self._may_run(rows.get(jobs.SALESFORCE), now):
            rec = self.run_job(jobs.SALESFORCE)
            self.due[jobs.SALESFORCE] = self.clock() + timedelta(
                seconds=self.policy.salesforce_interval)
            dirty = dirty or rec.observed > 0
            ran += 1
        if dirty and not self.stop.is_set():
            self.run_job(jobs.SALESFORCE_WRITES)
        if ran:
            self.run_job(jobs.CATCH_UP)
        return ran
