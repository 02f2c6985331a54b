"""When a job runs again, and what one job's end does to status and metrics.

Shared by ``syncledger run`` (the in-process scheduler) and ``syncledger worker``
(procrastinate): a mailbox is pulled every ``interval`` seconds (plus up to
``jitter`` of it, so 2,000 mailboxes do not all hit Graph in the same second);
after a failure it waits ``backoff_base * 2**(failures-1)`` seconds (capped at
``backoff_max``); after ``max_failures`` failures in a row it is suspended and
shows as an org-level issue in ``syncledger status`` until ``syncledger
status --resume MAILBOX`` (Revenue Grid disables a user after 6 rejected
attempts; 6 is our default too). The suspension and the resume are also
recorded in the ledger (``sync.suspension`` observations), so ``syncledger
issues`` lists the suspended mailbox as an org-level ``mailbox-suspended``
issue and its history survives the status table (operational state).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from adapters.feed.ingest import record_note
from adapters.service import metrics
from adapters.sync import jobs
from ledger.store import Store
from projections import runner, status


@dataclass(frozen=True)
class Policy:
    interval: float = 300.0
    jitter: float = 0.1  # a fraction of the interval
    salesforce_interval: float = 300.0
    backoff_base: float = 60.0
    backoff_max: float = 3600.0
    max_failures: int = 6

    def next_due(self, now: datetime, rng: random.Random) -> datetime:
        return now + timedelta(seconds=self.interval * (1 + self.jitter * rng.random()))

    def backoff(self, failures: int) -> float:
        return float(min(self.backoff_max, self.backoff_base * 2 ** max(0, failures - 1)))


def key_of(kind: str, mailbox: str | None) -> str:
    return mailbox.lower() if kind == jobs.MAILBOX and mailbox else kind


def finish(store: Store, result: jobs.JobResult, started: datetime, ended: datetime,
           policy: Policy, previous: dict[str, Any] | None) -> status.JobRecord:
    """Record a finished job in the status read model and the metrics; returns the record.

    A job whose pull went through but some of whose writes failed counts as a
    success for back-off (the writes are retried by the outbox, and parked
    after three tries, which status shows); an ``error`` (the API refused or
    was unreachable) counts as a failure.
    """
    failed = result.error is not None
    failures = (int(previous.get("failures") or 0) + 1) if failed and previous else int(failed)
    suspended = failed and failures >= policy.max_failures
    backoff_until = (ended + timedelta(seconds=policy.backoff(failures))).isoformat() \
        if failed else None
    report = result.report
    record = status.JobRecord(
        key=key_of(result.kind, result.mailbox), kind=result.kind,
        started=started.isoformat(), ended=ended.isoformat(), ok=not failed,
        error=result.error or (next(iter(report.failed.values()), None)
                               if report.failed else None),
        seconds=result.seconds, observed=sum(report.observed.values()),
        writes=len(report.writes), failures=failures, backoff_until=backoff_until,
        suspended=suspended)
    status.record(store, record)
    if suspended and not (previous or {}).get("suspended") and result.mailbox:
        record_note(store, "sync.suspension", ended.isoformat(),
                    {"action": "suspended",
                     "reason": f"{failures} failed pulls in a row, the last: {record.error}"},
                    mailbox=key_of(result.kind, result.mailbox), source="service")
    metrics.JOBS.labels(kind=result.kind, outcome=result.outcome).inc()
    metrics.JOB_SECONDS.labels(kind=result.kind).observe(result.seconds)
    for write in report.writes:
        metrics.WRITES.labels(target=write["target"], op=write["op"]).inc()
    for text in report.failed.values():
        metrics.WRITE_FAILURES.labels(target=text.split(" ", 1)[0]).inc()
    if result.kind == jobs.CATCH_UP:
        metrics.CATCH_UP_LAG.set(catch_up_lag(store))
    return record


def resume(store: Store, mailbox: str, at: str,
           reason: str = "resumed by an administrator") -> bool:
    """``syncledger status --resume``: pull the mailbox again from the next tick, and
    resolve its ``mailbox-suspended`` issue; False when it has no status yet."""
    if not status.resume(store, mailbox, at):
        return False
    record_note(store, "sync.suspension", at, {"action": "resumed", "reason": reason},
                mailbox=mailbox, source="status --resume")
    return True


def catch_up_lag(store: Store) -> int:
    """Events the slowest projection has yet to apply."""
    positions = runner.positions(store)
    head = store.max_position()
    return max(0, head - min(positions.values(), default=0))


def connect(config: Any, **kwargs: Any) -> jobs.Clients:
    """The production clients, with every HTTP answer counted in the metrics."""
    clients = jobs.Clients.connect(config, **kwargs)
    metrics.count_calls(clients.graph.session, "graph")
    metrics.count_calls(clients.salesforce.session, "salesforce")
    return clients
