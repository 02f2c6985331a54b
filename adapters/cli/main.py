"""``syncledger``: the command line. Thin: parse arguments, call one job, print.

Every command takes ``--db`` (a SQLite path, ``sqlite:///PATH`` or
``postgresql://USER@HOST:PORT/DB?schema=NAME``; default ``$SYNCLEDGER_DB`` or
``./syncledger.db``). Commands that print records take ``--json`` for
scripts. Exit status: 0 fine, 1 failed, 2 bad usage, 3 input was quarantined,
4 not found.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from adapters.cli import debug, demo, feed, query, serve, sync
from adapters.cli.common import (
    COMMANDS,
    EXIT_FAILED,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_USAGE,
    Arguments,
    Handler,
    NoLedger,
    StoreUnavailable,
)
from ledger.store import StoreURLError

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
    for name, (_fn, arguments, help_text) in _in_help_order():
        p = sub.add_parser(name, parents=[common], help=help_text, description=help_text)
        arguments(p)
    return parser


#: Each command module registers its commands on import; --help lists them in this order.
COMMAND_MODULES = (feed, demo, query, debug, sync, serve)


def _in_help_order() -> list[tuple[str, tuple[Handler, Arguments, str]]]:
    rank = {module.__name__: n for n, module in enumerate(COMMAND_MODULES)}
    return sorted(COMMANDS.items(), key=lambda kv: rank[kv[1][0].__module__])


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
