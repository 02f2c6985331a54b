#!/usr/bin/env python
"""Benchmark syncledger: intake, catch-up, explain/history latency, peak memory.

Generates a synthetic org's raw-observation feed (``benchfeed``: DOMAIN.md
§6 envelopes, deterministic in ``--seed``), then on each store measures

* intake: feed file -> ledger through ``adapters.feed.ingest.ingest_files``, as
  observations/s and events/s, against a raw baseline measured in the same
  run: the same number of rows of the same average size written with
  ``sqlite3.executemany`` in one transaction (same journal mode and
  ``synchronous`` setting as the store) or with PostgreSQL ``COPY``, best of
  three. The ratio is what the targets are about: this machine is shared, so
  absolute rates move with the load, the ratio much less. A feed this large is
  read by a second process (``adapters.feed.reader_process``), as ``syncledger
  ingest`` reads it;
* catch-up: every projection rebuilt from zero (``projections.runner.rebuild``);
* with ``--rebuild-copies K``: the rebuild and its floor at the intake ledger's
  size and at K times it (the ledger's events copied, see ``grow_ledger``), each
  in a process of its own with its peak RSS: whether a rebuild stays linear;
* explain / history: median and p95 latency of ``projections.explain.explain``
  and ``projections.timeline.timeline`` for ids of each kind (Exchange item
  id, Salesforce Event id, iCalUId) picked from the ledger;
* peak RSS of an intake subprocess at several feed sizes (SQLite), to show
  memory does not grow with the feed (the feed reader process is counted too);
* with ``--profile``: intake and catch-up of a prefix of the feed under
  cProfile, summed into areas (``benchprofile``): where the time goes.

Figures go to stdout (``--json``: one JSON document), progress to stderr.
Not a test: it asserts nothing, it measures.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for p in (str(ROOT), str(HERE)):
    if p not in sys.path:
        sys.path.insert(0, p)

import benchprofile  # noqa: E402
from benchfeed import write_feed  # noqa: E402
from eventsourcing.domain import CanMutateAggregate  # noqa: E402
from eventsourcing.persistence import StoredEvent  # noqa: E402

from adapters.feed.ingest import ingest_files  # noqa: E402
from ledger.store import Store, StoreURL  # noqa: E402

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "dbname": "test"}
TARGETS = {"intake_vs_executemany": 0.5, "intake_vs_copy": 0.4, "catch_up_sqlite": 100_000,
           "explain_ms": 100.0, "peak_rss_mb": 300.0, "rebuild_of_floor": 0.5,
           "rebuild_rate_ratio": 0.8}
ID_KINDS = ("exchange", "salesforce", "ical")
BASELINE_RUNS = 3

_started = time.monotonic()


def log(message: str) -> None:
    """Progress line on stderr (stdout carries only the figures)."""
    print(f"[{time.monotonic() - _started:7.1f}s] {message}", file=sys.stderr, flush=True)


# --- stores -------------------------------------------------------------------


def pg_admin(statement: str) -> None:
    import psycopg

    with psycopg.connect(**PG, autocommit=True) as conn:  # type: ignore[arg-type]
        conn.execute(statement.encode())


class BenchStore:
    """A fresh, empty ledger on one kind of store, removed by ``drop``."""

    def __init__(self, kind: str, workdir: Path, name: str) -> None:
        self.kind = kind
        if kind == "sqlite":
            self.path = workdir / f"{name}.db"
            for suffix in ("", "-wal", "-shm"):
                Path(str(self.path) + suffix).unlink(missing_ok=True)
            self.url = str(StoreURL(kind="sqlite", path=str(self.path)))
        else:
            self.schema = f"bench_{uuid.uuid4().hex[:12]}"
            self.url = (f"postgresql://{PG['user']}@{PG['host']}:{PG['port']}/{PG['dbname']}"
                        f"?schema={self.schema}")
        self.store = Store.open(self.url)

    def events(self) -> tuple[int, float]:
        """(rows, average bytes per row: topic + state + ids) of the event table."""
        table = self.store._events
        size = "length(topic) + length(state)" if self.kind == "sqlite" else \
            "octet_length(topic) + octet_length(state)"
        rows = self.store.query(f"SELECT COUNT(*), AVG({size}) FROM {table}")
        return int(rows[0][0]), float(rows[0][1] or 0)

    def drop(self) -> None:
        self.store.close()
        from projections.runner import _engines

        engine = _engines.pop(self.store, None)
        if engine is not None:
            engine.dispose()
        if self.kind == "postgresql":
            pg_admin(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
        else:
            for suffix in ("", "-wal", "-shm"):
                Path(str(self.path) + suffix).unlink(missing_ok=True)


# --- raw baselines --------------------------------------------------------------


Row = tuple[str, int, str, bytes]


def synthetic_rows(count: int, avg_size: float, topic: str) -> Iterator[Row]:
    """``count`` rows shaped like stored events: ~12 versions per originator,
    states of the measured average size (topic + state) so bytes written match."""
    state = os.urandom(max(round(avg_size) - len(topic), 1))
    originator = uuid.uuid4()
    for i in range(count):
        if i % 12 == 0:
            originator = uuid.uuid4()
        yield originator.hex, i % 12 + 1, topic, state


def sqlite_settings(store: Store) -> tuple[str, int]:
    """(journal_mode, synchronous) of the store's own connections."""
    rows = store.query("PRAGMA journal_mode")
    journal = str(rows[0][0])
    sync = int(store.query("PRAGMA synchronous")[0][0])
    return journal, sync


def raw_sqlite(workdir: Path, count: int, avg_size: float, topic: str,
               journal: str, sync: int) -> float:
    """Seconds to ``executemany`` the rows into a stored_events-shaped table, one commit."""
    path = workdir / "raw_baseline.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(f"PRAGMA journal_mode={journal}")
    conn.execute(f"PRAGMA synchronous={sync}")
    conn.execute("CREATE TABLE stored_events (originator_id TEXT, originator_version INTEGER, "
                 "topic TEXT, state BLOB, PRIMARY KEY (originator_id, originator_version))")
    rows = synthetic_rows(count, avg_size, topic)
    t = time.perf_counter()
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO stored_events VALUES (?,?,?,?)", rows)
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - t
    conn.close()
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    return elapsed


