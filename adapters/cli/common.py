"""What every command module shares: exit codes, the command registry, JSON output, where
the ledger is and how it is opened, list options (``--limit``/``--offset``/``--csv``),
validated filter values. Imports nothing of the other command modules, so they can all
import it.

Failures: a command raises :class:`CliError` (or one of the store errors below) and
``main`` prints ONE line, ``syncledger COMMAND: message``, on stderr and exits with the
error's code. No command prints a traceback.
"""

from __future__ import annotations

import argparse
import difflib
import os
import stat
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import orjson

from ledger.store import DEFAULT_DB, NoLedgerError, Store, StoreURL, ledger_exists

#: Exit status, documented in ``syncledger --help`` and the README.
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_QUARANTINED, EXIT_NOT_FOUND = 0, 1, 2, 3, 4

Handler = Callable[[argparse.Namespace], int]
Arguments = Callable[[argparse.ArgumentParser], None]
COMMANDS: dict[str, tuple[Handler, Arguments, str]] = {}


def command(name: str, help_text: str,
            arguments: Callable[[argparse.ArgumentParser], None] = lambda p: None
            ) -> Callable[[Handler], Handler]:
    """Register a command: ``main`` builds its parser, ``--help`` lists it, and the
    traceback test (tests/test_cli.py) runs it against bad input."""
    def register(fn: Handler) -> Handler:
        COMMANDS[name] = (fn, arguments, help_text)
        return fn
    return register


def emit_json(value: Any) -> None:
    sys.stdout.buffer.write(orjson.dumps(value, option=orjson.OPT_INDENT_2) + b"\n")


class CliError(Exception):
    """A failure a person must read: one line, and the exit code to leave with."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


#: A read command pointed at a store with no ledger (exit 4). The store's own error type,
#: so ``Store(url.reading())`` raising it anywhere ends the same way.
NoLedger = NoLedgerError


class StoreUnavailable(RuntimeError):
    """The store exists on paper but cannot be opened (server down, no permission)."""


# --- where the ledger is --------------------------------------------------------------


def ledger_location(args: argparse.Namespace | None, default: str = DEFAULT_DB) -> str:
    """THE rule, for every command: ``--db``, else ``$SYNCLEDGER_DB``, else ``default``
    (``syncledger.db``; the demo and the sandbox have files of their own)."""
    given = getattr(args, "db", None) if args is not None else None
    return given or os.environ.get("SYNCLEDGER_DB") or default


def ledger_url(args: argparse.Namespace | None, default: str = DEFAULT_DB) -> StoreURL:
    return StoreURL.parse(ledger_location(args, default))


def _writable(path: str) -> bool:
    """A SQLite ledger we may write: the file has write permission (its mode bits, so
    ``chmod a-w`` means read-only even for root) and so does its folder (WAL files)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    folder = os.path.dirname(os.path.abspath(path))
    return bool(mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)) \
        and os.access(path, os.W_OK) and os.access(folder, os.W_OK | os.X_OK)


def open_store(args: argparse.Namespace, *, create: bool = False, writes: bool = False,
               read_only: bool | None = None, default: str = DEFAULT_DB) -> Store:
    """The ledger ``ledger_location`` names.

    Only commands that record (``create``) may start one. Everything else opens an existing
    ledger or says "no ledger" (:data:`NoLedger`, exit 4) and creates nothing, on SQLite and
    on PostgreSQL. ``writes``: an existing ledger the command writes to (``project``,
    ``rebuild``): a read-only one is refused in one line. ``read_only=True`` always opens
    read-only (SQLite ``mode=ro``); the default (None) opens read-only when the SQLite file
    cannot be written, so read commands work on a read-only ledger (its read models are
    then shown as they stand)."""
    url = ledger_url(args, default)
    writes = writes or create
    if url.kind == "sqlite" and url.path != ":memory:":
        folder = os.path.dirname(os.path.abspath(url.path))
        if os.path.isdir(url.path):
            raise CliError(f"--db {url.path} is a folder; give a ledger file inside it, "
                           f"e.g. {os.path.join(url.path, DEFAULT_DB)}", EXIT_USAGE)
        if create and not os.path.isdir(folder):
            raise CliError(f"--db {url.path}: the folder {folder} does not exist", EXIT_USAGE)
        if not create and not os.path.exists(url.path):
            raise NoLedger(f"no ledger at {url.path} (give --db, or set SYNCLEDGER_DB; "
                           "'syncledger ingest' or 'syncledger demo' create one)")
        if writes and os.path.exists(url.path) and not _writable(url.path):
            raise CliError(f"the ledger {url.path} is read-only, and this command writes to "
                           "it (read commands work on it)", EXIT_FAILED)
        if not writes and (read_only or (read_only is None and not _writable(url.path))):
            url = url.reading()
    elif not create and read_only:
        url = url.reading()
    try:
        if url.kind == "postgresql" and not create and not ledger_exists(url):
            raise NoLedger(f"no ledger at {url}")  # and no schema or table made to say so
        return Store(url)
    except NoLedger as exc:
        raise NoLedger(f"{exc} (give --db, or set SYNCLEDGER_DB; 'syncledger ingest' or "
                       "'syncledger demo' create one)") from exc
    except Exception as exc:  # the driver's own error types: psycopg, sqlite3, the library
        raise StoreUnavailable(f"cannot open the ledger at {url}: {root_reason(exc)}") from exc


