"""Prometheus metrics of the sync service, in one registry of their own.

``run`` and ``worker`` serve them on ``--metrics-port`` (:func:`serve`); the web
app (``syncledger serve``) answers ``/metrics`` with :func:`latest`, given its
ledger, which adds gauges read from the read models at scrape time (open
issues, conflicts, pending writes and linked items by mailbox, parked writes,
suspended mailboxes, unresolved attendees, ledger position)::

    from adapters.service import metrics
    body, content_type = metrics.latest(store)

What is measured: jobs by kind and outcome, job and cycle durations, writes by
target and op, API calls by API and HTTP status (:func:`count_calls` hooks a
client's ``requests.Session``), the catch-up lag in events (log head minus
the slowest projection's position), and Graph change notifications received
by kind and outcome (``serve --notify-url``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import requests
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ledger.store import Store
from projections import queries, status

REGISTRY = CollectorRegistry(auto_describe=True)

JOBS = Counter("syncledger_jobs", "Sync jobs finished, by kind and outcome (ok, "
               "write-failed, error, skipped)", ["kind", "outcome"], registry=REGISTRY)
JOB_SECONDS = Histogram("syncledger_job_seconds", "Duration of one sync job", ["kind"],
                        registry=REGISTRY,
                        buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300))
CYCLE_SECONDS = Histogram("syncledger_cycle_seconds",
                          "Wall time of one full cycle (every mailbox pulled once)",
                          registry=REGISTRY,
                          buckets=(1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600))
WRITES = Counter("syncledger_writes", "Writes carried out, by target and op",
                 ["target", "op"], registry=REGISTRY)
WRITE_FAILURES = Counter("syncledger_write_failures", "Writes that failed, by target",
                         ["target"], registry=REGISTRY)
API_CALLS = Counter("syncledger_api_calls", "HTTP calls to Graph and Salesforce, by status",
                    ["api", "status"], registry=REGISTRY)
CATCH_UP_LAG = Gauge("syncledger_catch_up_lag_events",
                     "Events in the ledger the slowest projection has not applied yet",
                     registry=REGISTRY)
SUSPENDED = Gauge("syncledger_mailboxes_suspended", "Mailboxes suspended after repeated "
                  "failures", registry=REGISTRY)
NOTIFICATIONS = Counter("syncledger_notifications", "Graph change notifications received, by "
                        "kind (change, reauthorizationRequired, missed, subscriptionRemoved, "
                        "validation) and outcome (queued, refused, ignored, ok)",
                        ["kind", "outcome"], registry=REGISTRY)
SUBSCRIPTIONS = Gauge("syncledger_subscriptions", "Graph subscriptions this process keeps "
                      "alive", registry=REGISTRY)


def count_calls(session: requests.Session, api: str) -> None:
    """Count every response of this session in ``syncledger_api_calls{api, status}``."""
    def hook(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        API_CALLS.labels(api=api, status=str(response.status_code)).inc()

    session.hooks["response"].append(hook)


class ReadModels(Collector):
    """This process's metrics plus gauges read from one ledger's read models at scrape time
    (the suspended count from the status read model, so it is true in any process)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        own = {"syncledger_mailboxes_suspended"}
        for family in REGISTRY.collect():
            if family.name not in own:
                yield family
        data = queries.overview(self.store)
        for name, help_text in (("open_issues", "open sync issues"),
                                ("open_conflicts", "open sync conflicts"),
                                ("pending_writes", "writes the plan still holds"),
                                ("linked_items", "Exchange items linked to Salesforce")):
            g = GaugeMetricFamily(f"syncledger_{name}", help_text, labels=["mailbox"])
            for row in data["mailboxes"]:
                g.add_metric([row["mailbox"]], row[name])
            yield g
        rows = status.raw(self.store).values()
        yield GaugeMetricFamily("syncledger_mailboxes_suspended", "Mailboxes suspended after "
                                "repeated failures", value=sum(1 for r in rows if r["suspended"]))
        yield GaugeMetricFamily("syncledger_parked_writes", "Writes no longer retried (failed "
                                f"{status.PARKED_AFTER} times)",
                                value=sum(status.parked_writes(self.store).values()))
        yield GaugeMetricFamily("syncledger_unresolved_attendees", "Attendees matching no "
                                "Salesforce User, Contact or Lead",
                                value=data["totals"]["unresolved_attendees"])
        yield GaugeMetricFamily("syncledger_ledger_position", "Events in the ledger",
                                value=self.store.max_position())


def latest(store: Store | None = None) -> tuple[bytes, str]:
    """The metrics page (Prometheus text format) and its content type; with ``store``, the
    read models' gauges too."""
    if store is None:
        return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ReadModels(store))
    return generate_latest(registry), CONTENT_TYPE_LATEST


def serve(port: int, addr: str = "127.0.0.1") -> Any:
    """Serve ``/metrics`` on ``addr:port`` from a daemon thread; returns the server."""
    server, _thread = start_http_server(port, addr=addr, registry=REGISTRY)
    return server