def raw_copy(schema: str, events_table: str, count: int, avg_size: float, topic: str) -> float:
    """Seconds to ``COPY`` the rows into a table like the store's events table, one commit."""
    import psycopg

    with psycopg.connect(**PG) as conn:  # type: ignore[arg-type]
        conn.execute(f'CREATE TABLE "{schema}".raw_baseline (LIKE "{schema}"."{events_table}" '
                     "INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES)".encode())
        conn.commit()
        rows = synthetic_rows(count, avg_size, topic)
        t = time.perf_counter()
        with conn.cursor() as cur, cur.copy(
                f'COPY "{schema}".raw_baseline (originator_id, originator_version, topic, state) '
                "FROM STDIN".encode()) as copy:
            for oid, version, top, state in rows:
                copy.write_row((oid, version, top, state))
        conn.commit()
        elapsed = time.perf_counter() - t
        conn.execute(f'DROP TABLE "{schema}".raw_baseline'.encode())
        conn.commit()
    return elapsed


# --- measurements ----------------------------------------------------------------------


def cpu_seconds(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def postgres_cpu_seconds() -> float:
    """CPU time of the local PostgreSQL server's processes (all of them, as root sees them)."""
    total = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        name, rest = stat.split("(", 1)[1].rsplit(")", 1)
        if name.startswith("postgres"):
            fields = rest.split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def measure_intake(bench: BenchStore, feed: Path, workdir: Path) -> dict[str, Any]:
    log(f"{bench.kind}: intake of {feed.name}")
    cpu = (cpu_seconds(resource.RUSAGE_SELF), cpu_seconds(resource.RUSAGE_CHILDREN),
           postgres_cpu_seconds() if bench.kind == "postgresql" else 0.0)
    t = time.perf_counter()
    result = ingest_files(bench.store, [feed], show_progress=False)
    elapsed = time.perf_counter() - t
    cpu_used = {"main_process_cpu_s": round(cpu_seconds(resource.RUSAGE_SELF) - cpu[0], 2),
                "feed_reader_cpu_s": round(cpu_seconds(resource.RUSAGE_CHILDREN) - cpu[1], 2)}
    if bench.kind == "postgresql":
        cpu_used["postgres_server_cpu_s"] = round(postgres_cpu_seconds() - cpu[2], 2)
    rows, avg = bench.events()
    topic = "ledger.meeting:Meeting.ExchangeItemObserved"
    log(f"{bench.kind}: {result.read:,} observations, {rows:,} events in {elapsed:.1f}s; "
        "raw baseline")
    # The baseline is short, so one slow moment of a shared machine moves it a
    # lot: the best of three is taken (which, if anything, lowers the ratio).
    if bench.kind == "sqlite":
        journal, sync = sqlite_settings(bench.store)
        raw = min(raw_sqlite(workdir, rows, avg, topic, journal, sync)
                  for _ in range(BASELINE_RUNS))
        baseline = {"baseline": f"sqlite3.executemany, one transaction, best of {BASELINE_RUNS}",
                    "journal_mode": journal, "synchronous": sync}
    else:
        table = str(getattr(bench.store.recorder, "events_table_name", "stored_events"))
        raw = min(raw_copy(bench.schema, table, rows, avg, topic) for _ in range(BASELINE_RUNS))
        baseline = {"baseline": f"psycopg COPY, one transaction, best of {BASELINE_RUNS}"}
    return {
        "observations": result.read, "events": rows, "avg_event_bytes": round(avg, 1),
        "quarantined": result.quarantined, "seconds": round(elapsed, 2),
        "observations_per_s": round(result.read / elapsed), "events_per_s": round(rows / elapsed),
        "raw_seconds": round(raw, 2), "raw_rows_per_s": round(rows / raw),
        "ratio": round(raw / elapsed, 3), **baseline, **cpu_used,
    }


def _decoded_batches(source: Store, batch_events: int
                     ) -> Iterator[list[CanMutateAggregate[uuid.UUID]]]:
    """The source ledger's events, oldest first, as domain event objects, in batches."""
    mapper = source.app.mapper
    after = 0
    while True:
        rows = source.read_log(after, batch_events)
        if not rows:
            return
        after = rows[-1][0]
        yield [mapper.to_domain_event(StoredEvent(  # type: ignore[misc]
            originator_id=uuid.UUID(oid), originator_version=version, topic=topic,
            state=state)) for _, oid, version, topic, state in rows]


def measure_store_path(bench: BenchStore, workdir: Path, observations: int,
                       raw_seconds: float) -> dict[str, Any]:
    """The write half of intake alone: the events intake produced, saved again into an
    empty ledger (encode + insert + commit, batches as intake makes them), with no
    parsing and no deciding; and the same through stock ``eventsourcing`` (its mapper,
    its JSON transcoder, its recorder). Decoding them back into event objects is
    not timed. Same baseline as intake, so the three ratios compare directly."""
    from eventsourcing.application import Application

    rows, _ = bench.events()
    batch = max(round(rows / max(observations, 1) * 2000), 1)
    out: dict[str, Any] = {"events": rows, "batch_events": batch}
    target = BenchStore(bench.kind, workdir, "store_path")
    try:
        log(f"{bench.kind}: store path, ours: {rows:,} events in batches of {batch:,}")
        spent = 0.0
        for events in _decoded_batches(bench.store, batch):
            t = time.perf_counter()
            target.store.rows.insert_rows(target.store.to_rows(events))
            spent += time.perf_counter() - t
        out["ours_seconds"] = round(spent, 2)
        out["ours_ratio"] = round(raw_seconds / spent, 3)
    finally:
        target.drop()
    stock = BenchStore(bench.kind, workdir, "stock")
    env = {k: v for k, v in StoreURL.parse(stock.url).env().items()
           if k != "APPLICATION_RECORDER_TOPIC"}
    stock.store.close()
    app: Application[uuid.UUID] = Application(env=env)
    try:
        log(f"{bench.kind}: store path, stock eventsourcing")
        spent = 0.0
        for events in _decoded_batches(bench.store, batch):
            t = time.perf_counter()
            app.recorder.insert_events([app.mapper.to_stored_event(e) for e in events])
            spent += time.perf_counter() - t
        out["stock_seconds"] = round(spent, 2)
        out["stock_ratio"] = round(raw_seconds / spent, 3)
    finally:
        app.close()
        stock.store = Store.open(stock.url)
        stock.drop()
    return out


def measure_catch_up(bench: BenchStore) -> dict[str, Any]:
    """Every projection rebuilt from zero, and in the same run its floor: reading the
    log in the runner's batches and ``orjson.loads`` of every event, nothing else
    (what any Python catch-up must do before a projection sees an event)."""
    from projections.runner import rebuild

    log(f"{bench.kind}: catch-up of every projection from zero")
    rows, _ = bench.events()
    t = time.perf_counter()
    rebuild(bench.store)
    elapsed = time.perf_counter() - t
    log(f"{bench.kind}: catch-up floor: read the log and decode every event")
    floor = catch_up_floor(bench.store)
    return {"events": rows, "seconds": round(elapsed, 2), "events_per_s": round(rows / elapsed),
            "floor_seconds": round(floor, 2), "floor_events_per_s": round(rows / floor)}


#: Exchange item ids all begin so (``adapters.sandbox.org._graph_id``); a copy of the ledger
#: replaces it by ``AAMk`` + the copy's number in two digits, the same length.
GRAPH_ID_PREFIX = b"AAMkAG"


def grow_ledger(bench: BenchStore, copies: int) -> int:
    """Append ``copies`` copies of the ledger's events (as intake recorded them, in log
    order) under new aggregate ids, each copy's Exchange item ids made distinct (so the
    id mapping grows as an org's would instead of updating the same rows); returns the
    events now in the log. Quicker than ingesting a feed ``copies + 1`` times larger
    (minutes per store), and the projections see real events: each copy's meetings
    fold exactly as the originals, in fresh rows. Only the event table is grown (the
    external-id index and the rest are not needed by projections)."""
    if copies > 99:
        raise ValueError("at most 99 copies (two digits in the Exchange item ids)")
    table = bench.store._events
    oid_column = "originator_id"
    rows = bench.store.query(f"SELECT {oid_column}, originator_version, topic, state "
                             f"FROM {table} ORDER BY "
                             f"{'rowid' if bench.kind == 'sqlite' else 'notification_id'}")
    for k in range(1, copies + 1):
        new_ids: dict[Any, uuid.UUID] = {}
        prefix = b"AAMk%02d" % k
        out = []
        for oid, version, topic, state in rows:
            new = new_ids.get(oid)
            if new is None:
                new = new_ids[oid] = uuid.uuid4()
            out.append((new.hex if bench.kind == "sqlite" else new, version, topic,
                        bytes(state).replace(GRAPH_ID_PREFIX, prefix)))
        _append_events(bench, out)
        log(f"{bench.kind}: copy {k} of {copies} appended")
    return bench.events()[0]


def _append_events(bench: BenchStore, rows: list[tuple[Any, int, str, bytes]]) -> None:
    columns = "originator_id, originator_version, topic, state"
    if bench.kind == "sqlite":
        lite = sqlite3.connect(bench.path, isolation_level=None)
        try:
            lite.execute("BEGIN IMMEDIATE")
            lite.executemany(f"INSERT INTO stored_events ({columns}) VALUES (?,?,?,?)", rows)
            lite.execute("COMMIT")
        finally:
            lite.close()
        return
    import psycopg

    table = str(getattr(bench.store.recorder, "events_table_name", "stored_events"))
    with psycopg.connect(**PG) as pg:  # type: ignore[arg-type]
        with pg.cursor() as cur, cur.copy(
                f'COPY "{bench.schema}"."{table}" ({columns}) FROM STDIN'.encode()) as copy:
            for row in rows:
                copy.write_row(row)
        pg.commit()


def rebuild_child(url: str, per_batch: bool, profile: bool) -> None:
    """(Subprocess) the catch-up floor, then every projection rebuilt from zero (their
    tables dropped first, untimed), on an existing ledger (``per_batch``: then again
    batch by batch; ``profile``: then again under cProfile); prints wall and CPU
    seconds, events, bytes written, peak RSS (and the profile's areas) as JSON."""
    from projections.runner import catch_up, drop, rebuild

    store = Store.open(url)
    cpu = cpu_seconds(resource.RUSAGE_SELF)
    floor = catch_up_floor(store)
    floor_cpu = cpu_seconds(resource.RUSAGE_SELF) - cpu
    drop(store)
    before = peak_rss_kb()
    written, cpu = bytes_written(), cpu_seconds(resource.RUSAGE_SELF)
    t = time.perf_counter()
    rebuild(store)
    elapsed = time.perf_counter() - t
    found: dict[str, Any] = {
        "seconds": elapsed, "cpu_seconds": cpu_seconds(resource.RUSAGE_SELF) - cpu,
        "bytes_written": bytes_written() - written, "floor_seconds": floor,
        "floor_cpu_seconds": floor_cpu, "peak_rss_kb": peak_rss_kb(), "before_rebuild_kb": before,
        "events": int(store.query(f"SELECT COUNT(*) FROM {store._events}")[0][0])}
    if per_batch:  # the live tail's way, from zero, for comparison
        drop(store)
        written = bytes_written()
        t = time.perf_counter()
        catch_up(store, bulk=False)
        found["per_batch_seconds"] = time.perf_counter() - t
        found["per_batch_bytes_written"] = bytes_written() - written
    if profile:  # once more, under cProfile
        drop(store)
        _, stats = benchprofile.profile(lambda: rebuild(store))
        found["profile_areas"] = {k: round(v, 3) for k, v in benchprofile.areas(
            stats, benchprofile.CATCH_UP_RULES).items()}
    print(json.dumps(found))
    store.close()


def bytes_written() -> int:
    """Bytes this process has caused to be written to storage (Linux ``/proc/self/io``;
    SQLite writes from the process itself, PostgreSQL's server does its own)."""
    try:
        for line in Path("/proc/self/io").read_text().splitlines():
            if line.startswith("write_bytes:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def measure_rebuild_scaling(bench: BenchStore, copies: int, per_batch: bool, repeat: int,
                            profile: bool) -> dict[str, Any]:
    """The rebuild and its floor at the ledger's size, then at ``copies + 1`` times it
    (``grow_ledger``); each ``repeat`` times in a fresh process (its own peak RSS, no
    warm caches), keeping the best time of each (other work on a shared machine only
    ever slows a run down). Rates from CPU time too: this process's alone, so they
    barely move with the machine's load (on PostgreSQL they leave out the server's)."""
    out: dict[str, Any] = {"copies": copies, "repeat": repeat}
    for label in ("small", "large"):
        if label == "large":
            log(f"{bench.kind}: growing the ledger by {copies} copies of its events")
            grow_ledger(bench, copies)
        runs = []
        for i in range(repeat):
            log(f"{bench.kind}: rebuild from zero and its floor, {label} ledger, in a "
                f"subprocess ({i + 1} of {repeat})")
            first = i == 0
            proc = subprocess.run([sys.executable, __file__, "--rebuild-child", bench.url,
                                   *(["--rebuild-per-batch"] if per_batch and first else []),
                                   *(["--rebuild-profile"] if profile and first
                                     and label == "large" else [])],
                                  capture_output=True, text=True, check=True)
            runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        n = runs[0]["events"]

        def best(key: str, runs: list[dict[str, Any]] = runs) -> float:
            return min(float(r[key]) for r in runs if key in r)

        seconds, floor = best("seconds"), best("floor_seconds")
        cpu, floor_cpu = best("cpu_seconds"), best("floor_cpu_seconds")
        row: dict[str, Any] = {
            "events": n, "seconds": round(seconds, 2), "events_per_s": round(n / seconds),
            "floor_seconds": round(floor, 2), "floor_events_per_s": round(n / floor),
            "of_floor": round(floor / seconds, 3),
            "cpu_seconds": round(cpu, 2), "cpu_events_per_s": round(n / cpu),
            "floor_cpu_seconds": round(floor_cpu, 2), "cpu_of_floor": round(floor_cpu / cpu, 3),
            "peak_rss_mb": round(max(r["peak_rss_kb"] for r in runs) / 1024, 1),
            "before_rebuild_mb": round(max(r["before_rebuild_kb"] for r in runs) / 1024, 1)}
        if bench.kind == "sqlite":
            row["bytes_written_per_event"] = round(best("bytes_written") / n)
        if per_batch:
            per = best("per_batch_seconds")
            row["per_batch_events_per_s"] = round(n / per)
            row["per_batch_of_floor"] = round(floor / per, 3)
            if bench.kind == "sqlite":
                row["per_batch_bytes_written_per_event"] = round(
                    best("per_batch_bytes_written") / n)
        if "profile_areas" in runs[0]:
            row["profile_areas"] = runs[0]["profile_areas"]
        out[label] = row
    small, large = out["small"], out["large"]
    out["rate_ratio"] = round(large["events_per_s"] / small["events_per_s"], 3)
    out["cpu_rate_ratio"] = round(large["cpu_events_per_s"] / small["cpu_events_per_s"], 3)
    if per_batch:
        out["per_batch_rate_ratio"] = round(large["per_batch_events_per_s"]
                                            / small["per_batch_events_per_s"], 3)
    return out


def catch_up_floor(store: Store) -> float:
    """Seconds to read the log in the runner's batches, with its own query, connection
    and cursor, and ``orjson.loads`` every event: nothing else."""
    import orjson

    from projections.runner import BATCH_SIZE, _log_sql, engine_for

    sql = _log_sql(store)
    conn = engine_for(store).raw_connection()
    try:
        t = time.perf_counter()
        after = 0
        cursor = conn.cursor()
        while True:
            cursor.execute(sql, (after, BATCH_SIZE))
            batch = cursor.fetchall()
            if not batch:
                break
            for row in batch:
                orjson.loads(row[3])
            after = row[0]
        floor = time.perf_counter() - t
        cursor.close()
    finally:
        conn.close()
    return floor


def pick_ids(store: Store, per_kind: int, seed: int) -> dict[str, list[str]]:
    """Ids of each kind from the external-id index, spread over the whole ledger."""
    rng = random.Random(seed)
    prefixes = {"exchange": "exid:", "salesforce": "sf:", "ical": "ical:"}
    out: dict[str, list[str]] = {}
    for kind, prefix in prefixes.items():
        keys = [str(r[0]) for r in store.query(
            "SELECT key FROM {p}meeting_keys WHERE key LIKE ? ORDER BY key", (prefix + "%",))]
        picked = rng.sample(keys, min(per_kind, len(keys)))
        out[kind] = [k[len(prefix):] for k in picked]
    return out


def _stats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"median_ms": round(statistics.median(ordered) * 1000, 2),
            "p95_ms": round(p95 * 1000, 2), "max_ms": round(ordered[-1] * 1000, 2)}


