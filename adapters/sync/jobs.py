"""The sync cycle as jobs: what the service schedules, one unit of work each.

``syncledger sync`` runs the whole cycle in one go (``SyncCycle.run``); the
service (``syncledger run`` and ``syncledger worker``) runs these instead, each
on its own schedule and under its own lock:

* ``mailbox`` - one mailbox's Graph delta pull, its explicit saves, then the
  Exchange writes the plan holds for that mailbox (one job per mailbox at a time);
* ``salesforce`` - the org settings, then the org-wide Salesforce pull
  (SystemModstamp + getDeleted; single-flight);
* ``salesforce-writes`` - an incremental Salesforce pull, then the Salesforce
  writes the plan holds (single-flight, under the same lock as the pull, since
  both speak for the whole org);
* ``catch-up`` - every projection caught up with the log (single-flight).

Each job is idempotent and safe to re-run after a crash: a delta page or a
Salesforce page commits with its checkpoint, a write goes through the outbox
(a create whose answer was lost is found by its marker before it is sent
again), and a projection batch commits with its tracking position.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, BinaryIO

import requests

from adapters.graph.client import GraphClient, GraphError
from adapters.salesforce.client import (
    RequestLimitExceeded,
    SalesforceAuthError,
    SalesforceClient,
)
from adapters.sync.config import SyncConfig
from adapters.sync.cycle import SyncCycle, SyncReport, utcnow
from ledger.store import Store
from projections import runner

MAILBOX = "mailbox"
SALESFORCE = "salesforce"
SALESFORCE_WRITES = "salesforce-writes"
CATCH_UP = "catch-up"
KINDS = (MAILBOX, SALESFORCE, SALESFORCE_WRITES, CATCH_UP)


@dataclass
class JobResult:
    """What one job did: its report, the error that stopped it, how long it took."""

    kind: str
    mailbox: str | None
    report: SyncReport
    error: str | None = None
    seconds: float = 0.0
    #: events the catch-up applied (max over the projections); 0 for the other kinds
    caught_up: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None and not self.report.failed

    @property
    def outcome(self) -> str:
        """``ok`` | ``write-failed`` (some writes failed, the pull went through) | ``error``."""
        if self.error is not None:
            return "error"
        return "write-failed" if self.report.failed else "ok"


@dataclass
class Clients:
    """The production clients of one process, shared by its jobs (tokens are cached)."""

    config: SyncConfig
    graph: GraphClient
    salesforce: SalesforceClient

    @classmethod
    def connect(cls, config: SyncConfig, *, sleep: Callable[[float], None] = time.sleep
                ) -> Clients:
        graph = GraphClient(config.graph, sleep=sleep, max_backoff=config.max_backoff_seconds)
        sf = SalesforceClient(config.salesforce, config.salesforce_marker_field, sleep=sleep,
                              max_backoff=config.max_backoff_seconds)
        return cls(config, graph, sf)


#: Errors of the outside world: they fail the job (and count for back-off), nothing else.
API_ERRORS: tuple[type[BaseException], ...] = (
    GraphError, SalesforceAuthError, RequestLimitExceeded, requests.RequestException)


def api_error(exc: BaseException) -> str | None:
    """The one-line text of an API failure, or None when ``exc`` is a bug to raise."""
    if isinstance(exc, API_ERRORS) or type(exc).__module__.startswith(
            ("simple_salesforce", "msal")):  # simple-salesforce's errors share no base
        return f"{type(exc).__name__}: {exc}"
    return None


def run_job(store: Store, clients: Clients, kind: str, mailbox: str | None = None, *,
            clock: Callable[[], datetime] = utcnow, record: BinaryIO | None = None,
            saves: list[tuple[str, dict[str, Any]]] | None = None,
            on_step: Callable[[str], None] = lambda step: None) -> JobResult:
    """Run one job; API failures end up in ``error``, bugs are raised."""
    if kind not in KINDS:
        raise ValueError(f"unknown job kind {kind!r}; known: {', '.join(KINDS)}")
    if kind == MAILBOX and not mailbox:
        raise ValueError("a mailbox job needs its mailbox")
    cycle = SyncCycle(store, clients.config, clients.graph, clients.salesforce, clock=clock,
                      record=record, on_step=on_step, saves=saves)
    result = JobResult(kind, mailbox if kind == MAILBOX else None, cycle.report)
    began = time.monotonic()
    try:
        if kind == MAILBOX:
            assert mailbox is not None
            on_step(f"graph {mailbox}")
            cycle.pull_graph(mailbox)
            cycle.record_saves(mailbox)
            cycle.write_rounds(target="exchange", mailbox=mailbox)
        elif kind == SALESFORCE:
            on_step("settings")
            cycle.apply_settings()
            on_step("salesforce")
            cycle.pull_salesforce()
        elif kind == SALESFORCE_WRITES:
            # A fresh pull first: a write must not be decided on an older view of
            # Salesforce than the one the pull job would give (it is incremental).
            cycle.pull_salesforce()
            cycle.write_rounds(target="salesforce")
        else:
            applied = runner.catch_up(store)
            result.caught_up = max(applied.values(), default=0)
    except Exception as exc:
        error = api_error(exc)
        if error is None:
            raise
        result.error = error
    result.seconds = time.monotonic() - began
    return result


def apply_settings(store: Store, clients: Clients, *,
                   clock: Callable[[], datetime] = utcnow) -> None:
    """Record the configured org settings before the first pulls decide anything."""
    SyncCycle(store, clients.config, clients.graph, clients.salesforce,
              clock=clock).apply_settings()


def cycle_jobs(mailboxes: tuple[str, ...] | list[str]) -> list[tuple[str, str | None]]:
    """One cycle as jobs, in the order a single process runs them.

    The mailboxes go first and the Salesforce pull after them, as in
    ``syncledger sync`` (pulling Salesforce first made the ledger plan series
    creates a plain cycle does not: the decision depends on which side of a
    meeting it saw first, see the README's service section). The Salesforce
    writes follow the pulls; the Exchange writes the Salesforce pull calls for
    go out in the next cycle's mailbox jobs.
    """
    return [*((MAILBOX, m) for m in mailboxes), (SALESFORCE, None),
            (SALESFORCE_WRITES, None), (CATCH_UP, None)]
