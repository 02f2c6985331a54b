"""Read-model commands: mapping, conflicts, issues, plan, analytics, project, rebuild."""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Callable
from typing import Any

from adapters.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    command,
    emit_json,
    emit_rows,
    list_options,
    one_of,
    open_store,
)
from adapters.progress import Progress
from ledger.store import Store
from projections.sync_state import SYNC_STATES

COLUMNS = {
    "mapping": ["meeting_id", "mailbox", "exchange_id", "ical_uid", "occurrence_start",
                "salesforce_id"],
    "conflicts": ["meeting_id", "kind", "attendee", "organizer", "state", "detected_at",
                  "resolved_at"],
    "issues": ["meeting_id", "kind", "severity", "direction", "mailbox", "exchange_id",
               "salesforce_id", "message", "state", "outlook_category", "raised_at"],
    "plan": ["target", "op", "meeting_id", "mailbox", "id", "fields", "reason",
             "notify_attendees"],
    "analytics": ["meeting_id", "subject", "organizer", "organizer_is_user", "attendees_are_users",
                  "start", "recurrence", "sync_state", "open_issue_kinds", "what_id",
                  "related_users", "related_contacts", "related_leads",
                  "unresolved_attendees"],
}
#: Narrower columns for people; --json always carries every key.
SHOWN = {
    "mapping": ["mailbox", "exchange_id", "occurrence_start", "salesforce_id"],
    "conflicts": ["meeting_id", "attendee", "organizer", "state", "detected_at"],
    "issues": ["kind", "severity", "direction", "mailbox", "message", "state",
               "outlook_category"],
    "plan": ["target", "op", "mailbox", "id", "reason", "fields"],
    "analytics": ["meeting_id", "subject", "organizer", "start", "sync_state",
                  "open_issue_kinds", "related_contacts", "related_leads",
                  "unresolved_attendees"],
}
DAILY = ["day", "source", "kind", "mailbox", "count"]
KINDS = {
    "mapping": "Exchange item type: single, master, occurrence, exception",
    "conflicts": "conflict kind (attendee-before-organizer)",
    "issues": "rule id, e.g. private-item, unsupported-time-zone",
    "plan": "operation: create, update, delete, set-categories",
    "analytics": "with --daily: observation, issue or conflict kind",
}
#: The values each --kind filter knows (a typo is refused, not answered with "no rows").
#: Rule ids are also read from the ledger, so a rule added later is accepted too.
KNOWN_KINDS: dict[str, tuple[str, ...]] = {
    "mapping": ("single", "master", "occurrence", "exception"),
    "conflicts": ("attendee-before-organizer",),
    "issues": ("attendee-before-organizer", "lightning-recurrence", "organizer-not-user",
               "mailbox-suspended", "mass-change-guard",
               "private-item", "recurrence-conversion", "recurring-all-day",
               "series-master-overwrite", "series-master-update", "unsupported-time-zone",
               "waiting-for-dependency"),
    "plan": ("create", "update", "delete", "set-categories"),
}
#: The BI tables: --csv prints these.
CSV_VIEWS = frozenset({"analytics", "mapping"})


def _query_args(name: str) -> Callable[[argparse.ArgumentParser], None]:
    def add(p: argparse.ArgumentParser) -> None:
        p.add_argument("--mailbox", help="only rows of this mailbox (an email address)")
        p.add_argument("--kind", help=KINDS[name])
        if name in ("conflicts", "issues", "analytics"):
            choices = list(SYNC_STATES) if name == "analytics" else ["open", "resolved"]
            p.add_argument("--state", choices=choices, help="only rows in this state")
        if name == "analytics":
            p.add_argument("--daily", action="store_true",
                           help="daily counts of observations, issues and conflicts by kind "
                                "and mailbox instead (columns day, source, kind, mailbox, "
                                "count; --kind filters on kind)")
        list_options(p, csv=name in CSV_VIEWS)
        p.add_argument("--json", action="store_true",
                       help="an array of objects with snake_case keys, for scripts")
    return add


def _check_kind(name: str, kind: str | None, rows: list[dict[str, Any]], key: str) -> None:
    """Refuse a --kind nobody knows (close matches named); the ledger's own values count."""
    if kind is None:
        return
    known = {*KNOWN_KINDS.get(name, ()), *(str(r[key]) for r in rows if r.get(key))}
    if kind not in known:
        try:
            one_of(known, "kind")(kind)
        except argparse.ArgumentTypeError as exc:
            raise CliError(f"--kind: {exc}", EXIT_USAGE) from None


def _run_query(args: argparse.Namespace, name: str) -> int:
    from projections import queries

    daily = bool(getattr(args, "daily", False))
    shown, every = (DAILY, DAILY) if daily else (SHOWN[name], COLUMNS[name])
    if name == "analytics" and not daily and args.kind is not None:
        raise CliError("--kind applies to --daily only (meetings: --state)", EXIT_USAGE)
    store = open_store(args)
    try:
        _warn_if_stale(store, name)

        def read(kind: str | None) -> list[dict[str, Any]]:
            return queries.read_model(store, name, mailbox=args.mailbox, kind=kind,
                                      state=getattr(args, "state", None), daily=daily)

        rows = read(None)
        if args.kind is not None:
            _check_kind(name, args.kind, rows, "op" if name == "plan" else "kind")
            rows = read(args.kind)
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc
    finally:
        store.close()
    return emit_rows(args, rows, shown, every=every, noun=f"{name} rows")


