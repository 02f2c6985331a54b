"""What every command module shares: exit codes, the command registry, JSON output, opening
the ledger. Imports nothing of the other command modules, so they can all import it."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

import orjson

from ledger.store import Store, StoreURL

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_QUARANTINED, EXIT_NOT_FOUND = 0, 1, 2, 3, 4

Handler = Callable[[argparse.Namespace], int]
Arguments = Callable[[argparse.ArgumentParser], None]
COMMANDS: dict[str, tuple[Handler, Arguments, str]] = {}


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
