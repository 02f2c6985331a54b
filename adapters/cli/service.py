"""``syncledger run``, ``worker``, ``schedule`` and ``status``: the sync as a service.

``run`` is the embedded default: one process, SQLite or PostgreSQL, its own
scheduler (``adapters/service/scheduler.py``). ``worker`` runs the same jobs
from a procrastinate queue in the ledger's PostgreSQL schema, as many
processes as wanted (``adapters/service/worker.py``); ``schedule`` queues one
cycle for them. ``status`` reads the per-mailbox status read model.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from typing import Any

from adapters.cli import render
from adapters.cli.common import (
    EXIT_FAILED,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_USAGE,
    command,
    emit_json,
    ledger_url,
    open_store,
)
from adapters.cli.sandbox_state import SANDBOX_DB, SavedCloud, cloud_state_beside
from adapters.sync.config import ConfigError, SyncConfig, load
from ledger.store import StoreURL
from projections import status


def _policy_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE",
                   help="TOML config file (default $SYNCLEDGER_CONFIG); secrets come from "
                        "the environment")
    p.add_argument("--interval", type=float, default=300.0, metavar="SECONDS",
                   help="how often each mailbox is pulled (default 300)")
    p.add_argument("--jitter", type=float, default=0.1, metavar="FRACTION",
                   help="up to this share of the interval is added per mailbox (default 0.1)")
    p.add_argument("--salesforce-interval", type=float, default=300.0, metavar="SECONDS",
                   help="how often Salesforce is pulled (default 300)")
    p.add_argument("--backoff", type=float, default=60.0, metavar="SECONDS",
                   help="first wait after a failed job, doubled at each failure (default 60)")
    p.add_argument("--max-failures", type=int, default=6, metavar="N",
                   help="failures in a row after which a mailbox is suspended (default 6)")
    p.add_argument("--metrics-port", type=int, metavar="PORT",
                   help="serve Prometheus metrics on 127.0.0.1:PORT/metrics")
    p.add_argument("--log-format", choices=["auto", "text", "json"], default="auto",
                   help="a progress line on a terminal, JSON lines otherwise (default auto)")


def _policy(args: argparse.Namespace) -> Any:
    from adapters.service.policy import Policy

    return Policy(interval=args.interval, jitter=args.jitter,
                  salesforce_interval=args.salesforce_interval, backoff_base=args.backoff,
                  max_failures=args.max_failures)


def _config(args: argparse.Namespace, name: str) -> SyncConfig | None:
    try:
        return load(args.config)
    except ConfigError as exc:
        print(f"syncledger {name}: the configuration is incomplete "
              "(see 'syncledger config check'):", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return None


def _metrics(args: argparse.Namespace) -> None:
    if args.metrics_port is not None:
        from adapters.service import metrics

        metrics.serve(args.metrics_port)


# --- run -----------------------------------------------------------------------


def _run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sandbox", action="store_true",
                   help="run against local emulators of the demo org (no credentials; "
                        f"default ledger {SANDBOX_DB}, cloud kept in <db>.cloud.json)")
    p.add_argument("--cycles", type=int, metavar="N",
                   help="run N full cycles back to back, then stop (default: run until "
                        "SIGTERM / SIGINT, each job on its interval)")
    _policy_args(p)


@command("run", "run the sync unattended in one process: every mailbox on its interval, "
                "back-off, status (SQLite or PostgreSQL)", _run_args)
def cmd_run(args: argparse.Namespace) -> int:
    from adapters.service.scheduler import Log, Scheduler

    if args.cycles is not None and args.cycles < 1:
        print("syncledger run: --cycles must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    log = Log(args.log_format)
    if args.sandbox:
        return _run_sandbox(args, log)
    config = _config(args, "run")
    if config is None:
        return EXIT_USAGE
    store = open_store(args, create=True)
    try:
        _metrics(args)
        scheduler = Scheduler(store, config, policy=_policy(args), log=log)
        scheduler.install_signals()
        totals = scheduler.run(args.cycles)
    finally:
        store.close()
    log.note(f"stopped after {totals.jobs} job(s), {totals.failed} failed",
             jobs=totals.jobs, failed=totals.failed, writes=totals.writes)
    return EXIT_FAILED if totals.failed else EXIT_OK


def _run_sandbox(args: argparse.Namespace, log: Any) -> int:
    from adapters.service.scheduler import Scheduler

    url = ledger_url(args, SANDBOX_DB)  # the one rule: --db, $SYNCLEDGER_DB, the default
    store = open_store(args, create=True, default=SANDBOX_DB)  # before any emulator starts
    try:
        saved = SavedCloud(cloud_state_beside(url))
    except BaseException:
        store.close()
        raise
    with saved.cloud:
        try:
            _metrics(args)
            scheduler = Scheduler(store, saved.cloud.config(), policy=_policy(args), log=log,
                                  clock=saved.clock, saves=saved.cloud.take_saves)
            scheduler.install_signals()
            totals = scheduler.run(args.cycles)
        finally:
            store.close()
            saved.save()
    log.note(f"stopped after {totals.jobs} job(s), {totals.failed} failed; ledger {url}",
             jobs=totals.jobs, failed=totals.failed, writes=totals.writes)
    return EXIT_FAILED if totals.failed else EXIT_OK


# --- worker and schedule ------------------------------------------------------------


def _worker_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", default=f"worker-{os.getpid()}",
                   help="this worker's name in procrastinate (default worker-PID)")
    p.add_argument("--tick", type=int, default=10, metavar="SECONDS",
                   help="how often (1-59 s) due mailboxes are queued and stalled jobs "
                        "retried (default 10)")
    p.add_argument("--heartbeat", type=float, default=10.0, metavar="SECONDS",
                   help="how often this worker tells the queue it is alive (default 10)")
    p.add_argument("--stalled-after", type=float, default=30.0, metavar="SECONDS",
                   help="a worker silent this long is dead: its job is run again by another "
                        "(default 30)")
    p.add_argument("--job-history-hours", type=int, default=24, metavar="HOURS",
                   help="finished jobs stay in the queue's tables this long, failed ones 7 "
                        "times as long; an hourly task deletes older ones (default 24)")
    _policy_args(p)


def _pg_url(args: argparse.Namespace, name: str) -> StoreURL | None:
    url = StoreURL.parse(args.db)
    if url.kind != "postgresql":
        print(f"syncledger {name}: needs the ledger on PostgreSQL (--db postgresql://...); "
              "on SQLite use 'syncledger run'", file=sys.stderr)
        return None
    return url


@command("worker", "run sync jobs from the PostgreSQL queue (procrastinate); start as many "
                   "as needed, on any machine", _worker_args)
def cmd_worker(args: argparse.Namespace) -> int:
    from adapters.service import worker
    from adapters.sync import jobs

    url = _pg_url(args, "worker")
    config = _config(args, "worker")
    if url is None or config is None:
        return EXIT_USAGE
    if not 1 <= args.tick <= 59:
        print("syncledger worker: --tick must be between 1 and 59 seconds", file=sys.stderr)
        return EXIT_USAGE
    if args.job_history_hours < 0:
        print("syncledger worker: --job-history-hours must be 0 or more", file=sys.stderr)
        return EXIT_USAGE
    store = open_store(args, create=True)
    try:
        app = worker.make_app(url, tick_seconds=args.tick,
                              history_hours=args.job_history_hours)
        worker.ensure_schema(app, url)
        from adapters.service.scheduler import Log

        context = worker.Context(store, config, _policy(args), args.stalled_after,
                                 log=Log(args.log_format))
        worker.bind(context)
        # The org settings before any job: the tick queues every mailbox without a status
        # row at once, and a first pull decided before them (no product users) never
        # auto-saves its items (``schedule`` and ``run`` record them before each cycle).
        jobs.apply_settings(store, context.connected())
        _metrics(args)
        worker.run_worker(app, name=args.name, heartbeat=args.heartbeat,
                          stalled_after=args.stalled_after)
    finally:
        store.close()
    return EXIT_OK


def _schedule_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE",
                   help="TOML config file (default $SYNCLEDGER_CONFIG)")
    p.add_argument("--wait", type=float, metavar="SECONDS",
                   help="then wait (at most SECONDS) until the workers have run every job")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


@command("schedule", "queue one sync cycle (every mailbox, then Salesforce) for the workers",
         _schedule_args)
def cmd_schedule(args: argparse.Namespace) -> int:
    from adapters.service import worker

    url = _pg_url(args, "schedule")
    config = _config(args, "schedule")
    if url is None or config is None:
        return EXIT_USAGE
    store = open_store(args, create=True)
    try:
        app = worker.make_app(url)
        worker.ensure_schema(app, url)
        with app.open():
            result: dict[str, Any] = worker.defer_cycle(app, store, config)
        if args.wait is not None:
            result["idle"] = worker.wait_idle(url, timeout=args.wait)
    finally:
        store.close()
    if args.json:
        emit_json(result)
    else:
        print(f"queued {result['queued']} job(s); {result['already_waiting']} already "
              f"waiting or running; {result['suspended']} suspended mailbox(es) skipped")
        if "idle" in result:
            print("every job ran" if result["idle"] else "still busy when --wait ran out")
    return EXIT_OK if result.get("idle", True) else EXIT_FAILED


# --- status --------------------------------------------------------------------------


def _status_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mailbox", help="only this mailbox")
    p.add_argument("--config", metavar="FILE",
                   help="list the configured mailboxes too, before their first job")
    p.add_argument("--resume", metavar="MAILBOX",
                   help="lift a suspended mailbox's suspension and back-off")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")


#: The mailbox table's columns, named for a reader at 120 columns (``--json`` keeps the
#: read model's names: ``delta_token_age_seconds``, ``parked_writes``, ``items_synced``).
COLUMNS = ["mailbox", "last_success", "token_age", "failures", "backoff_until", "suspended",
           "parked", "synced", "last_error"]


@command("status", "per-mailbox sync status: last pull, token age, errors, back-off, "
                   "suspension, parked writes, items synced", _status_args)
def cmd_status(args: argparse.Namespace) -> int:
    from adapters.service.policy import resume

    mailboxes: tuple[str, ...] = ()
    if args.config or os.environ.get("SYNCLEDGER_CONFIG"):
        try:
            mailboxes = load(args.config).graph.mailboxes
        except ConfigError:
            mailboxes = ()  # status still answers from what the jobs recorded
    store = open_store(args)
    now = datetime.now(UTC)
    try:
        if args.resume and not resume(store, args.resume.lower(), now.isoformat()):
            print(f"syncledger status: no status for mailbox {args.resume}", file=sys.stderr)
            return EXIT_NOT_FOUND
        rows = status.rows(store, now=now, mailbox=args.mailbox, mailboxes=mailboxes)
    finally:
        store.close()
    if args.mailbox and not rows:
        print(f"syncledger status: no status for mailbox {args.mailbox}", file=sys.stderr)
        return EXIT_NOT_FOUND
    if args.json:
        emit_json(rows)
        return EXIT_OK
    boxes = [r for r in rows if r["kind"] == "mailbox"]
    org = [r for r in rows if r["kind"] != "mailbox"]
    print(f"MAILBOXES ({len(boxes)})")
    print(render.table([_short(r) for r in boxes], COLUMNS) if boxes else "  (none)")
    if org:
        print(f"\nORG JOBS ({len(org)})")
        print(render.table([_short(r) for r in org],
                           ["key", "last_success", "failures", "backoff_until", "jobs_ok",
                            "jobs_failed", "last_error"]))
    suspended = [r for r in rows if r["suspended"]]
    print(f"\nORG ISSUES ({len(suspended)})")
    for r in suspended:
        print(f"  sync-suspended: {r['key']} failed {r['failures']} times in a row "
              f"(last: {r['last_error']}); 'syncledger status --resume {r['key']}' "
              "after fixing it")
    if not suspended:
        print("  (none)")
    return EXIT_OK


def _short(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    out.update(mailbox=row["key"], token_age=render.duration(row.get("delta_token_age_seconds")),
               parked=row.get("parked_writes"), synced=row.get("items_synced"))
    for name in ("last_success", "backoff_until", "last_error_at"):
        if out.get(name):
            out[name] = str(out[name])[:19].replace("T", " ")
    if out.get("last_error"):
        out["last_error"] = render.cell(out["last_error"], 60)
    return out
