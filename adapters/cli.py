"""``syncledger``: the command line. Thin: parse arguments, call one job, print.

Every command takes ``--db`` (a SQLite path, ``sqlite:///PATH`` or
``postgresql://USER@HOST:PORT/DB?schema=NAME``; default ``$SYNCLEDGER_DB`` or
``./syncledger.db``). Commands that print records take ``--json`` for
scripts. Exit status: 0 fine, 1 failed, 2 bad usage, 3 input was quarantined,
4 not found.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

from adapters import render
from ledger.store import Store, StoreURL, StoreURLError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_QUARANTINED, EXIT_NOT_FOUND = 0, 1, 2, 3, 4

Handler = Callable[[argparse.Namespace], int]
COMMANDS: dict[str, tuple[Handler, Callable[[argparse.ArgumentParser], None], str]] = {}


def command(name: str, help_text: str,
            arguments: Callable[[argparse.ArgumentParser], None] = lambda p: None
            ) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        COMMANDS[name] = (fn, arguments, help_text)
        return fn
    return register


def emit_json(value: Any) -> None:
    sys.stdout.buffer.write(orjson.dumps(value, option=orjson.OPT_INDENT_2) + b"\n")


class NoLedger(LookupError):
    """A read command pointed at a SQLite file that does not exist."""


class StoreUnavailable(RuntimeError):
    """The store exists on paper but cannot be opened (server down, no permission)."""


def open_store(args: argparse.Namespace, *, create: bool = False) -> Store:
    """The ledger named by ``--db``. Only commands that record (``create``) may start one:
    a query against a mistyped path must say so, not answer from a new empty file."""
    url = StoreURL.parse(args.db)
    if not create and url.kind == "sqlite" and url.path != ":memory:" \
            and not os.path.exists(url.path):
        raise NoLedger(f"no ledger at {url.path} (give --db, or set SYNCLEDGER_DB; "
                       "'syncledger ingest' or 'syncledger demo' create one)")
    try:
        return Store(url)
    except Exception as exc:  # the driver's own error types: psycopg, sqlite3, the library
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StoreUnavailable(f"cannot open the ledger at {url}: {reason}") from exc


# --- ingest / quarantine / demo ------------------------------------------------


def _ingest_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+", type=Path, metavar="FILE",
                   help="JSON Lines feed files (DOMAIN.md §6), ingested in order")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--batch-size", type=int, default=2000,
                   help="observations per transaction (default 2000; one fsync each)")
    p.add_argument("--reader", choices=("auto", "process", "inline"), default="auto",
                   help="where feed lines are decoded: 'process' = a second process, so "
                        "decoding and deciding run on two cores; 'inline' = in this one; "
                        "'auto' (default) = a second process for files of 8 MB or more on a "
                        "machine with two cores or more")


@command("ingest", "record a feed of raw observations in the ledger", _ingest_args)
def cmd_ingest(args: argparse.Namespace) -> int:
    from adapters.jobs import ingest_files, summary_lines

    missing = [str(f) for f in args.files if not f.is_file()]
    if missing:
        print(f"syncledger ingest: no such file: {', '.join(missing)}", file=sys.stderr)
        return EXIT_USAGE
    store = open_store(args, create=True)
    try:
        result = ingest_files(store, args.files, batch_size=args.batch_size,
                              in_child={"auto": None, "process": True,
                                        "inline": False}[args.reader])
    finally:
        store.close()
    if args.json:
        emit_json(result.as_dict())
    else:
        print("\n".join(summary_lines(result)))
        for err in result.errors[:20]:
            print(f"quarantined: {err}", file=sys.stderr)
        if len(result.errors) > 20:
            print(f"... and {len(result.errors) - 20} more: see 'syncledger quarantine'",
                  file=sys.stderr)
    return EXIT_QUARANTINED if result.quarantined else EXIT_OK


def _json_only(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON for scripts")


@command("quarantine", "list observations that could not be recorded, with the reason",
         _json_only)
def cmd_quarantine(args: argparse.Namespace) -> int:
    store = open_store(args)
    try:
        rows = store.quarantined()
    finally:
        store.close()
    if args.json:
        emit_json(rows)
    else:
        print(render.table(rows, ["id", "source", "line_no", "item_id", "field", "error"])
              if rows else "nothing is quarantined")
    return EXIT_OK


def _demo_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--fresh", action="store_true",
                   help="delete the SQLite ledger file first (default for the demo file)")


@command("demo", "ingest the bundled sandbox org into a SQLite ledger and show the outcome",
         _demo_args)
def cmd_demo(args: argparse.Namespace) -> int:
    from adapters import demo

    if args.db is None:
        args.db = "syncledger-demo.db"
        args.fresh = True
    return demo.run(args.db, fresh=args.fresh, as_json=args.json)


# --- entry point ---------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="syncledger",
        description="Event-sourced ledger of Exchange / Office 365 <-> Salesforce calendar "
                    "sync: record every observed change, explain every outcome.",
        epilog="Start with 'syncledger demo'. Exit status: 0 ok, 1 failed, 2 bad usage, "
               "3 input quarantined, 4 not found.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", default=None, metavar="URL",
                        help="ledger store: SQLite path or sqlite:///PATH, or postgresql://"
                             "USER@HOST:PORT/DB?schema=NAME (default: $SYNCLEDGER_DB or "
                             "./syncledger.db)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _load_command_modules()
    for name, (_fn, arguments, help_text) in COMMANDS.items():
        p = sub.add_parser(name, parents=[common], help=help_text, description=help_text)
        arguments(p)
    return parser


def _load_command_modules() -> None:
    """Commands defined next to their jobs register themselves on import."""
    import importlib

    for module in ("adapters.query_cli", "adapters.debug_cli", "adapters.sync_cli"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = COMMANDS[args.command][0]
    try:
        return handler(args)
    except StoreURLError as exc:
        print(f"syncledger {args.command}: --db {exc}", file=sys.stderr)
        return EXIT_USAGE
    except NoLedger as exc:
        print(f"syncledger {args.command}: {exc}", file=sys.stderr)
        return EXIT_NOT_FOUND
    except StoreUnavailable as exc:
        print(f"syncledger {args.command}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"syncledger {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
