"""Chaos figures (issue 12, point 7): ``kill -9`` mid-work, resume, compare with a clean run.

For each store (SQLite, PostgreSQL) and each kind of command, N trials of:
start the command, SIGKILL it at a random moment of its own running time, run the
same command again to completion (the resume), then compare the ledger (and, for
``sync``, the emulated cloud) with a clean, uninterrupted run's:

- ``ingest``: ``syncledger ingest FEED`` of a synthetic feed (``scripts/benchfeed.py``)
  into a fresh ledger; compared after ``syncledger project``: events, index rows,
  quarantine, every read model;
- ``project``: a ledger ingested once; per trial its read models are dropped and
  ``syncledger project`` (the catch-up) is killed; compared: every read model;
- ``sync``: ``syncledger sync --sandbox`` (the bundled demo org through the local
  emulators) into a fresh ledger and cloud file; compared: the emulated cloud (every
  Outlook item, every Salesforce record, without the ids and stamps the emulators
  make up), the ledger's index and quarantine rows, read models and every meeting's
  state (clock times and version tokens left out, see ``Volatile``); and a further
  sync must write nothing (no Outlook item or Salesforce Event made twice).

Each store and kind starts with two clean runs: the first is the reference, the two
must agree (else the row says what differs: the comparison would not be telling), and
the shorter one's duration is the upper end of the kill delay, drawn uniformly within
the command's working time: for ``ingest`` and ``project`` from the start-up time (the
same command with nothing to do) to that duration, counted from the spawn; for
``sync`` from the emulators being up (their start is set-up) to its end. A trial
whose command ended before its kill (load from elsewhere makes runs vary) lowers the
upper end to its own duration.

Columns: trials; killed (the kill landed before the command ended: mid-work); partial
(the kill left some of the clean run's work committed and some not: ledger events for
ingest and sync, projection positions for project); lost (rows of the clean run
missing after the resume, summed over trials); duplicated (rows present more often
than in the clean run); diverged (trials where any compared part differs at all);
log differs (trials whose event log differs: for ingest and project part of
diverged, for sync not compared, see ``sync_log``); kill window (the delays' range in
seconds as the trials began: from the spawn for ingest and project, from the emulators
being up for sync);
wall time. Not a timed test.

    python scripts/chaos.py                        # 20 trials per kind on SQLite, 5 on PostgreSQL
    python scripts/chaos.py --kinds ingest --store sqlite --trials 3
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson

ROOT = Path(__file__).resolve().parents[1]
for p in (str(ROOT / "scripts"), str(ROOT)):
    if p not in sys.path:
        sys.path.insert(0, p)

from benchfeed import write_feed  # noqa: E402

from ledger.store import Store  # noqa: E402
from projections import runner  # noqa: E402
from projections.state import meeting_state  # noqa: E402
from tests.fingerprints import (  # noqa: E402
    READ_MODELS,
    Fingerprint,
    cloud,
    compare,
    ledger,
    read_models,
    side_rows,
)

KINDS = ("ingest", "project", "sync")
STORES = ("sqlite", "postgresql")
PG_BASE = "postgresql://postgres@127.0.0.1:5432/test"
SYNCLEDGER = [sys.executable, "-m", "adapters.cli.main"]


@dataclass
class Row:
    """One store and kind: what its trials found."""

    store: str
    kind: str
    trials: int = 0
    killed: int = 0
    partial: int = 0
    lost: int = 0
    duplicated: int = 0
    diverged: int = 0
    log_differs: int = 0  # trials whose event log differs from the clean run's
    seconds: float = 0.0
    clean_seconds: float = 0.0  # the clean run's duration (what the delays are drawn in)
    startup_seconds: float = 0.0  # where the draw starts
    parts: Counter[str] = field(default_factory=Counter)  # parts that differed, over trials
    control: list[str] = field(default_factory=list)  # parts two clean runs differ in


# --- running the command ---------------------------------------------------------


def _env() -> dict[str, str]:
    """This checkout's code first, also in the child (its console script may be another's)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def run(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``syncledger ARGS`` to completion (the clean run, the resume)."""
    return subprocess.run([*SYNCLEDGER, *args], capture_output=True, text=True, cwd=ROOT,
                          env=_env(), timeout=600, check=False)


def timed(*args: str) -> float:
    """Seconds ``syncledger ARGS`` takes from spawn to exit; it must succeed."""
    t0 = time.perf_counter()
    done = run(*args)
    if done.returncode != 0:
        raise SystemExit(f"chaos.py: syncledger {' '.join(args)} failed: {done.stderr[-2000:]}")
    return time.perf_counter() - t0


def killed_at(args: list[str], delay: float, marker: str | None = None) -> float | None:
    """Start ``syncledger ARGS``, SIGKILL it ``delay`` seconds after the spawn (or after
    the stderr line holding ``marker``); None when the kill landed before it ended, else
    the seconds it took (counted the same way)."""
    proc = subprocess.Popen([*SYNCLEDGER, *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE if marker else subprocess.DEVNULL,
                            text=True, cwd=ROOT, env=_env())
    t0 = time.perf_counter()
    if marker is not None:
        assert proc.stderr is not None
        for line in proc.stderr:
            if marker in line:
                t0 = time.perf_counter()
                break
    took: float | None = None
    try:
        proc.wait(timeout=delay)
        took = time.perf_counter() - t0
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
    if proc.stderr is not None:
        proc.stderr.read()  # never leave the child blocked on a full pipe
    proc.wait()
    return None if proc.returncode == -signal.SIGKILL else took


def marker_window(args: list[str], marker: str) -> tuple[float, float]:
    """A clean run of ``syncledger ARGS``: (seconds to the stderr ``marker`` line,
    seconds from there to the exit)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([*SYNCLEDGER, *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT, env=_env())
    assert proc.stderr is not None
    ready = None
    for line in proc.stderr:
        if ready is None and marker in line:
            ready = time.perf_counter()
    if proc.wait() != 0 or ready is None:
        raise SystemExit(f"chaos.py: syncledger {' '.join(args)} failed")
    return ready - t0, time.perf_counter() - ready


# --- ledgers -----------------------------------------------------------------------


class Ledgers:
    """Fresh ledger URLs on one store kind, removed afterwards."""

    def __init__(self, kind: str, folder: Path, pg_base: str) -> None:
        self.kind, self.folder, self.pg_base = kind, folder, pg_base
        self.schemas: list[str] = []

    def new(self, name: str) -> str:
        if self.kind == "sqlite":
            return f"sqlite:///{self.folder / (name + '.db')}"
        schema = f"chaos_{uuid.uuid4().hex[:12]}_{name}"
        self.schemas.append(schema)
        return f"{self.pg_base}?schema={schema}"

    def remove(self, url: str) -> None:
        if url.startswith("sqlite:///"):
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(url[len("sqlite:///"):] + suffix).unlink(missing_ok=True)
            return
        schema = url.rsplit("schema=", 1)[1]
        import psycopg

        with psycopg.connect(self.pg_base, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'.encode())
        self.schemas.remove(schema)

    def close(self) -> None:
        for schema in list(self.schemas):
            self.remove(f"{self.pg_base}?schema={schema}")


@contextmanager
def opened(url: str) -> Iterator[Store]:
    store = Store.open(url)
    try:
        yield store
    finally:
        store.close()


def event_count(url: str) -> int:
    with opened(url) as store:
        return int(store.query(f"SELECT COUNT(*) FROM {store._events}")[0][0])


def whole_ledger(url: str) -> Fingerprint:
    with opened(url) as store:
        return ledger(store)


# --- sync runs read the clock and the emulators' counters: those values are left out ---

_STAMP = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:?\d\d)?")


class Volatile:
    """Replaces what differs between two equally good sync runs: timestamps taken from
    the clock during this script's run (observation and event times, ``linked_at``...)
    by ``<clock>``, and every ``version`` (a Graph changeKey, a Salesforce
    SystemModstamp, an aggregate's event count) by ``<version>``: the emulators number
    changeKeys by a counter every save bumps, and an update re-sent after a crash (the
    outbox sends updates again, they are idempotent) is one save more."""

    def __init__(self) -> None:
        self.since = datetime.now(UTC) - timedelta(minutes=10)

    def _is_clock(self, text: str) -> bool:
        if not _STAMP.fullmatch(text):
            return False
        try:
            when = datetime.fromisoformat(re.sub(r"([+-]\d\d)(\d\d)$", r"\1:\2", text))
        except ValueError:
            return False
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return self.since <= when <= datetime.now(UTC) + timedelta(minutes=10)

    def __call__(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: "<version>" if k == "version" else self(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self(v) for v in value]
        if isinstance(value, str) and self._is_clock(value):
            return "<clock>"
        return value

    def canon(self, value: Any) -> str:
        return orjson.dumps(self(value), option=orjson.OPT_SORT_KEYS).decode()


#: Read models a sync's outcome is compared by: all but the daily counts of
#: observations recorded, which count how often the pulls saw a change (see ``sync_log``).
SYNC_MODELS = tuple(t for t in READ_MODELS if t != "proj_analytics_daily")


def sync_outcome(url: str, volatile: Volatile) -> Fingerprint:
    """What a sync must end with: the index and quarantine rows, the read models and
    every meeting's state (``syncledger state``), volatile values left out."""
    with opened(url) as store:
        out = side_rows(store)
        for part, counted in read_models(store, SYNC_MODELS).items():
            out[part] = Counter({volatile.canon(orjson.loads(r)): n for r, n in counted.items()})
        meetings = store.query(f"SELECT DISTINCT originator_id FROM {store._events} "
                               "WHERE topic LIKE ?", ("ledger.meeting:%",))
        for (oid,) in meetings:
            view = meeting_state(store, UUID(str(oid)))
            out[f"state:{str(oid).replace('-', '')}"] = Counter([volatile.canon(view)])
    return out


def sync_log(url: str, volatile: Volatile) -> Fingerprint:
    """The event log, volatile values left out. Not part of the comparison: it records
    what each pull saw, and a resumed sync may see the killed run's writes in fewer or
    more pulls than a clean run does (an Event's relation and WhoId written by the killed
    run, seen in one observation instead of two), a history as true as the clean one."""
    out: Fingerprint = {}
    with opened(url) as store:
        after = 0
        while rows := store.read_log(after, 5000):
            for position, oid, _version, topic, state in rows:
                data = orjson.loads(state)
                data.pop("originator_version", None)
                out.setdefault(f"events:{oid.replace('-', '')}", Counter())[
                    volatile.canon([topic, data])] += 1
                after = position
    return out


# --- the kinds ---------------------------------------------------------------------


@dataclass
class Trial:
    """What one kill-and-resume found."""

    killed: bool
    partial: bool
    lost: int
    duplicated: int
    diverged: list[str]
    seen: Fingerprint = field(default_factory=dict)  # the resumed run's fingerprint
    log: list[str] = field(default_factory=list)  # parts of the event log that differ
    seen_log: Fingerprint = field(default_factory=dict)  # sync: its event log, compared apart


def _log_parts(parts: list[str]) -> list[str]:
    """The parts of a whole-ledger fingerprint that are the event log."""
    return [p for p in parts if p.startswith("events:")]


class Kind:
    """Set-up once per store (the clean run), then trials."""

    name = ""
    marker: str | None = None

    def __init__(self, ledgers: Ledgers, folder: Path, args: argparse.Namespace) -> None:
        self.ledgers, self.folder, self.args = ledgers, folder, args
        self.clean: Fingerprint = {}
        self.clean_log: Fingerprint = {}  # sync: the clean run's event log
        self.control: list[str] = []  # parts two clean runs differ in (must be none)
        self.startup = 0.0  # the draw's lower end (after the spawn, or after the marker)
        self.duration = 0.0  # the draw's upper end

    def prepare(self) -> None:
        raise NotImplementedError

    def trial(self, rng: random.Random) -> Trial:
        raise NotImplementedError

    def settle(self, runs: list[tuple[float, Fingerprint]]) -> None:
        """Two clean runs: the first is the reference, the shorter one's duration the
        draw's upper end (load from elsewhere only lengthens a run), and what differs
        between them (the control: it must be nothing) is kept."""
        self.duration = min(took for took, _ in runs)
        self.clean = runs[0][1]
        self.control = compare(runs[0][1], runs[1][1]).diverged

    def shoot(self, args: list[str], rng: random.Random) -> bool:
        """Run ``syncledger ARGS`` and kill it at a delay drawn in the working time; True
        when the kill landed mid-work. A run that ended first was shorter than the clean
        ones (load from elsewhere varies): its time becomes the draw's upper end."""
        took = killed_at(args, rng.uniform(self.startup, max(self.startup, self.duration)),
                         self.marker)
        if took is not None:
            self.duration = max(self.startup, min(self.duration, took))
        return took is None

    def close(self) -> None:
        """Remove what ``prepare`` kept."""


class IngestKind(Kind):
    name = "ingest"

    def prepare(self) -> None:
        self.feed = self.folder / "ingest-feed.jsonl"
        if not self.feed.exists():
            write_feed(self.feed, self.args.observations, self.args.seed)
        empty = self.folder / "empty.jsonl"
        empty.touch()
        starts = []
        for _ in range(2):
            nothing = self.ledgers.new("startup")
            starts.append(timed("ingest", str(empty), "--db", nothing))
            self.ledgers.remove(nothing)
        self.startup = min(starts)
        runs = []
        for _ in range(2):
            url = self.ledgers.new("clean")
            took = timed("ingest", str(self.feed), "--db", url)
            timed("project", "--db", url)
            runs.append((took, whole_ledger(url)))
            self.events = event_count(url)
            self.ledgers.remove(url)
        self.settle(runs)

    def trial(self, rng: random.Random) -> Trial:
        url = self.ledgers.new("trial")
        try:
            killed = self.shoot(["ingest", str(self.feed), "--db", url], rng)
            partial = 0 < event_count(url) < self.events
            timed("ingest", str(self.feed), "--db", url)  # the resume
            timed("project", "--db", url)
            seen = whole_ledger(url)
            diff = compare(self.clean, seen)
        finally:
            self.ledgers.remove(url)
        return Trial(killed, partial, diff.lost, diff.duplicated, diff.diverged, seen,
                     log=_log_parts(diff.diverged))


class ProjectKind(Kind):
    name = "project"

    def prepare(self) -> None:
        feed = self.folder / "project-feed.jsonl"
        if not feed.exists():
            write_feed(feed, self.args.project_observations, self.args.seed + 1)
        self.url = self.ledgers.new("project")
        timed("ingest", str(feed), "--db", self.url)
        runs = []
        for _ in range(2):
            self._drop()
            runs.append((timed("project", "--db", self.url), whole_ledger(self.url)))
        self.startup = min(timed("project", "--db", self.url) for _ in range(2))  # caught up
        self.settle(runs)
        with opened(self.url) as store:
            self.head = store.max_position()

    def _drop(self) -> None:
        with opened(self.url) as store:
            runner.drop(store)

    def trial(self, rng: random.Random) -> Trial:
        self._drop()
        killed = self.shoot(["project", "--db", self.url], rng)
        with opened(self.url) as store:
            done = runner.positions(store).values()
        partial = 0 < sum(done) < self.head * len(runner.selected(None))
        timed("project", "--db", self.url)  # the resume
        seen = whole_ledger(self.url)
        diff = compare(self.clean, seen)
        return Trial(killed, partial, diff.lost, diff.duplicated, diff.diverged, seen,
                     log=_log_parts(diff.diverged))

    def close(self) -> None:
        self.ledgers.remove(self.url)


class SyncKind(Kind):
    name = "sync"
    marker = "emulators up"

    def _args(self, url: str, state: Path) -> list[str]:
        return ["sync", "--sandbox", "--db", url, "--cloud-state", str(state)]

    def _fingerprint(self, url: str, state: Path) -> Fingerprint:
        timed("project", "--db", url)
        return {**sync_outcome(url, self.volatile), **cloud(json.loads(state.read_text()))}

    def prepare(self) -> None:
        self.volatile = Volatile()
        runs, logs = [], []
        for _ in range(2):
            url, state = self.ledgers.new("clean"), self.folder / "clean.cloud.json"
            state.unlink(missing_ok=True)  # a new cloud, as for each trial
            _, took = marker_window(self._args(url, state), self.marker)
            runs.append((took, self._fingerprint(url, state)))
            logs.append(sync_log(url, self.volatile))
            self.events = event_count(url)
            self.ledgers.remove(url)
        self.settle(runs)
        self.clean_log = logs[0]
        self.control += compare(logs[0], logs[1]).diverged

    def trial(self, rng: random.Random) -> Trial:
        url, state = self.ledgers.new("trial"), self.folder / "trial.cloud.json"
        state.unlink(missing_ok=True)
        try:
            killed = self.shoot(self._args(url, state), rng)
            partial = 0 < event_count(url) < self.events
            resumed = run(*self._args(url, state))
            if resumed.returncode != 0:
                return Trial(killed, partial, 0, 0, [f"resume exit {resumed.returncode}"])
            seen = self._fingerprint(url, state)
            diff = compare(self.clean, seen)
            seen_log = sync_log(url, self.volatile)
            log = compare(self.clean_log, seen_log).diverged
            again = run(*self._args(url, state), "--json")
            writes = json.loads(again.stdout)["emulator_writes"] if again.returncode == 0 \
                else ["failed"]
            if writes:  # converged: a further sync has nothing left to write
                diff.diverged.append(f"further sync wrote {len(writes)}")
        finally:
            self.ledgers.remove(url)
        return Trial(killed, partial, diff.lost, diff.duplicated, diff.diverged, seen, log,
                     seen_log)


KIND_CLASSES: dict[str, Callable[[Ledgers, Path, argparse.Namespace], Kind]] = {
    "ingest": IngestKind, "project": ProjectKind, "sync": SyncKind}


def run_kind(store: str, kind: str, trials: int, args: argparse.Namespace,
             folder: Path, rng: random.Random) -> Row:
    """The clean run, then ``trials`` kill-and-resume trials of one kind on one store."""
    row = Row(store, kind)
    ledgers = Ledgers(store, folder, args.pg_url)
    t0 = time.perf_counter()
    work = KIND_CLASSES[kind](ledgers, folder, args)
    try:
        work.prepare()
        row.clean_seconds, row.startup_seconds = work.duration, work.startup
        row.control = work.control
        for _ in range(trials):
            found = work.trial(rng)
            row.trials += 1
            row.killed += found.killed
            row.partial += found.partial
            row.lost += found.lost
            row.duplicated += found.duplicated
            row.diverged += bool(found.diverged)
            row.log_differs += bool(found.log)
            row.parts.update(found.diverged)
            if args.verbose and (found.diverged or found.log):
                show(work, found)
    finally:
        work.close()
        ledgers.close()
    row.seconds = time.perf_counter() - t0
    return row


def show(work: Kind, found: Trial) -> None:
    """What one trial's resumed run lacks and has too much of, per part (``--verbose``)."""
    print(f"trial: killed={found.killed} partial={found.partial} lost={found.lost} "
          f"duplicated={found.duplicated}", file=sys.stderr)
    apart = [(p, work.clean_log, found.seen_log) for p in found.log if found.seen_log]
    for part, clean, seen in [(p, work.clean, found.seen) for p in found.diverged] + apart:
        want, got = clean.get(part, Counter()), seen.get(part, Counter())
        print(f"  {part}", file=sys.stderr)
        missing, extra = want - got, got - want
        if len(missing) == len(extra) == 1:  # one row changed: say which values
            print("    changed: " + _changed(next(iter(missing)), next(iter(extra))),
                  file=sys.stderr)
            continue
        for sign, rows in (("-", missing), ("+", extra)):
            for row, n in list(rows.items())[:3]:
                print(f"    {sign}{n} {row[:400]}", file=sys.stderr)


def _changed(before: str, after: str) -> str:
    """The values that differ between two canonical JSON rows, by path."""
    out: list[str] = []

    def walk(a: Any, b: Any, path: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for k in sorted(set(a) | set(b)):
                walk(a.get(k), b.get(k), f"{path}.{k}")
        elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            for i, (x, y) in enumerate(zip(a, b, strict=True)):
                walk(x, y, f"{path}[{i}]")
        elif a != b:
            out.append(f"{path}: {a!r} -> {b!r}")

    try:
        walk(orjson.loads(before), orjson.loads(after), "")
    except orjson.JSONDecodeError:  # a digest: nothing to say but that it differs
        return f"{before} -> {after}"
    return "; ".join(out)


def table(rows: list[Row]) -> str:
    head = (f"{'store':<11}{'kind':<9}{'trials':>7}{'killed':>8}{'partial':>9}{'lost':>6}"
            f"{'duplicated':>12}{'diverged':>10}{'log differs':>13}{'kill window':>14}"
            f"{'wall':>7}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r.store:<11}{r.kind:<9}{r.trials:>7}{r.killed:>8}{r.partial:>9}"
                     f"{r.lost:>6}{r.duplicated:>12}{r.diverged:>10}{r.log_differs:>13}"
                     f"{f'{r.startup_seconds:.1f}-{r.clean_seconds:.1f}s':>14}{r.seconds:>6.0f}s")
        for part, n in r.parts.most_common(5):
            lines.append(f"    differs: {part} ({n} trials)")
        if r.control:
            lines.append(f"    two clean runs differ too: {', '.join(r.control[:5])}")
    return "\n".join(lines)


def _names(text: str, allowed: tuple[str, ...], what: str) -> list[str]:
    chosen = [x.strip() for x in text.split(",") if x.strip()]
    if "all" in chosen or "both" in chosen:
        return list(allowed)
    for x in chosen:
        if x not in allowed:
            raise argparse.ArgumentTypeError(f"unknown {what} {x!r}: one of {', '.join(allowed)}")
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="chaos.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=20, metavar="N",
                        help="trials per kind on SQLite (default 20)")
    parser.add_argument("--pg-trials", type=int, default=5, metavar="N",
                        help="trials per kind on PostgreSQL (default 5)")
    parser.add_argument("--kinds", default="ingest,project,sync",
                        type=lambda t: _names(t, KINDS, "kind"),
                        help="comma-separated: ingest, project, sync (default all)")
    parser.add_argument("--store", default="both", type=lambda t: _names(t, STORES, "store"),
                        help="sqlite, postgresql or both (default both)")
    parser.add_argument("--seed", type=int, default=1,
                        help="random seed: the feeds and the kill delays (default 1)")
    parser.add_argument("--observations", type=int, default=6000, metavar="N",
                        help="lines of the ingest kind's feed (default 6,000)")
    parser.add_argument("--project-observations", type=int, default=30_000, metavar="N",
                        help="lines of the feed the project kind's ledger holds (default 30,000)")
    parser.add_argument("--pg-url", default=PG_BASE,
                        help=f"PostgreSQL database; each ledger gets a schema of its own, "
                             f"dropped afterwards (default {PG_BASE})")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.add_argument("--verbose", action="store_true",
                        help="print what differs in each trial that diverged or whose log "
                             "differs (stderr)")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    rows: list[Row] = []
    folder = Path(tempfile.mkdtemp(prefix="chaos-"))
    try:
        for store in args.store:
            n = args.trials if store == "sqlite" else args.pg_trials
            for kind in args.kinds:
                rows.append(run_kind(store, kind, n, args, folder, rng))
                print(f"{store} {kind}: {rows[-1].trials} trials, {rows[-1].killed} killed, "
                      f"{rows[-1].lost} lost, {rows[-1].duplicated} duplicated, "
                      f"{rows[-1].diverged} diverged", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if args.json:
        print(json.dumps([{**asdict(r), "parts": dict(r.parts)} for r in rows], indent=2))
    else:
        print(table(rows))
    return 1 if any(r.lost or r.duplicated or r.diverged or r.control for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
