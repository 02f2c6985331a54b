"""``syncledger sync`` and ``syncledger config check``: the live adapters' commands.

``sync --sandbox`` needs no credentials: it starts the local Graph and
Salesforce emulators seeded with the demo org, points the production clients
at them, runs one cycle and stops them. The emulated cloud is saved next to
the ledger after every write the emulators answer (atomically: a killed sync
leaves cloud and ledger consistent), so the next ``sync --sandbox`` against the
same ledger continues where the last one stopped (and, with no outside change,
writes nothing).
Steps go to stderr, the report to stdout.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import requests

from adapters.cli import render
from adapters.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    command,
    emit_json,
    erase_sqlite,
    ledger_url,
    open_store,
)
from adapters.cli.sandbox_state import SANDBOX_DB, SavedCloud, cloud_state_beside
from adapters.files import owner_only
from adapters.sync.config import ConfigError, SyncConfig, describe, load
from ledger.store import Store, drop_postgres_schema


def _sync_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sandbox", action="store_true",
                   help="sync the demo org through local emulators of Graph and Salesforce "
                        f"(no credentials; default ledger {SANDBOX_DB})")
    p.add_argument("--config", metavar="FILE",
                   help="TOML config file (default $SYNCLEDGER_CONFIG); secrets come from "
                        "the environment")
    p.add_argument("--record", type=Path, metavar="FILE",
                   help="append every observation to FILE in feed format (re-ingest it "
                        "with 'syncledger ingest')")
    p.add_argument("--cloud-state", type=Path, metavar="FILE",
                   help="with --sandbox: where the emulated cloud is kept between runs "
                        "(default: next to the ledger, <db>.cloud.json)")
    p.add_argument("--fresh", action="store_true",
                   help="with --sandbox: start from an empty ledger and a new cloud")
    p.add_argument("--dry-run", action="store_true",
                   help="read and record both calendars, then print the writes a cycle would "
                        "carry out (and what the mass-change guard would hold); write nothing")
    p.add_argument("--allow-mass-change", action="store_true",
                   help="let writes the mass-change guard would hold through, this once")
    p.add_argument("--json", action="store_true", help="print the report as JSON")


def _step(text: str) -> None:
    print(f"sync: {text}", file=sys.stderr, flush=True)


@command("sync", "pull both calendars, record, and write what the plan calls for (one cycle); "
         "exit 1 when a write failed, 0 when writes were only refused by the API (refused "
         "writes become write-refused sync issues and are not retried until the item changes)",
         _sync_args)
def cmd_sync(args: argparse.Namespace) -> int:
    if args.sandbox:
        return _sync_sandbox(args)
    try:
        config = load(args.config)
    except ConfigError as exc:
        print("syncledger sync: the configuration is incomplete or wrong "
              "(see 'syncledger config check'):", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return EXIT_USAGE
    store = open_store(args, create=True)
    try:
        with _recording(args.record) as record:
            outcome = run_cycle(store, config, record=record, dry_run=args.dry_run,
                                allow_mass_change=args.allow_mass_change)
    finally:
        store.close()
    return _print(outcome, args.json)


def run_cycle(store: Store, config: SyncConfig, *, record: BinaryIO | None = None,
              clock: Callable[[], datetime] | None = None,
              saves: list[tuple[str, dict[str, Any]]] | None = None,
              sleep: Callable[[float], None] = time.sleep,
              on_step: Callable[[str], None] = _step, dry_run: bool = False,
              allow_mass_change: bool = False) -> dict[str, Any]:
    """One cycle with the production clients; the report, or the error that stopped it."""
    from adapters.graph.client import GraphClient, GraphError
    from adapters.salesforce.client import (
        RequestLimitExceeded,
        SalesforceAuthError,
        SalesforceClient,
    )
    from adapters.sync.cycle import SyncCycle, utcnow

    graph = GraphClient(config.graph, sleep=sleep, max_backoff=config.max_backoff_seconds)
    sf = SalesforceClient(config.salesforce, config.salesforce_marker_field, sleep=sleep,
                          max_backoff=config.max_backoff_seconds)
    cycle = SyncCycle(store, config, graph, sf, clock=clock or utcnow, record=record,
                      on_step=on_step, saves=saves, dry_run=dry_run,
                      allow_mass_change=allow_mass_change)
    began = time.monotonic()
    error = None
    try:
        cycle.run()
    except (GraphError, SalesforceAuthError, RequestLimitExceeded,
            requests.RequestException) as exc:
        error = f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # simple-salesforce's errors have no common base we import
        if type(exc).__module__.startswith(("simple_salesforce", "msal")):
            error = f"{type(exc).__name__}: {exc}"
        else:
            raise
    return {**cycle.report.as_dict(), "error": error, "dry_run": dry_run,
            "seconds": round(time.monotonic() - began, 2),
            "requests": {"graph": graph.requests_made, "graph_throttled": graph.throttled,
                         "salesforce_logins": sf.logins,
                         "salesforce_limited": sf.limited}}


def build_cycle(store: Store, config: SyncConfig, *, clock: Callable[[], datetime],
                sleep: Callable[[float], None] = time.sleep,
                on_step: Callable[[str], None] = _step, **options: Any) -> Any:
    """A ``SyncCycle`` with the production clients (reconciliation uses its parts)."""
    from adapters.graph.client import GraphClient
    from adapters.salesforce.client import SalesforceClient
    from adapters.sync.cycle import SyncCycle

    graph = GraphClient(config.graph, sleep=sleep, max_backoff=config.max_backoff_seconds)
    sf = SalesforceClient(config.salesforce, config.salesforce_marker_field, sleep=sleep,
                          max_backoff=config.max_backoff_seconds)
    return SyncCycle(store, config, graph, sf, clock=clock, on_step=on_step, **options)


#: What stops a live command: the clients' own errors (one line for the user).
def stopped_by(exc: BaseException) -> str | None:
    from adapters.graph.client import GraphError
    from adapters.salesforce.client import RequestLimitExceeded, SalesforceAuthError

    if isinstance(exc, (GraphError, SalesforceAuthError, RequestLimitExceeded,
                        requests.RequestException)) \
            or type(exc).__module__.startswith(("simple_salesforce", "msal")):
        return f"{type(exc).__name__}: {exc}"
    return None


@contextmanager
def live_session(args: argparse.Namespace
                 ) -> Iterator[tuple[Store, SyncConfig, Callable[[], datetime]]]:
    """The ledger, configuration and clock of a live command: ``--config`` or ``--sandbox``.

    With ``--sandbox`` the emulators run for the duration, resumed from and saved
    to the cloud state next to the ledger, as for ``sync --sandbox``. Raises
    ``ConfigError`` when a real org's configuration is incomplete.
    """
    if not getattr(args, "sandbox", False):
        config = load(getattr(args, "config", None))
        store = open_store(args, create=True)
        try:
            yield store, config, lambda: datetime.now(UTC)
        finally:
            store.close()
        return
    url = ledger_url(args, SANDBOX_DB)  # the one rule, as for sync --sandbox
    saved = SavedCloud(getattr(args, "cloud_state", None) or cloud_state_beside(url))
    with saved.cloud:
        store = open_store(args, create=True, default=SANDBOX_DB)
        try:
            yield store, saved.cloud.config(), saved.clock
        finally:
            store.close()
            saved.save()


@contextmanager
def _recording(path: Path | None) -> Iterator[BinaryIO | None]:
    if path is None:
        yield None
        return
    with open(path, "ab", opener=owner_only) as handle:
        yield handle


def _sync_sandbox(args: argparse.Namespace) -> int:
    url = ledger_url(args, SANDBOX_DB)  # the one rule: --db, $SYNCLEDGER_DB, the default
    state_file = args.cloud_state or cloud_state_beside(url)
    if state_file.is_dir():
        raise CliError(f"--cloud-state {state_file} is a folder; give a file", EXIT_USAGE)
    if args.fresh:  # both: the ledger and the cloud it synced with
        if url.kind == "postgresql":
            if not url.schema:
                raise CliError("--fresh on PostgreSQL needs ?schema=NAME in --db (it drops "
                               "that schema; the public schema is never dropped)", EXIT_USAGE)
            drop_postgres_schema(url)
        else:
            erase_sqlite(url)
        state_file.unlink(missing_ok=True)
    store = open_store(args, create=True, default=SANDBOX_DB)  # before any emulator starts
    try:
        saved = SavedCloud(state_file)
    except BaseException:
        store.close()
        raise
    if saved.resumed:
        _step(f"resuming the emulated cloud from {state_file}")
    cloud = saved.cloud
    with cloud:
        _step(f"emulators up: Graph {cloud.graph.url}, Salesforce {cloud.salesforce.url}")
        try:
            with _recording(args.record) as record:
                outcome = run_cycle(store, cloud.config(), record=record, clock=saved.clock,
                                    saves=cloud.take_saves(), dry_run=args.dry_run,
                                    allow_mass_change=args.allow_mass_change)
        finally:
            store.close()
        outcome["ledger"] = str(url)
        outcome["emulator_writes"] = cloud.writes()
        cloud.saves_recorded()
        saved.save()
    _step("emulators stopped")
    return _print(outcome, args.json)


def _print(outcome: dict[str, Any], as_json: bool) -> int:
    # A held mailbox is a plan not carried out: exit 1, like a failed write.
    status = EXIT_FAILED if outcome["error"] or outcome["failures"] or outcome.get("held") \
        else EXIT_OK
    if as_json:
        emit_json(outcome)
        return status
    obs = outcome["observed"]
    print(f"Sync cycle: {outcome['seconds']} s, {outcome['rounds']} plan round(s)")
    if outcome.get("ledger"):
        print(f"Ledger: {outcome['ledger']}")
    print(f"observed   {obs['graph']} Graph item(s), {obs['salesforce']} Salesforce event(s), "
          f"{obs['salesforce_deleted']} Salesforce deletion(s)")
    print(f"recorded   {outcome['events_appended']} event(s) appended, "
          f"{outcome['duplicates_skipped']} duplicate(s) skipped, "
          f"{outcome['quarantined']} quarantined")
    req = outcome["requests"]
    print(f"requests   {req['graph']} to Graph ({req['graph_throttled']} throttled), "
          f"{req['salesforce_logins']} Salesforce login(s), "
          f"{req['salesforce_limited']} request-limit refusal(s)")
    if outcome["resyncs"]:
        print(f"resynced   {', '.join(outcome['resyncs'])} (delta token expired: full sync)")
    for mailbox, reason in sorted(outcome.get("held", {}).items()):
        print(f"HELD       {mailbox}: {reason}; nothing written for it "
              f"(syncledger approve {mailbox}, or --allow-mass-change)")
    if outcome.get("planned") or outcome.get("dry_run"):
        planned = outcome["planned"]
        print(f"\nPLAN, NOT CARRIED OUT (--dry-run) ({len(planned)})")
        print(render.table(planned, ["target", "op", "mailbox", "id", "reason"])
              if planned else "  (none)")
    if outcome.get("withheld"):
        print(f"\nHELD BACK ({len(outcome['withheld'])})")
        print(render.table(outcome["withheld"], ["target", "op", "mailbox", "id", "reason"]))
    writes = outcome["writes"]
    print(f"\nWRITES ({len(writes)})")
    print(render.table(writes, ["target", "op", "id", "reason"]) if writes else "  (none)")
    if "emulator_writes" in outcome:
        log = outcome["emulator_writes"]
        print(f"\nEMULATOR WRITE LOG ({len(log)})")
        for w in log:
            print(f"  {w['api']:<10} {w['method']:<6} {w['path']}  "
                  f"{render.cell(w['body'], 90)}")
        if not log:
            print("  (none)")
    for retried in outcome["recovered"]:
        print(f"retried:   {retried} (done in a later round)", file=sys.stderr)
    refused = outcome.get("refused_writes") or []
    if refused:
        # Not a failure of the sync: each is a sync issue (rule write-refused) on its
        # meeting, and is sent again only once the item changes.
        print(f"refused writes: {len(refused)} (the API refused them; not retried until the "
              "item changes; see 'syncledger issues --kind write-refused')", file=sys.stderr)
        for one in refused:
            print(f"refused: {one}", file=sys.stderr)
    for failure in outcome["failures"]:
        print(f"failed: {failure}", file=sys.stderr)
    if outcome["error"]:
        print(f"syncledger sync: stopped: {outcome['error']}", file=sys.stderr)
    return status


# --- config check ---------------------------------------------------------------


def _config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["check"], help="check: validate the live-sync config")
    p.add_argument("--config", metavar="FILE",
                   help="TOML config file (default $SYNCLEDGER_CONFIG)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


@command("config", "check the live-sync configuration (never prints secrets)", _config_args)
def cmd_config(args: argparse.Namespace) -> int:
    try:
        config = load(args.config)
    except ConfigError as exc:
        if args.json:
            emit_json({"complete": False, "problems": exc.problems})
        else:
            print("The live-sync configuration is incomplete or wrong:")
            for problem in exc.problems:
                print(f"  - {problem}")
        print(f"syncledger config: the configuration is incomplete "
              f"({len(exc.problems)} problem(s))", file=sys.stderr)
        return EXIT_USAGE
    shown = describe(config)
    if args.json:
        emit_json({"complete": True, "config": shown})
        return EXIT_OK
    print("The live-sync configuration is complete (secrets are set; values not shown):")
    for section, values in shown.items():
        print(f"\n[{section}]")
        for key, value in values.items():
            print(f"  {key:<18} {render.cell(value, 80)}")
    return EXIT_OK
