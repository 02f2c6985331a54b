"""Order figures (issue 12, point 3): does delivery order change what the ledger says?

A synthetic org's feed (``scripts/benchfeed.py``) is ingested into fresh SQLite
ledgers three ways and the read models compared with the clean ingest:

- ``halves``: the feed cut in half, the second half ingested before the first
  (an item's versions split across the halves then arrive newest first: rules
  that compare a version with the one before, e.g. ``series-master-overwrite``,
  cannot be told apart from a first sight, so the plan may differ);
- ``by source``: the Salesforce lines in one file, the Outlook lines (with the
  saves) in another, the Salesforce file first;
- ``window of 3``: the lines shuffled within consecutive windows of three
  (an item's own versions may swap there: not an order the APIs deliver, so
  some difference can remain where the domain rules depend on it);
- ``per item``: any order that keeps each item's own versions in order
  (streams: an Outlook item, a Salesforce Event, a sidebar save, a deletion),
  with 2% of the lines delivered twice.

Prints rows per read model (mapping, issues, conflicts, plan), meetings, parked
lines left, which read models equal the clean one, and how many mapping rows
differ from the clean mapping (a pair linked in another meeting counts too) and
how many differ once the meeting id is left out. Not a timed test.

    python scripts/order.py --observations 4000 --seed 3
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

import orjson

HERE = Path(__file__).resolve().parent
#: SYNCLEDGER_ROOT: another checkout's code (the figures before a change); its scripts
#: folder need not have this script.
ROOT = Path(os.environ.get("SYNCLEDGER_ROOT") or HERE.parent)
for p in (str(HERE), str(ROOT)):
    if p not in sys.path:
        sys.path.insert(0, p)

from benchfeed import write_feed  # noqa: E402

from adapters.feed.ingest import ingest_files  # noqa: E402
from ledger.store import Store  # noqa: E402
from projections import queries  # noqa: E402

MODELS = ("mapping", "issues", "conflicts", "plan")


def stream_of(line: dict[str, Any]) -> str:
    kind, payload = line.get("kind"), line.get("payload") or {}
    if kind == "graph.event":
        return f"ex|{line.get('mailbox')}|{payload.get('id')}"
    if kind == "salesforce.event":
        return f"sf|{payload.get('Id')}"
    if kind == "salesforce.deleted":
        return f"deleted|{payload.get('id')}"
    if kind == "sidebar.save":
        return f"save|{line.get('mailbox')}|{payload.get('itemId')}|{line.get('observed_at')}"
    return "org"  # settings and people: kept first, in order


def per_item(lines: list[bytes], rng: random.Random) -> list[bytes]:
    parsed = [orjson.loads(x) for x in lines]
    head = [x for x, p in zip(lines, parsed, strict=True) if stream_of(p) == "org"]
    queues: dict[str, list[bytes]] = {}
    for x, p in zip(lines, parsed, strict=True):
        if stream_of(p) != "org":
            queues.setdefault(stream_of(p), []).append(x)
    names = list(queues)
    out: list[bytes] = []
    while names:
        i = rng.randrange(len(names))
        out.append(queues[names[i]].pop(0))
        if not queues[names[i]]:
            names[i] = names[-1]
            names.pop()
    for _ in range(len(out) // 50):
        at = rng.randrange(len(out))
        out.insert(rng.randrange(at + 1, len(out) + 1), out[at])
    return head + out


def window_of_3(lines: list[bytes], rng: random.Random) -> list[bytes]:
    out: list[bytes] = []
    for i in range(0, len(lines), 3):
        chunk = lines[i:i + 3]
        rng.shuffle(chunk)
        out += chunk
    return out


def answers(paths: list[Path], db: Path) -> tuple[dict[str, list[dict[str, Any]]], int, int]:
    store = Store.open(str(db))
    try:
        ingest_files(store, paths, show_progress=False)
        return ({m: queries.read_model(store, m) for m in MODELS}, len(store.meeting_ids()),
                len(store.parked()) if hasattr(store, "parked") else 0)
    finally:
        store.close()


def _diff(a: list[dict[str, Any]], b: list[dict[str, Any]], with_id: bool) -> int:
    """Rows in one mapping and not in the other (both ways)."""
    def rows(x: list[dict[str, Any]]) -> set[bytes]:
        return {orjson.dumps({k: v for k, v in r.items() if with_id or k != "meeting_id"},
                             option=orjson.OPT_SORT_KEYS) for r in x}
    return len(rows(a) ^ rows(b))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--observations", type=int, default=4000, metavar="N")
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        feed = t / "feed.jsonl"
        write_feed(feed, args.observations, args.seed)
        lines = feed.read_bytes().splitlines(keepends=True)
        # Both files start with the org's settings and people (what the first file of a
        # real delivery holds too): the halves of the rest in either order.
        org = [x for x in lines if stream_of(orjson.loads(x)) == "org"]
        body = [x for x in lines if stream_of(orjson.loads(x)) != "org"]
        half = len(body) // 2
        first, second = t / "first.jsonl", t / "second.jsonl"
        first.write_bytes(b"".join(org + body[:half]))
        second.write_bytes(b"".join(org + body[half:]))
        sf_lines = [x for x in body if orjson.loads(x)["kind"].startswith("salesforce.")]
        ex_lines = [x for x in body if not orjson.loads(x)["kind"].startswith("salesforce.")]
        sf_file, ex_file = t / "salesforce.jsonl", t / "outlook.jsonl"
        sf_file.write_bytes(b"".join(org + sf_lines))
        ex_file.write_bytes(b"".join(org + ex_lines))
        w3, pi = t / "w3.jsonl", t / "pi.jsonl"
        w3.write_bytes(b"".join(window_of_3(lines, rng)))
        pi.write_bytes(b"".join(per_item(lines, rng)))
        clean, meetings, _ = answers([feed], t / "clean.db")
        print(f"feed: {len(lines):,} lines, seed {args.seed}")
        print(f"{'delivery':<22}{'meetings':>9}" + "".join(f"{m:>11}" for m in MODELS)
              + f"{'parked':>8}{'map diff':>10}{'w/o id':>8}  equal to clean")
        print(f"{'clean':<22}{meetings:>9,}" + "".join(f"{len(clean[m]):>11,}" for m in MODELS)
              + f"{0:>8}")
        for n_, (name, paths) in enumerate((
                ("halves, 2nd first", [second, first]),
                ("by source, SF first", [sf_file, ex_file]),
                ("window of 3", [w3]), ("per item + repeats", [pi]))):
            got, n, parked = answers(paths, t / f"d{n_}.db")
            same = [m for m in MODELS if got[m] == clean[m]]
            print(f"{name:<22}{n:>9,}" + "".join(f"{len(got[m]):>11,}" for m in MODELS)
                  + f"{parked:>8}{_diff(clean['mapping'], got['mapping'], True):>10,}"
                  + f"{_diff(clean['mapping'], got['mapping'], False):>8,}"
                  + f"  {', '.join(same) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