def measure_explain(bench: BenchStore, samples: int, seed: int) -> dict[str, Any]:
    from projections.explain import explain, resolve
    from projections.timeline import timeline

    rows, _ = bench.events()
    ids = pick_ids(bench.store, max(samples // len(ID_KINDS), 1), seed)
    log(f"{bench.kind}: explain/history of {sum(map(len, ids.values()))} ids "
        f"in a ledger of {rows:,} events")
    out: dict[str, Any] = {"ledger_events": rows}
    all_explain: list[float] = []
    all_history: list[float] = []
    for kind, values in ids.items():
        ex: list[float] = []
        hist: list[float] = []
        for value in values:
            t = time.perf_counter()
            explain(bench.store, value)
            ex.append(time.perf_counter() - t)
            t = time.perf_counter()
            timeline(bench.store, resolve(bench.store, value).meeting_id)
            hist.append(time.perf_counter() - t)
        if ex:
            out[kind] = {"ids": len(values), "explain": _stats(ex), "history": _stats(hist)}
        all_explain += ex
        all_history += hist
    out["explain"] = _stats(all_explain)
    out["history"] = _stats(all_history)
    return out


def peak_rss_kb() -> int:
    """This process's peak resident set, in KiB.

    Linux keeps ``ru_maxrss`` across ``execve``, so a child started by a big
    parent would report the parent's peak; ``VmHWM`` is the child's own.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def rss_child(feed: Path, db: Path) -> None:
    """(Subprocess) ingest one feed into a fresh SQLite ledger; print peak RSS as JSON.

    Intake of a large feed runs two processes (this one and its feed reader);
    the figure is the sum of both peaks, as if they had peaked together.
    """
    before = peak_rss_kb()
    read = 0
    if feed.stat().st_size:
        store = Store.open(str(db))
        read = ingest_files(store, [feed], show_progress=False).read
        store.close()
    reader = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    print(json.dumps({"observations": read, "peak_rss_kb": peak_rss_kb() + reader,
                      "reader_peak_kb": reader, "after_imports_kb": before}))


def measure_rss(feed: Path, sizes: list[int], workdir: Path) -> list[dict[str, Any]]:
    """Peak RSS of intake at each size (a prefix of the feed), each in its own process."""
    out = []
    for size in [0, *sizes]:
        part = prefix_of(feed, size, workdir / f"rss_{size}.jsonl")
        db = workdir / f"rss_{size}.db"
        log(f"peak RSS: intake of {size:,} observations in a subprocess")
        proc = subprocess.run([sys.executable, __file__, "--rss-child", str(part), str(db)],
                              capture_output=True, text=True, check=True)
        found = json.loads(proc.stdout.strip().splitlines()[-1])
        out.append({"observations": found["observations"],
                    "peak_rss_mb": round(found["peak_rss_kb"] / 1024, 1),
                    "feed_reader_mb": round(found["reader_peak_kb"] / 1024, 1),
                    "after_imports_mb": round(found["after_imports_kb"] / 1024, 1)})
        for suffix in ("", "-wal", "-shm"):
            Path(str(db) + suffix).unlink(missing_ok=True)
        part.unlink()
    return out


def prefix_of(feed: Path, lines: int, out: Path) -> Path:
    """The feed's first ``lines`` lines, in a file of their own."""
    with feed.open("rb") as src, out.open("wb") as dst:
        for i, line in enumerate(src):
            if i >= lines:
                break
            dst.write(line)
    return out


def measure_reader(part: Path) -> dict[str, Any]:
    """The feed reader's work per line, unprofiled, in this process: the floor (read
    the lines and ``orjson.loads`` each), then what the reader process really does:
    parse + translate (``read_feed``), then the hand-over encoding (``to_record`` +
    ``orjson.dumps``). Best of two runs each."""
    import orjson

    from adapters.feed.envelopes import FeedError, read_feed
    from ledger.observations import to_record

    def json_only() -> int:
        n = 0
        with part.open("rb") as f:
            for line in f:
                orjson.loads(line)
                n += 1
        return n

    def parse() -> int:
        return sum(1 for _ in read_feed(part))

    def hand_over() -> int:
        n = 0
        for _, _, parsed in read_feed(part):
            if not isinstance(parsed, FeedError):
                orjson.dumps(to_record(parsed))
            n += 1
        return n

    out: dict[str, Any] = {}
    for name, fn in (("json_decode", json_only), ("parse_translate", parse),
                     ("parse_translate_hand_over", hand_over)):
        best = float("inf")
        for _ in range(2):
            t = time.perf_counter()
            lines = fn()
            best = min(best, time.perf_counter() - t)
        out[f"{name}_us_per_line"] = round(best / max(lines, 1) * 1e6, 1)
    return out


def measure_profile(feed: Path, workdir: Path, observations: int) -> dict[str, Any]:
    """Intake and catch-up of the feed's first ``observations`` lines under cProfile (SQLite)."""
    from projections.runner import rebuild

    part = prefix_of(feed, observations, workdir / f"profile_{observations}.jsonl")
    bench = BenchStore("sqlite", workdir, "profile")
    try:
        log(f"profile: the feed reader's work on {observations:,} lines, unprofiled")
        reader = measure_reader(part)
        log(f"profile: intake of {observations:,} observations under cProfile")
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        result, stats = benchprofile.profile(
            lambda: ingest_files(bench.store, [part], show_progress=False))
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        rows, _ = bench.events()
        log(f"profile: catch-up of {rows:,} events under cProfile")
        _, cstats = benchprofile.profile(lambda: rebuild(bench.store))
        return {
            "observations": result.read, "events": rows, "reader": reader,
            "reader_process_cpu_s": round(after.ru_utime + after.ru_stime
                                          - before.ru_utime - before.ru_stime, 2),
            "intake_areas": {k: round(v, 3) for k, v in
                             benchprofile.areas(stats, benchprofile.INTAKE_RULES).items()},
            "catch_up_areas": {k: round(v, 3) for k, v in
                               benchprofile.areas(cstats, benchprofile.CATCH_UP_RULES).items()},
        }
    finally:
        bench.drop()
        part.unlink()


# --- report ---------------------------------------------------------------------


def report(summary: dict[str, Any]) -> str:
    lines = [f"syncledger benchmark: {summary['observations']:,} observations, seed "
             f"{summary['seed']}, feed {summary['feed_bytes'] / 1e6:,.0f} MB, "
             f"{summary['cpus']} CPUs", f"command: {summary['command']}", ""]
    for kind, res in summary["stores"].items():
        it = res.get("intake")
        if it:
            lines += [f"[{kind}] intake   {it['observations']:,} obs -> {it['events']:,} events "
                      f"(avg {it['avg_event_bytes']:.0f} B) in {it['seconds']:.1f}s: "
                      f"{it['observations_per_s']:,} obs/s, {it['events_per_s']:,} events/s",
                      f"[{kind}] baseline {it['baseline']}: {it['raw_rows_per_s']:,} rows/s "
                      f"({it['raw_seconds']:.1f}s)",
                      f"[{kind}] ratio    intake / baseline = {it['ratio']:.1%}"]
            target = TARGETS["intake_vs_executemany" if kind == "sqlite" else "intake_vs_copy"]
            used = it["main_process_cpu_s"] + it["feed_reader_cpu_s"] + \
                it.get("postgres_server_cpu_s", 0.0)
            server = (f" + PostgreSQL server {it['postgres_server_cpu_s']:.1f} s"
                      if "postgres_server_cpu_s" in it else "")
            lines.append(
                f"[{kind}] CPU      intake used {used:.1f} s "
                f"(main {it['main_process_cpu_s']:.1f} s + feed reader "
                f"{it['feed_reader_cpu_s']:.1f} s{server}); at the {target:.0%} "
                f"target the run would last {it['raw_seconds'] / target:.1f} s, "
                f"{summary['cpus'] * it['raw_seconds'] / target:.1f} s of CPU on "
                f"{summary['cpus']} cores")
        sp = res.get("store_path")
        if sp:
            lines.append(f"[{kind}] store    the same events saved again, no parsing or "
                         f"deciding (batches of {sp['batch_events']:,}): ours "
                         f"{sp['ours_seconds']:.1f}s = {sp['ours_ratio']:.1%} of baseline; "
                         f"stock eventsourcing {sp['stock_seconds']:.1f}s = "
                         f"{sp['stock_ratio']:.1%}")
        cu = res.get("catch_up")
        if cu:
            lines.append(f"[{kind}] catch-up {cu['events']:,} events in {cu['seconds']:.1f}s: "
                         f"{cu['events_per_s']:,} events/s; floor (read the log + "
                         f"orjson.loads, nothing else) {cu['floor_events_per_s']:,} events/s")
        rs = res.get("rebuild_scaling")
        if rs:
            for label in ("small", "large"):
                r = rs[label]
                lines.append(f"[{kind}] rebuild  {r['events']:,} events from zero in "
                             f"{r['seconds']:.1f}s: {r['events_per_s']:,} events/s; floor "
                             f"{r['floor_events_per_s']:,} events/s; rebuild / floor = "
                             f"{r['of_floor']:.1%} (by CPU time {r['cpu_of_floor']:.1%}: "
                             f"{r['cpu_events_per_s']:,} events per CPU second); peak RSS "
                             f"{r['peak_rss_mb']:,.0f} MB ({r['before_rebuild_mb']:,.0f} MB "
                             "before it)"
                             + (f"; {r['bytes_written_per_event']:,} bytes written an event"
                                if "bytes_written_per_event" in r else ""))
            lines.append(f"[{kind}] rebuild  rate at {rs['large']['events']:,} / rate at "
                         f"{rs['small']['events']:,} = {rs['rate_ratio']:.1%} (by CPU time "
                         f"{rs['cpu_rate_ratio']:.1%}; best of {rs.get('repeat', 1)} each; the "
                         f"larger ledger: {rs['copies']} copies of the smaller one's events "
                         "added)")
            if "per_batch_rate_ratio" in rs:
                for label in ("small", "large"):
                    r = rs[label]
                    written = (f", {r['per_batch_bytes_written_per_event']:,} bytes written "
                               "an event" if "per_batch_bytes_written_per_event" in r else "")
                    lines.append(f"[{kind}] per-batch catch-up from zero, {r['events']:,} "
                                 f"events: {r['per_batch_events_per_s']:,} events/s = "
                                 f"{r['per_batch_of_floor']:.1%} of the floor{written}")
                lines.append(f"[{kind}] per-batch rate at {rs['large']['events']:,} / rate "
                             f"at {rs['small']['events']:,} = {rs['per_batch_rate_ratio']:.1%}")
            if "profile_areas" in rs["large"]:
                lines += benchprofile.report(
                    f"[{kind}] rebuild of {rs['large']['events']:,} events from zero, "
                    "cProfile (shares approximate)", rs["large"]["profile_areas"],
                    rs["large"]["events"], "event")
        ex = res.get("explain")
        if ex:
            lines.append(f"[{kind}] explain  ledger of {ex['ledger_events']:,} events: median "
                         f"{ex['explain']['median_ms']} ms, p95 {ex['explain']['p95_ms']} ms; "
                         f"history median {ex['history']['median_ms']} ms, "
                         f"p95 {ex['history']['p95_ms']} ms")
            for k in ID_KINDS:
                if k in ex:
                    lines.append(f"           by {k:<10} ({ex[k]['ids']} ids): explain p95 "
                                 f"{ex[k]['explain']['p95_ms']} ms, history p95 "
                                 f"{ex[k]['history']['p95_ms']} ms")
        lines.append("")
    for row in summary.get("rss", []):
        lines.append(f"peak RSS  {row['observations']:>10,} observations: "
                     f"{row['peak_rss_mb']:7.1f} MB (intake + feed reader "
                     f"{row['feed_reader_mb']} MB; after imports {row['after_imports_mb']} MB)")
    prof = summary.get("profile")
    if prof:
        intake = summary["stores"].get("sqlite", {}).get("intake")
        base = intake["raw_seconds"] / intake["observations"] * 1e6 if intake else None
        lines += ["", f"profile (SQLite, first {prof['observations']:,} observations, "
                      f"{prof['events']:,} events; cProfile, so shares are approximate)"]
        lines += benchprofile.report("intake, main process", prof["intake_areas"],
                                     prof["observations"], "observation", base)
        lines.append(f"  (+ the feed reader process: {prof['reader_process_cpu_s']:.1f} s CPU, "
                     "on the other core)")
        rd = prof["reader"]
        lines.append(f"feed reader, per line, unprofiled: orjson.loads alone "
                     f"{rd['json_decode_us_per_line']} µs; parse + translate "
                     f"{rd['parse_translate_us_per_line']} µs; + hand-over encoding "
                     f"{rd['parse_translate_hand_over_us_per_line']} µs")
        lines += budget_lines(summary, rd)
        lines += benchprofile.report("catch-up", prof["catch_up_areas"], prof["events"], "event")
    lines += ["", "targets:"] + [f"  {k}: {v}" for k, v in summary["targets"].items()]
    return "\n".join(lines)


def budget_lines(summary: dict[str, Any], reader: dict[str, Any]) -> list[str]:
    """What the intake target leaves per observation, against what the work costs.

    Per observation: the target's wall time (the raw baseline's time / the target
    ratio) and the CPU of every core over that time; the floor any Python intake
    pays whatever its rules (``orjson.loads`` of the line, and saving its events:
    the store path); what that leaves for translating and deciding; and what
    they cost here (the reader's work beyond JSON decoding, plus the main
    process's CPU beyond saving). Optimistic for the target: it assumes
    perfect overlap on all cores and counts the store path's wall time as CPU.
    """
    lines: list[str] = []
    cpus = summary["cpus"]
    for kind, res in summary["stores"].items():
        it, sp = res.get("intake"), res.get("store_path")
        if not it or not sp:
            continue
        target = TARGETS["intake_vs_executemany" if kind == "sqlite" else "intake_vs_copy"]
        n = it["observations"]
        wall = it["raw_seconds"] / target / n * 1e6
        json_us = reader["json_decode_us_per_line"]
        save_us = sp["ours_seconds"] / n * 1e6
        left = cpus * wall - json_us - save_us
        translate = reader["parse_translate_hand_over_us_per_line"] - json_us
        decide = it["main_process_cpu_s"] / n * 1e6 - save_us
        lines.append(
            f"[{kind}] budget at the {target:.0%} target: {wall:.0f} µs an observation, "
            f"{cpus * wall:.0f} µs of CPU on {cpus} cores; floor: orjson.loads {json_us:.0f} µs "
            f"+ saving the events {save_us:.0f} µs; left for translating and deciding "
            f"{left:.0f} µs; they cost {translate:.0f} µs (reader) + {decide:.0f} µs "
            f"(main, beyond saving) = {translate + decide:.0f} µs, "
            f"{(translate + decide) / max(left, 1e-9):.1f}x what is left")
    return lines


def targets(summary: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    stores = summary["stores"]

    def verdict(ok: bool, text: str) -> str:
        return ("met     " if ok else "NOT met ") + text

    if "intake" in stores.get("sqlite", {}):
        r = stores["sqlite"]["intake"]["ratio"]
        out["intake >= 50% of executemany"] = verdict(
            r >= TARGETS["intake_vs_executemany"], f"{r:.1%}")
    if "intake" in stores.get("postgresql", {}):
        r = stores["postgresql"]["intake"]["ratio"]
        out["intake >= 40% of COPY"] = verdict(r >= TARGETS["intake_vs_copy"], f"{r:.1%}")
    if "catch_up" in stores.get("sqlite", {}):
        v = stores["sqlite"]["catch_up"]["events_per_s"]
        out["catch-up >= 100,000 events/s (SQLite)"] = verdict(
            v >= TARGETS["catch_up_sqlite"], f"{v:,}/s")
    for kind, res in stores.items():
        rs = res.get("rebuild_scaling")
        if rs:
            large = rs["large"]
            out[f"rebuild at {large['events']:,} >= 50% of its floor ({kind})"] = verdict(
                large["of_floor"] >= TARGETS["rebuild_of_floor"], f"{large['of_floor']:.1%}")
            out[f"rebuild rate at {large['events']:,} >= 80% of rate at "
                f"{rs['small']['events']:,} ({kind})"] = verdict(
                rs["rate_ratio"] >= TARGETS["rebuild_rate_ratio"], f"{rs['rate_ratio']:.1%}")
    for kind, res in stores.items():
        if "explain" in res:
            ex = res["explain"]
            worst = ex["explain"]["p95_ms"]
            out[f"explain < 100 ms ({kind}, {ex['ledger_events']:,} events)"] = verdict(
                worst < TARGETS["explain_ms"], f"p95 {worst} ms")
    if summary.get("rss"):
        peak = max(r["peak_rss_mb"] for r in summary["rss"])
        out["peak RSS < 300 MB"] = verdict(peak < TARGETS["peak_rss_mb"], f"max {peak} MB")
    return out


# --- main -------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="scripts/bench.py", description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog="Example (the README figures): python scripts/bench.py --observations 1000000 "
               "--store both --out /tmp/bench. Quick run: --observations 50000 --skip-rss.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--observations", type=int, default=100_000, metavar="N",
                    help="feed lines to generate and ingest (default 100,000; the targets are "
                         "stated for 1,000,000)")
    ap.add_argument("--store", choices=("sqlite", "postgresql", "both", "none"), default="both",
                    help="which store(s) to measure (default both); PostgreSQL at "
                         "127.0.0.1:5432 (user postgres, db test) in a fresh schema "
                         "bench_<random>, dropped afterwards; none: only the peak-RSS "
                         "(and --profile) measurements")
    ap.add_argument("--seed", type=int, default=1, help="feed generator seed (default 1)")
    ap.add_argument("--explain-events", type=int, default=0, metavar="N",
                    help="measure explain/history on a separate SQLite ledger of at least N events "
                         "(default 0: on each store's intake ledger)")
    ap.add_argument("--explain-samples", type=int, default=51, metavar="K",
                    help="ids to explain, split over Exchange/Salesforce/iCalUId (default 51)")
    ap.add_argument("--rss-sizes", default="", metavar="N,N,...",
                    help="feed sizes for the peak-RSS check (default: N/4, N/2, N)")
    ap.add_argument("--skip-explain", action="store_true", help="skip explain/history latency")
    ap.add_argument("--skip-store-path", action="store_true",
                    help="skip re-saving intake's events without parsing or deciding (ours "
                         "and stock eventsourcing)")
    ap.add_argument("--skip-catch-up", action="store_true", help="skip the projection rebuild")
    ap.add_argument("--skip-rss", action="store_true", help="skip the peak-RSS subprocesses")
    ap.add_argument("--profile", action="store_true",
                    help="also profile intake and catch-up (SQLite, a fresh ledger) and print "
                         "where the time goes, by area")
    ap.add_argument("--profile-observations", type=int, default=100_000, metavar="N",
                    help="feed lines the profile ingests (default 100,000, or all if fewer)")
    ap.add_argument("--json", action="store_true", help="print one JSON summary instead of text")
    ap.add_argument("--out", type=Path, metavar="DIR",
                    help="keep the feed and write bench.json here (default: a temporary "
                         "directory, removed afterwards)")
    ap.add_argument("--report", type=Path, metavar="BENCH_JSON",
                    help="print the report of a saved bench.json (from --out) and stop")
    ap.add_argument("--service", action="store_true",
                    help="measure the service instead: one full cycle of 'syncledger worker' "
                         "processes on the emulators (see --service-mailboxes) and stop")
    ap.add_argument("--service-mailboxes", type=int, default=2000, metavar="N",
                    help="with --service: mailboxes in the sandbox org (default 2000)")
    ap.add_argument("--service-latency", type=float, default=0.05, metavar="SECONDS",
                    help="with --service: delay of every emulator answer (default 0.05)")
    ap.add_argument("--service-workers", default="1,2,4", metavar="N,N,...",
                    help="with --service: worker counts to time (default 1,2,4)")
    ap.add_argument("--rebuild-copies", type=int, default=0, metavar="K",
                    help="also time the rebuild from zero (and its floor) at the intake "
                         "ledger's size and after appending K copies of its events under new "
                         "aggregate ids, Exchange item ids distinct per copy (K + 1 times the "
                         "events, without ingesting a K + 1 times larger feed), each in a "
                         "subprocess with its peak RSS; e.g. --observations 83000 "
                         "--rebuild-copies 9 for ~184k and ~1.8M events (default 0: off)")
    ap.add_argument("--rss-child", nargs=2, metavar=("FEED", "DB"), help=argparse.SUPPRESS)
    ap.add_argument("--rebuild-per-batch", action="store_true",
                    help="with --rebuild-copies: also time the batch-by-batch catch-up from "
                         "zero at both sizes (the live tail's path; slow on a large ledger)")
    ap.add_argument("--rebuild-repeat", type=int, default=2, metavar="N",
                    help="with --rebuild-copies: runs at each size, the best kept (default 2)")
    ap.add_argument("--rebuild-profile", action="store_true",
                    help="with --rebuild-copies: also profile one rebuild of the larger ledger "
                         "and print where its time goes, by area")
    ap.add_argument("--rebuild-child", metavar="URL", help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def run(args: argparse.Namespace, workdir: Path, command: str) -> dict[str, Any]:
    feed = workdir / f"feed_{args.observations}_{args.seed}.jsonl"
    log(f"generating {args.observations:,} observations (seed {args.seed}) into {feed}")
    stats = write_feed(feed, args.observations, args.seed)
    log(f"feed: {stats.bytes / 1e6:,.0f} MB, {dict(stats.kinds)}")
    summary: dict[str, Any] = {
        "command": command, "observations": stats.observations, "seed": args.seed,
        "feed_bytes": stats.bytes, "feed_kinds": dict(stats.kinds), "cpus": os.cpu_count(),
        "mailboxes": stats.mailboxes, "product_users": stats.product_users, "stores": {},
    }
    kinds = {"both": ["sqlite", "postgresql"], "none": []}.get(args.store, [args.store])
    for kind in kinds:
        bench = BenchStore(kind, workdir, "ledger")
        res: dict[str, Any] = {}
        try:
            res["intake"] = measure_intake(bench, feed, workdir)
            if not args.skip_store_path:
                res["store_path"] = measure_store_path(
                    bench, workdir, res["intake"]["observations"], res["intake"]["raw_seconds"])
            if not args.skip_catch_up:
                res["catch_up"] = measure_catch_up(bench)
            if not args.skip_explain and not args.explain_events:
                res["explain"] = measure_explain(bench, args.explain_samples, args.seed)
            if args.rebuild_copies:
                res["rebuild_scaling"] = measure_rebuild_scaling(
                    bench, args.rebuild_copies, args.rebuild_per_batch, args.rebuild_repeat,
                    args.rebuild_profile)
        finally:
            bench.drop()
        summary["stores"][kind] = res
    if not args.skip_explain and args.explain_events:
        summary["stores"].setdefault("sqlite", {})["explain"] = explain_ledger(args, workdir)
    if not args.skip_rss:
        sizes = [int(s) for s in args.rss_sizes.split(",") if s.strip()] or \
            sorted({max(args.observations // 4, 1), max(args.observations // 2, 1),
                    args.observations})
        summary["rss"] = measure_rss(feed, sizes, workdir)
    if args.profile:
        summary["profile"] = measure_profile(
            feed, workdir, min(args.profile_observations, args.observations))
    summary["targets"] = targets(summary)
    return summary


def explain_ledger(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """A SQLite ledger of at least ``--explain-events`` events, for explain alone."""
    n = max(int(args.explain_events / 1.6), 1000)
    while True:
        feed = workdir / f"explain_{n}.jsonl"
        write_feed(feed, n, args.seed + 1)
        bench = BenchStore("sqlite", workdir, "explain")
        log(f"explain ledger: intake of {n:,} observations")
        ingest_files(bench.store, [feed], show_progress=False)
        feed.unlink()
        rows, _ = bench.events()
        if rows >= args.explain_events:
            try:
                return measure_explain(bench, args.explain_samples, args.seed)
            finally:
                bench.drop()
        bench.drop()
        n = int(n * args.explain_events / max(rows, 1) * 1.05) + 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.rss_child:
        rss_child(Path(args.rss_child[0]), Path(args.rss_child[1]))
        return 0
    if args.rebuild_child:
        rebuild_child(args.rebuild_child, args.rebuild_per_batch, args.rebuild_profile)
        return 0
    if args.report is not None:
        saved = json.loads(args.report.read_text())
        saved["targets"] = targets(saved)
        print(json.dumps(saved, indent=2) if args.json else report(saved))
        return 0
    if args.service:
        import benchservice

        result = benchservice.measure_service(
            args.service_mailboxes, args.service_latency,
            [int(n) for n in args.service_workers.split(",") if n.strip()], log=log)
        print(json.dumps(result, indent=2) if args.json else benchservice.report(result))
        return 0
    command = "python scripts/bench.py " + " ".join(sys.argv[1:] if argv is None else argv)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        summary = run(args, args.out, command)
        (args.out / "bench.json").write_text(json.dumps(summary, indent=2) + "\n")
    else:
        workdir = Path(tempfile.mkdtemp(prefix="syncledger-bench-"))
        try:
            summary = run(args, workdir, command)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(summary, indent=2) if args.json else report(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
