"""``syncledger reconcile``, ``apply PLAN_ID`` and ``approve MAILBOX``.

``reconcile`` reads both calendars as they are, records what it read, prints
the drift by class and a repair plan with an id; it writes nothing unless
``--apply`` is given. ``apply`` carries out a shown plan exactly as shown.
``approve`` lets a mailbox held by the mass-change guard through once.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from adapters.cli import render
from adapters.cli.common import (
    EXIT_FAILED,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_USAGE,
    command,
    emit_json,
    open_store,
)
from adapters.cli.sync import build_cycle, live_session, stopped_by
from adapters.progress import Progress
from adapters.sync.config import ConfigError


def _step(text: str) -> None:
    print(f"reconcile: {text}", file=sys.stderr, flush=True)


def _noted(bar: Progress) -> Callable[[str], None]:
    """Where a step is told: in the bar's note on a terminal (a line printed under a live
    bar would break it), else one stderr line each."""
    if not bar.enabled:
        return _step
    return lambda text: bar.update(bar.done, note=text)


def _live_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sandbox", action="store_true",
                   help="the demo org through the local emulators (as 'sync --sandbox'; "
                        "default ledger syncledger-sandbox.db)")
    p.add_argument("--config", metavar="FILE", help="TOML config file (as for 'sync')")
    p.add_argument("--cloud-state", metavar="FILE", type=_path,
                   help="with --sandbox: where the emulated cloud is kept between runs")
    p.add_argument("--allow-mass-change", action="store_true",
                   help="let a plan the mass-change guard would hold through, this once")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def _path(value: str) -> Any:
    from pathlib import Path

    return Path(value)


def _reconcile_args(p: argparse.ArgumentParser) -> None:
    _live_args(p)
    p.add_argument("--mailbox", action="append", metavar="EMAIL",
                   help="reconcile this mailbox (repeatable; default: every configured one)")
    p.add_argument("--window", metavar="BACK:AHEAD", default=None,
                   help="days before and after now to read (default: the sync's window, "
                        "e.g. 14:60)")
    p.add_argument("--apply", action="store_true",
                   help="carry out the plan right after showing it (default: propose only)")


def _window(text: str | None, back: int, ahead: int) -> tuple[int, int]:
    if text is None:
        return back, ahead
    left, sep, right = text.partition(":")
    if not sep or not left.isdigit() or not right.isdigit():
        raise ValueError(f"--window {text!r}: expected BACK:AHEAD in whole days, e.g. 14:60")
    return int(left), int(right)


@command("reconcile", "read both calendars as they are, report drift by class and propose "
                      "a repair plan (--apply carries it out)", _reconcile_args)
def cmd_reconcile(args: argparse.Namespace) -> int:
    from adapters.reconcile.job import Reconciliation, window
    from adapters.reconcile.plans import Plans, apply
    from adapters.sync.cycle import iso

    try:
        with live_session(args) as (store, config, clock):
            try:
                back, ahead = _window(args.window, config.graph.window_days_back,
                                      config.graph.window_days_ahead)
            except ValueError as exc:
                print(f"syncledger reconcile: {exc}", file=sys.stderr)
                return EXIT_USAGE
            mailboxes = [m.lower() for m in (args.mailbox or config.graph.mailboxes)]
            unknown = [m for m in mailboxes if m not in config.graph.mailboxes]
            if unknown:
                print(f"syncledger reconcile: --mailbox {unknown[0]} is not a configured "
                      f"mailbox ({', '.join(config.graph.mailboxes)})", file=sys.stderr)
                return EXIT_USAGE
            bar = Progress("reconcile", total=len(mailboxes), unit="mailboxes")
            step = _noted(bar)
            cycle = build_cycle(store, config, clock=clock, on_step=step)
            try:
                start, end = window(clock(), back, ahead)
                report = Reconciliation(cycle, on_step=step, on_mailbox=bar.update).run(
                    mailboxes, start, end)
                plans = Plans(store)
                plan = plans.propose(report, iso(clock()))
                outcome = apply(plan, plans, cycle, allow_mass_change=args.allow_mass_change) \
                    if args.apply else None
            except Exception as exc:
                reason = stopped_by(exc)
                if reason is None:
                    raise
                print(f"syncledger reconcile: stopped: {reason}", file=sys.stderr)
                return EXIT_FAILED
            finally:
                bar.close()
    except ConfigError as exc:
        return _config_problem("reconcile", exc)
    result = {**plan.as_dict(), "outcome": outcome}
    return _print(result, args.json)


def _config_problem(name: str, exc: ConfigError) -> int:
    print(f"syncledger {name}: the configuration is incomplete (see 'syncledger config "
          "check'):", file=sys.stderr)
    for problem in exc.problems:
        print(f"  - {problem}", file=sys.stderr)
    return EXIT_USAGE


def _print(result: dict[str, Any], as_json: bool) -> int:
    outcome = result.get("outcome")
    status = EXIT_FAILED if outcome and (outcome["failed"] or outcome["held"]) else EXIT_OK
    if as_json:
        emit_json(result)
        return status
    w = result["window"]
    print(f"Reconciliation {w['start']} .. {w['end']}: "
          + ", ".join(f"{m} ({n} item(s) read)" for m, n in sorted(result["reads"].items())))
    rows = result["drift"]
    print(f"\nDRIFT ({len(rows)})")
    print(render.table(rows, ["mailbox", "class", "exchange_id", "salesforce_id", "evidence",
                              "repair"]) if rows else "  (none)")
    writes = result["writes"]
    print(f"\nREPAIR PLAN {result['plan_id']} ({len(writes)} write(s))")
    print(render.table(writes, ["target", "op", "mailbox", "id", "reason"]) if writes
          else "  (nothing to do)")
    if outcome is None:
        if writes:
            print(f"\nNothing written. Review, then: syncledger apply {result['plan_id']} "
                  "(same --db / --sandbox / --config)")
        return status
    _print_outcome(outcome)
    return status


def _print_outcome(outcome: dict[str, Any]) -> None:
    for mailbox, reason in sorted(outcome["held"].items()):
        print(f"HELD {mailbox}: {reason}; nothing written (syncledger approve {mailbox}, "
              "or --allow-mass-change)", file=sys.stderr)
    if outcome.get("note"):
        print(outcome["note"])
    print(f"\nAPPLIED ({len(outcome['done'])})")
    print(render.table(outcome["done"], ["target", "op", "mailbox", "id", "reason"])
          if outcome["done"] else "  (none)")
    for stale in outcome["stale"]:
        print(f"stale, skipped: {stale['target']} {stale['op']} {stale['key']} (no longer "
              "planned: reconcile again)", file=sys.stderr)
    for failed in outcome["failed"]:
        print(f"failed: {failed['target']} {failed['op']} {failed['key']}: {failed['error']}",
              file=sys.stderr)


def _apply_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("plan_id", metavar="PLAN_ID", help="the id 'reconcile' printed")
    _live_args(p)


@command("apply", "carry out a repair plan that 'reconcile' showed, exactly as shown",
         _apply_args)
def cmd_apply(args: argparse.Namespace) -> int:
    from adapters.reconcile.plans import PlanNotFound, Plans, apply

    try:
        with live_session(args) as (store, config, clock):
            plans = Plans(store)
            try:
                plan = plans.get(args.plan_id)
            except PlanNotFound as exc:
                print(f"syncledger apply: {exc}", file=sys.stderr)
                return EXIT_NOT_FOUND
            cycle = build_cycle(store, config, clock=clock, on_step=_step)
            try:
                outcome = apply(plan, plans, cycle, allow_mass_change=args.allow_mass_change)
            except Exception as exc:
                reason = stopped_by(exc)
                if reason is None:
                    raise
                print(f"syncledger apply: stopped: {reason}", file=sys.stderr)
                return EXIT_FAILED
    except ConfigError as exc:
        return _config_problem("apply", exc)
    status = EXIT_FAILED if outcome["failed"] or outcome["held"] else EXIT_OK
    if args.json:
        emit_json({"plan_id": plan.id, **outcome})
        return status
    _print_outcome(outcome)
    return status


def _approve_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("mailbox", metavar="MAILBOX", help="the mailbox whose held writes may go")
    p.add_argument("--reason", default="approved by an administrator",
                   help="recorded with the approval")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


@command("approve", "let a mailbox the mass-change guard holds through, once (the next "
                    "sync or apply)", _approve_args)
def cmd_approve(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from adapters.feed.ingest import record_note

    mailbox = args.mailbox.strip().lower()
    if "@" not in mailbox:
        print(f"syncledger approve: {args.mailbox!r} is not a mailbox (an email address)",
              file=sys.stderr)
        return EXIT_USAGE
    store = open_store(args)
    try:
        safety = store.safety()
        held = safety.held.get(mailbox) if safety else None
        at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        record_note(store, "sync.guard", at, {"action": "approved", "reason": args.reason},
                    mailbox=mailbox, source="approve")
    finally:
        store.close()
    result = {"mailbox": mailbox, "was_held": held is not None, "held_because": held}
    if args.json:
        emit_json(result)
        return EXIT_OK
    if held:
        print(f"Approved {mailbox} once: the next sync or apply carries out its held writes "
              f"({held}).")
    else:
        print(f"Approved {mailbox} once; it is not held now, so the approval waits for the "
              "next time the guard would hold it.")
    return EXIT_OK
