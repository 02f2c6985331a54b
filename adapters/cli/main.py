"""``syncledger``: the command line. Thin: parse arguments, call one job, print.

Every command takes ``--db`` (a SQLite path, ``sqlite:///PATH`` or
``postgresql://USER@HOST:PORT/DB?schema=NAME``), before or after the command name; without
it ``$SYNCLEDGER_DB``, else the command's default file (``common.ledger_location``).
Commands that print records take ``--json`` for scripts. Exit status: 0 fine, 1 failed,
2 bad usage, 3 input was quarantined, 4 not found. Every failure is one line on stderr
(``main`` turns every exception into one; ``SYNCLEDGER_DEBUG=1`` shows the traceback too).

Shell completion comes from ``argcomplete`` (kept, works on this argparse parser as it is:
a switch to click or typer would rewrite every command for the same result):
``eval "$(register-python-argcomplete syncledger)"``.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sqlite3
import sys
import traceback
from collections.abc import Sequence
from importlib import metadata
from typing import NoReturn

from adapters.cli import debug, demo, feed, query, reconcile, serve, service, sync
from adapters.cli.common import (
    COMMANDS,
    EXIT_FAILED,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_USAGE,
    Arguments,
    CliError,
    Handler,
    NoLedger,
    StoreUnavailable,
    root_reason,
)
from adapters.files import restrict_umask
from ledger.store import StoreURLError

EXIT_HELP = {0: "ok", 1: "failed", 2: "bad usage", 3: "input quarantined", 4: "not found"}


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``syncledger COMMAND: problem (see ... --help)``."""

    def error(self, message: str) -> NoReturn:
        if "invalid choice" in message and "argument COMMAND" in message:
            wrong = message.split("invalid choice: ", 1)[1].split(" ", 1)[0].strip("'\"")
            close = difflib.get_close_matches(wrong, list(COMMANDS), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            message = f"unknown command '{wrong}'{hint}"
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see '{self.prog} --help')\n")


def version() -> str:
    try:
        return metadata.version("syncledger")
    except metadata.PackageNotFoundError:  # run from a checkout without installing
        return "unknown"


def _db_option(p: argparse.ArgumentParser, default: object) -> None:
    p.add_argument("--db", default=default, metavar="URL",
                   help="ledger store: SQLite path or sqlite:///PATH, or postgresql://"
                        "USER@HOST:PORT/DB?schema=NAME (default: $SYNCLEDGER_DB, else the "
                        "command's default file, ./syncledger.db for most); before or after "
                        "the command")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="syncledger",
        description="Event-sourced ledger of Exchange / Office 365 <-> Salesforce calendar "
                    "sync: record every observed change, explain every outcome.",
        epilog="Start with 'syncledger demo'. Exit status: "
               + ", ".join(f"{k} {v}" for k, v in EXIT_HELP.items())
               + ". Shell completion: eval \"$(register-python-argcomplete syncledger)\".")
    parser.add_argument("--version", action="version", version=f"syncledger {version()}")
    _db_option(parser, None)
    # After the command: only when given (SUPPRESS), so it never hides one given before.
    common = Parser(add_help=False)
    _db_option(common, argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                parser_class=Parser)
    for name, (_fn, arguments, help_text) in _in_help_order():
        p = sub.add_parser(name, parents=[common], help=help_text, description=help_text)
        arguments(p)
    return parser


#: Each command module registers its commands on import; --help lists them in this order
#: (modules not named here, e.g. added later, come after, in registration order).
COMMAND_MODULES = (feed, demo, query, debug, sync, service, reconcile, serve)


def _in_help_order() -> list[tuple[str, tuple[Handler, Arguments, str]]]:
    rank = {module.__name__: n for n, module in enumerate(COMMAND_MODULES)}
    return sorted(COMMANDS.items(), key=lambda kv: rank.get(kv[1][0].__module__, len(rank)))


def main(argv: Sequence[str] | None = None) -> int:
    restrict_umask()  # the ledger, its WAL/SHM, cloud state, records: owner-only
    parser = build_parser()
    try:
        import argcomplete

        argcomplete.autocomplete(parser)
    except ImportError:  # pragma: no cover - a dependency; completion is a convenience
        pass
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors (already printed)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    handler = COMMANDS[args.command][0]
    try:
        return handler(args)
    except KeyboardInterrupt:
        print(f"syncledger {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_OK
    except SystemExit as exc:  # a library gave up (uvicorn when it cannot start)
        code = exc.code if isinstance(exc.code, int) else EXIT_FAILED
        print(f"syncledger {args.command}: stopped (exit status {code})", file=sys.stderr)
        return EXIT_FAILED if code else EXIT_OK
    except Exception as exc:
        message, code = failure(exc)
        print(f"syncledger {args.command}: {message}", file=sys.stderr)
        if os.environ.get("SYNCLEDGER_DEBUG"):
            traceback.print_exc()
        return code


def failure(exc: Exception) -> tuple[str, int]:
    """One line and the exit code for any exception a command lets out."""
    if isinstance(exc, CliError):
        return str(exc), exc.code
    if isinstance(exc, StoreURLError):
        return f"--db {exc}", EXIT_USAGE
    if isinstance(exc, NoLedger):
        return str(exc), EXIT_NOT_FOUND
    if isinstance(exc, StoreUnavailable):
        return str(exc), EXIT_FAILED
    if isinstance(exc, (FileNotFoundError, NotADirectoryError, IsADirectoryError)):
        name = exc.filename or ""
        what = {FileNotFoundError: "no such file or folder",
                NotADirectoryError: "a part of the path is not a folder",
                IsADirectoryError: "is a folder, not a file"}[type(exc)]
        return f"{name}: {what}", EXIT_USAGE
    if isinstance(exc, PermissionError):
        return f"{exc.filename or ''}: permission denied", EXIT_FAILED
    reason = root_reason(exc)
    if "readonly database" in reason or "read-only" in reason:
        return f"the ledger is read-only and this command writes to it ({reason})", EXIT_FAILED
    if isinstance(exc, sqlite3.Error) or _from_driver(exc):
        return f"the database refused: {reason}", EXIT_FAILED
    if isinstance(exc, (ValueError, LookupError)):
        return reason, EXIT_USAGE
    return (f"unexpected {type(exc).__name__}: {reason} (a bug: please report it with "
            "SYNCLEDGER_DEBUG=1 output)"), EXIT_FAILED


def _from_driver(exc: BaseException) -> bool:
    return type(exc).__module__.split(".")[0] in {"psycopg", "sqlalchemy", "eventsourcing"}


def _quiet_stdout() -> None:
    """``syncledger issues | head``: stop quietly (Python would complain at exit)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
