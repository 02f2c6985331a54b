"""``syncledger demo``: the main job on the embedded default, no credentials.

Ingests the bundled sandbox org (raw Graph and Salesforce payloads that hit
every rule) into a SQLite ledger and shows, per meeting, what the ledger
recorded and decided, then the read models people query.
"""

from __future__ import annotations

import argparse
from typing import Any

import orjson

from adapters.cli import render
from adapters.cli.common import (
    command,
    erase_sqlite,
    ledger_location,
    ledger_url,
    open_store,
)
from adapters.cli.query import SHOWN
from adapters.feed.ingest import ingest_files, summary_lines
from adapters.sandbox.org import demo_feed_path
from ledger.store import Store
from projections import queries
from projections.timeline import meeting_summary

DEMO_DB = "syncledger-demo.db"


def run(args: argparse.Namespace, *, fresh: bool, as_json: bool) -> int:
    url = ledger_url(args, DEMO_DB)
    if fresh:
        erase_sqlite(url)
    store = open_store(args, create=True, default=DEMO_DB)
    try:
        result = ingest_files(store, [demo_feed_path()])
        meetings = [meeting_summary(store, mid) for mid in store.meeting_ids()]
        meetings.sort(key=lambda m: (m["start"] or "", m["title"]))
        views = _read_models(store)
    finally:
        store.close()
    if as_json:
        out = {"ledger": str(url), "intake": result.as_dict(), "meetings": meetings, **views}
        print(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())
        return 0
    print(f"Ledger: {url}\n")
    print("\n".join(summary_lines(result)))
    print(f"\n{len(meetings)} meetings recorded:\n")
    for m in meetings:
        print(f"* {m['title']}  [{m['status']}]")
        print(f"  meeting {m['meeting_id']}  key {m['key']}  ({m['events']} events)")
        for line in m["decisions"]:
            print(f"    - {line}")
    _print_views(views)
    db = url.path if url.kind == "sqlite" else str(url)
    print(f"\nNext: 'syncledger explain ID --db {db}' for any meeting id or key above, "
          f"'syncledger issues --db {db}', 'syncledger --help' for all commands.")
    return 0


def _read_models(store: Store) -> dict[str, Any]:
    return {"mapping": queries.mapping(store), "conflicts": queries.conflicts(store),
            "issues": queries.issues(store), "plan": queries.plan(store)}


def _print_views(views: dict[str, Any]) -> None:
    for name in ("mapping", "conflicts", "issues", "plan"):
        cols = SHOWN[name]
        rows = views[name]
        print(f"\n{name.upper()} ({len(rows)})")
        print(render.table(rows, cols, width=40) if rows else "  (none)")


def _demo_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--fresh", action="store_true",
                   help="delete the SQLite ledger file first (default for the demo file)")


@command("demo", "ingest the bundled sandbox org into a SQLite ledger and show the outcome",
         _demo_args)
def cmd_demo(args: argparse.Namespace) -> int:
    # The one rule (--db, else $SYNCLEDGER_DB, else syncledger-demo.db); only the demo's
    # own default file is started afresh unless --fresh says so.
    fresh = args.fresh or ledger_location(args, DEMO_DB) == DEMO_DB
    return run(args, fresh=fresh, as_json=args.json)
