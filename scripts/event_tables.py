"""Hash a ledger's tables after ingesting the bundled feed and a benchmark feed.

For refactors that promise "no behaviour change": run it before and after and
compare (``diff``). Rows are hashed in sorted order, so only content counts.

    python scripts/event_tables.py /tmp/before   # on the old commit
    python scripts/event_tables.py /tmp/after    # on the new one
    diff /tmp/before/hashes.txt /tmp/after/hashes.txt
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

from benchfeed import write_feed  # noqa: E402

from adapters.sandbox.org import demo_feed_path  # noqa: E402


def table_hashes(db: Path) -> list[tuple[str, int, str]]:
    con = sqlite3.connect(db)
    try:
        names = [r[0] for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        out = []
        for name in names:
            digest = hashlib.sha256()
            rows = sorted(repr(r) for r in con.execute(f'SELECT * FROM "{name}"'))
            for row in rows:
                digest.update(row.encode())
            out.append((name, len(rows), digest.hexdigest()[:16]))
        return out
    finally:
        con.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="folder for the feeds, ledgers and hashes.txt")
    parser.add_argument("--observations", type=int, default=20_000,
                        help="lines of the benchmark feed (default 20000)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    bench = args.out / f"feed{args.observations}.jsonl"
    if not bench.exists():
        write_feed(bench, args.observations, args.seed)
    lines = []
    for name, feed in (("demo", demo_feed_path()), ("bench", bench)):
        db = args.out / f"{name}.db"
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(f"{db}{suffix}"):
                os.remove(f"{db}{suffix}")
        subprocess.run([sys.executable, "-m", "adapters.cli.main", "ingest", str(feed),
                        "--db", str(db)], check=False, stdout=subprocess.DEVNULL)
        lines += [f"{name} {table} {rows} {digest}" for table, rows, digest in table_hashes(db)]
    (args.out / "hashes.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