def _warn_if_stale(store: Store, name: str) -> None:
    """A read-only ledger's read models cannot be caught up: say how far behind they are."""
    from projections import runner

    if store.url.read_only:
        view = "analytics" if name == "analytics" else name
        try:
            behind = runner.require_built(store, [view])
        except runner.NotBuilt as exc:
            raise CliError(str(exc), EXIT_FAILED) from exc
        if behind:
            print(f"syncledger {name}: read-only ledger: {name} shown as it stands, "
                  f"{behind:,} event(s) behind the log", file=sys.stderr)


def _register(name: str, help_text: str) -> None:
    command(name, help_text, _query_args(name))(lambda args: _run_query(args, name))


_register("mapping", "Exchange item <-> Salesforce Event ids, both ways")
_register("conflicts", "sync conflicts (an attendee saved before the organizer)")
_register("issues", "sync issues and skips, by rule id")
_register("plan", "pending writes to either calendar that follow from the ledger")
_register("analytics", "the BI tables: one row per meeting, or daily counts (--daily)")


def _unresolved_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--all", action="store_true",
                   help="also attendees related since (state resolved)")
    p.add_argument("--json", action="store_true",
                   help="an array of objects with snake_case keys, for scripts")


@command("unresolved", "attendees whose email matches no Salesforce User, Contact or Lead "
         "(meeting, email, since when); a later look-up that finds one relates them",
         _unresolved_args)
def cmd_unresolved(args: argparse.Namespace) -> int:
    from projections import queries

    store = open_store(args)
    try:
        rows = queries.unresolved(store, state=None if args.all else "open")
    finally:
        store.close()
    if args.json:
        emit_json(rows)
    elif rows:
        from adapters.cli import render

        print(render.table(rows, ["meeting_id", "email", "since", "state"]))
        print(f"\n{len(rows)} row(s); --json for every column")
    else:
        print("no unresolved attendees")
    return EXIT_OK


PARKED_SHOWN = ["kind", "item_id", "waits_for_kind", "waits_for_id", "since", "source",
                "line_no", "overdue"]


def _parked_args(p: argparse.ArgumentParser) -> None:
    list_options(p)
    p.add_argument("--json", action="store_true",
                   help="an array of objects with snake_case keys (item_id, kind, mailbox, "
                        "waits_for_kind, waits_for_id, waits_for, since, source, line_no, "
                        "overdue), for scripts")


@command("parked", "observations waiting for one not recorded yet (an occurrence for its "
         "series master, a save for its item, a deletion for its Event): what waits, for "
         "what, since when, from which line; taken again as soon as it arrives",
         _parked_args)
def cmd_parked(args: argparse.Namespace) -> int:
    from projections import queries

    store = open_store(args)
    try:
        rows = queries.parked(store)
    finally:
        store.close()
    return emit_rows(args, rows, PARKED_SHOWN, noun="parked observations")


def _project_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--follow", action="store_true",
                   help="keep catching up as events arrive (PostgreSQL: woken by NOTIFY; "
                        "SQLite: polls); stop with Ctrl-C")
    p.add_argument("--json", action="store_true", help="print events applied as JSON")


def _applied(args: argparse.Namespace, label: str,
             work: Callable[[Store, Callable[[int, int], None]], dict[str, int]]) -> int:
    """Run a catch-up or rebuild with a progress bar, then say what each projection applied."""
    from projections import runner

    store = open_store(args, writes=True)
    try:
        bar = Progress(label, total=store.max_position() or None)
        applied = work(store, lambda done, head: bar.update(done))
        bar.close()
        if getattr(args, "follow", False):
            stop = threading.Event()
            print("following the ledger; Ctrl-C stops", file=sys.stderr)
            try:
                runner.follow(store, stop, on_batch=lambda done: print(
                    ", ".join(f"{k} +{v}" for k, v in done.items()), file=sys.stderr))
            except KeyboardInterrupt:
                stop.set()
    except runner.UnknownProjection as exc:
        print(f"syncledger {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        store.close()
    if args.json:
        emit_json(applied)
    else:
        print(", ".join(f"{k}: {v:,} events applied" for k, v in applied.items()))
    return EXIT_OK


@command("project", "catch every projection up with the ledger", _project_args)
def cmd_project(args: argparse.Namespace) -> int:
    from projections import runner

    return _applied(args, "project",
                    lambda store, progress: runner.catch_up(store, progress=progress))


def _rebuild_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="?", help="one projection (mapping, conflicts, issues, plan, "
                                           "analytics); all when omitted")
    p.add_argument("--json", action="store_true", help="print events applied as JSON")


@command("rebuild", "drop a projection and replay the whole ledger into it", _rebuild_args)
def cmd_rebuild(args: argparse.Namespace) -> int:
    from projections import runner

    return _applied(args, f"rebuild {args.name or 'all'}",
                    lambda store, progress: runner.rebuild(store, args.name, progress=progress))
