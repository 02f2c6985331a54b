"""Feed commands: ingest, quarantine."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from adapters.cli import render
from adapters.cli.common import (
    EXIT_OK,
    EXIT_QUARANTINED,
    EXIT_USAGE,
    command,
    emit_json,
    open_store,
    positive,
)
from adapters.feed.ingest import ingest_files, summary_lines


def _ingest_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+", type=Path, metavar="FILE",
                   help="JSON Lines feed files (DOMAIN.md §6), ingested in order; '-' reads "
                        "the standard input")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--batch-size", type=positive, default=2000,
                   help="observations per transaction (default 2000; one fsync each)")
    p.add_argument("--reader", choices=("auto", "process", "inline"), default="auto",
                   help="where feed lines are decoded: 'process' = a second process, so "
                        "decoding and deciding run on two cores; 'inline' = in this one; "
                        "'auto' (default) = a second process for files of 8 MB or more on a "
                        "machine with two cores or more")


@command("ingest", "record a feed of raw observations in the ledger", _ingest_args)
def cmd_ingest(args: argparse.Namespace) -> int:
    if any(str(f) == "-" for f in args.files):
        return _ingest_stdin(args)
    missing = [str(f) for f in args.files if not f.is_file()]
    if missing:
        print(f"syncledger ingest: no such file: {', '.join(missing)}", file=sys.stderr)
        return EXIT_USAGE
    store = open_store(args, create=True)
    started = time.monotonic()
    try:
        result = ingest_files(store, args.files, batch_size=args.batch_size,
                              in_child={"auto": None, "process": True,
                                        "inline": False}[args.reader])
    finally:
        store.close()
    elapsed = time.monotonic() - started
    if args.json:
        emit_json({**result.as_dict(), "elapsed_s": round(elapsed, 3)})
    else:
        print("\n".join(summary_lines(result, elapsed)))
        for err in result.errors[:20]:
            print(f"quarantined: {err}", file=sys.stderr)
        if len(result.errors) > 20:
            print(f"... and {len(result.errors) - 20} more: see 'syncledger quarantine'",
                  file=sys.stderr)
    if result.quarantined:
        print(f"syncledger ingest: {result.quarantined:,} observation(s) quarantined "
              "(exit 3); 'syncledger quarantine' lists them", file=sys.stderr)
    return EXIT_QUARANTINED if result.quarantined else EXIT_OK


def _ingest_stdin(args: argparse.Namespace) -> int:
    """``ingest -``: the pipe is spooled to a temporary file first (the reader process
    and the quarantine's line numbers want a file), then ingested like one."""
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory(prefix="syncledger-stdin-") as folder:
        spooled = Path(folder) / "stdin.jsonl"
        with spooled.open("wb") as out:
            shutil.copyfileobj(sys.stdin.buffer, out)
        args.files = [spooled if str(f) == "-" else f for f in args.files]
        return cmd_ingest(args)


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