def erase_sqlite(url: StoreURL) -> None:
    """``--fresh``: delete a SQLite ledger file and its WAL files (PostgreSQL: see
    ``sync --sandbox --fresh``)."""
    if url.kind == "sqlite" and url.path != ":memory:":
        if os.path.isdir(url.path):
            raise CliError(f"--db {url.path} is a folder, not a ledger file", EXIT_USAGE)
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(url.path + suffix):
                os.remove(url.path + suffix)


def open_target(value: str) -> Store:
    """A store a command writes a new ledger into (``replay --db-out``): same checks as
    ``open_store(create=True)``, for a location given by an option of its own."""
    if not value.strip():
        raise CliError("the target store is empty: give a path or a postgresql:// URL",
                       EXIT_USAGE)
    return open_store(argparse.Namespace(db=value), create=True)


def root_reason(exc: BaseException) -> str:
    """The first line of the innermost cause: drivers wrap errors two or three deep.

    An error raised while a library handled a lookup of its own (``except IndexError:``
    around an empty pool, then the connect fails) carries that lookup as its context:
    it is the library's control flow, not the reason, and is not followed ("pop from an
    empty deque" was printed instead of SQLite's "database is locked")."""
    seen: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in seen:
        seen.append(cur)
        context = cur.__context__
        if cur.__suppress_context__ or isinstance(context, (LookupError, StopIteration)):
            context = None
        cur = getattr(cur, "orig", None) or cur.__cause__ or context
    for candidate in reversed(seen):
        text = str(candidate).strip()
        if text:
            return text.splitlines()[0][:300]
    return type(exc).__name__


# --- list commands --------------------------------------------------------------------


def list_options(p: argparse.ArgumentParser, *, csv: bool = False) -> None:
    """``--limit``/``--offset`` (and ``--csv`` for the BI tables) for a command that lists."""
    p.add_argument("--limit", type=non_negative, default=None, metavar="N",
                   help="show at most N rows (default: all)")
    p.add_argument("--offset", type=non_negative, default=0, metavar="N",
                   help="skip the first N rows (with --limit: pages)")
    if csv:
        p.add_argument("--csv", action="store_true",
                       help="print CSV with a header row (every column), for spreadsheets")


T = TypeVar("T")


def page(rows: Sequence[T], args: argparse.Namespace) -> list[T]:
    """The rows ``--offset``/``--limit`` select (commands without them: all)."""
    offset = getattr(args, "offset", 0) or 0
    limit = getattr(args, "limit", None)
    return list(rows[offset:] if limit is None else rows[offset:offset + limit])


def non_negative(text: str) -> int:
    """argparse type: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative")
    return value


def positive(text: str) -> int:
    """argparse type: an integer >= 1 (batch sizes, versions)."""
    value = non_negative(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def port_number(text: str) -> int:
    """argparse type: a TCP port, 0 (any free one) to 65535."""
    value = non_negative(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port (0-65535)")
    return value


def one_of(known: Iterable[str], what: str) -> Callable[[str], str]:
    """argparse type for a filter: a known value, or an error naming the close ones (a
    filter that accepts anything answers a typo with "no rows")."""
    values = sorted(set(known))

    def check(text: str) -> str:
        if text in values:
            return text
        close = difflib.get_close_matches(text, values, n=3)
        hint = f"; did you mean {' or '.join(close)}?" if close else \
            f" (known: {', '.join(values)})"
        raise argparse.ArgumentTypeError(f"unknown {what} {text!r}{hint}")
    check.__name__ = what  # argparse names the type in its message
    return check


def emit_rows(args: argparse.Namespace, rows: Sequence[dict[str, Any]], shown: Sequence[str],
              *, every: Sequence[str] | None = None, noun: str = "rows") -> int:
    """Print a list command's answer: ``--json`` (every key), ``--csv`` (``every`` column),
    or a table of the ``shown`` columns; ``--offset``/``--limit`` select the rows in each
    case, and the table says how many there were."""
    from adapters.cli import render

    chosen = page(rows, args)
    if getattr(args, "json", False):
        emit_json(chosen)
    elif getattr(args, "csv", False):
        sys.stdout.write(render.csv(chosen, every or shown))
    elif not rows:
        print(f"no {noun}")
    else:
        print(render.table(chosen, shown))
        first = (getattr(args, "offset", 0) or 0) + 1
        span = f"{len(rows):,}" if len(chosen) == len(rows) else \
            f"{first:,}-{first + len(chosen) - 1:,} of {len(rows):,}" if chosen else \
            f"none of {len(rows):,} (--offset is past the end)"
        print(f"\n{span} {noun}; --json for every column"
              + ("" if len(chosen) == len(rows) else ", --limit/--offset for more"))
    return EXIT_OK
