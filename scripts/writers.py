"""Concurrent writers (issue 12, point 4): N ``syncledger ingest`` processes on one ledger.

A synthetic org's feed (``scripts/benchfeed.py``) is split into N files
(``tests/writers_run.py``: ``organizer`` = each mailbox's lines with the
Salesforce Events its user owns, one meeting's attendee copies with different
writers; ``whole`` = every writer ingests the whole feed; ``meeting`` = each
meeting's lines, as one process grouped them, with one writer), the N files are
ingested at once by N ``syncledger ingest`` processes on one fresh ledger, then
``syncledger project`` runs. The ledger is compared with one process ingesting
the whole feed: events lost and duplicated (per aggregate, version left out),
index rows and read-model rows in one ledger and not the other, each process's
exit status, and the wall time of the N processes against the one process's.
Prints figures; not a test (``tests/test_writers.py`` asserts the same on a
smaller feed).

    python scripts/writers.py --observations 20000 --writers 2 4
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
for p in (str(HERE), str(HERE.parent)):
    if p not in sys.path:
        sys.path.insert(0, p)

from benchfeed import write_feed  # noqa: E402

from tests.writers_run import (  # noqa: E402
    SPLITS,
    Figures,
    distinct_meetings,
    figures,
    ingest_together,
    project_and_fingerprint,
    split,
)

PG = "postgresql://postgres@127.0.0.1:5432/test?schema={schema}"


def _drop(url: str) -> None:
    """Remove a run's ledger (each run starts from a fresh one)."""
    from ledger.store import StoreURL, drop_postgres_schema

    parsed = StoreURL.parse(url)
    if parsed.kind == "postgresql":
        drop_postgres_schema(parsed)
        return
    for suffix in ("", "-wal", "-shm"):
        Path(parsed.path + suffix).unlink(missing_ok=True)


def _url(store: str, folder: Path, name: str) -> str:
    if store == "sqlite":
        return f"sqlite:///{folder / (name + '.db')}"
    return PG.format(schema=f"writers_{name}_{uuid.uuid4().hex[:8]}")


def _row(store: str, how: str, n: int, fig: Figures | None, events: int, seconds: float,
         one: float, exits: str) -> str:
    cells = ["", "", "", "", "", ""] if fig is None else [
        f"{fig.lost:,}", f"{fig.duplicated:,}", f"{fig.decisions_differing:,}",
        f"{fig.index_differing:,}", f"{fig.read_model_rows_differing:,}",
        ", ".join(f"{m.removeprefix('proj_')} {d:,}" for m, d in fig.read_models_differing.items())]
    return (f"| {store} | {how} | {n} | {events:,} | {' | '.join(cells[:5])} | "
            f"{seconds:.1f} | {seconds / one:.2f} | {exits} | {cells[5]} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="writers.py", description=__doc__.splitlines()[0])
    parser.add_argument("--observations", type=int, default=20_000, metavar="N",
                        help="feed lines (default 20,000)")
    parser.add_argument("--seed", type=int, default=3, help="feed seed (default 3)")
    parser.add_argument("--writers", type=int, nargs="+", default=[2, 4], metavar="N",
                        help="concurrent ingest processes, one run each (default 2 4)")
    parser.add_argument("--stores", nargs="+", choices=("sqlite", "postgresql"),
                        default=["sqlite", "postgresql"], help="stores (default both)")
    parser.add_argument("--split", nargs="+", choices=SPLITS, default=list(SPLITS),
                        help="how the feed is split over the writers (default all three)")
    parser.add_argument("--batch-size", type=int, default=500, metavar="N",
                        help="ingest --batch-size of every process (default 500)")
    args = parser.parse_args(argv)
    if args.observations < 2 or min(args.writers) < 1 or args.batch_size < 1:
        parser.error("--observations must be 2 or more, --writers and --batch-size 1 or more")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        generated = folder / "generated.jsonl"
        write_feed(generated, args.observations, args.seed)
        lines = distinct_meetings(generated.read_bytes().splitlines(keepends=True))
        feed = folder / "feed.jsonl"
        feed.write_bytes(b"".join(lines))
        print(f"feed: {len(lines):,} lines (benchfeed, {args.observations:,} generated, seed "
              f"{args.seed}), ingest --batch-size {args.batch_size}; against one process "
              "ingesting the whole feed")
        print("| store | split | writers | events | input lost | input duplicated "
              "| decisions differing | index rows differing | read-model rows differing "
              "| wall s | x one | exit statuses | read models differing |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for store in args.stores:
            url = _url(store, folder, "one")
            try:
                one = ingest_together([feed], url, batch_size=args.batch_size)
                if one.exits != [0]:
                    print(f"{store}: one process failed: {one.errors}")
                    return 1
                reference = project_and_fingerprint(url)
                by_meeting = {n: split(lines, n, "meeting", url) for n in args.writers
                              if "meeting" in args.split}  # as one process grouped them
            finally:
                _drop(url)
            events = sum(sum(reference[p].values()) for p in ("input", "decision"))
            print(_row(store, "one process", 1, None, events, one.seconds, one.seconds, "0"))
            for how in args.split:
                for n in args.writers:
                    files = []
                    parts = by_meeting[n] if how == "meeting" else split(lines, n, how)
                    for i, part in enumerate(parts):
                        f = folder / f"{how}{n}_{i}.jsonl"
                        f.write_bytes(b"".join(part))
                        files.append(f)
                    runs = [("", files)]
                    if how == "organizer":  # order alone: one process, the files in turn
                        runs.append((" in turn", [folder / f"{how}{n}_all.jsonl"]))
                        runs[-1][1][0].write_bytes(b"".join(f.read_bytes() for f in files))
                    for label, paths in runs:
                        url = _url(store, folder, f"{how}{n}{'_turn' if label else ''}")
                        try:
                            run = ingest_together(paths, url, batch_size=args.batch_size)
                            fig = figures(reference, project_and_fingerprint(url))
                        finally:
                            _drop(url)
                        exits = " ".join(map(str, run.exits)) + (
                            f" ({'; '.join(run.errors)})" if run.errors else "")
                        print(_row(store, how + label, 1 if label else n, fig, fig.events,
                                   run.seconds, one.seconds, exits))
    return 0


if __name__ == "__main__":
    sys.exit(main())
