"""Prometheus metrics of the sync service, in one registry of their own.

``run`` and ``worker`` serve them on ``--metrics-port`` (:func:`serve`); the web
app (``syncledger serve``) can answer ``/metrics`` with :func:`latest`::

    from adapters.service import metrics
    body, content_type = metrics.latest()

What is measured: jobs by kind and outcome, job and cycle durations, writes by
target and op, API calls by API and HTTP status (:func:`count_calls` hooks a
client's ``requests.Session``), and the catch-up lag in events (log head minus
the slowest projection's position).
"""

from __future__ import annotations

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


def count_calls(session: requests.Session, api: str) -> None:
    """Count every response of this session in ``syncledger_api_calls{api, status}``."""
    def hook(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        API_CALLS.labels(api=api, status=str(response.status_code)).inc()

    session.hooks["response"].append(hook)


def latest() -> tuple[bytes, str]:
    """The metrics page (Prometheus text format) and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def serve(port: int, addr: str = "127.0.0.1") -> Any:
    """Serve ``/metrics`` on ``addr:port`` from a daemon thread; returns the server."""
    server, _thread = start_http_server(port, addr=addr, registry=REGISTRY)
    return server
