"""``scripts/bench.py --service``: one full cycle of ``syncledger worker`` processes.

A sandbox org of N mailboxes (``adapters/sandbox/service_org.py``) on the
emulators, every answer delayed by ``latency`` seconds (a real API's round
trip), one PostgreSQL ledger. The first cycle (everything new: every mailbox's
first delta, one Salesforce create per mailbox), the second (the Outlook copies
and categories it calls for) and a third (whose deltas return the second's
writes) run on the most workers; then a cycle with no
outside change (each mailbox's delta, nothing read, nothing to write) is timed
with 1, 2, 4 ... workers on the same ledger, and printed as speed-ups against
one worker in the same run, with the CPU each mailbox job cost the workers, the
emulators (this process) and PostgreSQL, and how busy the machine was (the
share of all its cores, other processes included): what explains a speed-up.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from adapters.sandbox import service_org
from adapters.service import worker
from ledger.store import Store, StoreURL
from projections import status

ROOT = Path(__file__).resolve().parents[1]
TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far; 0 where /proc is missing."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def _postgres_cpu() -> dict[int, float]:
    """CPU seconds of every PostgreSQL process on this machine, by pid."""
    out = {}
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    out[int(entry.name)] = _cpu(int(entry.name))
            except OSError:
                continue
    return out


def _machine() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far (every core, every process)."""
    try:
        numbers = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0.0, 0.0
    idle = numbers[3] + (numbers[4] if len(numbers) > 4 else 0)
    return (sum(numbers) - idle) / TICK, sum(numbers) / TICK


class _Usage:
    """CPU used during one timed cycle: the workers, this process (the emulators), the
    PostgreSQL server, and how busy the machine was (other processes included)."""

    def __init__(self, procs: list[subprocess.Popen[bytes]]) -> None:
        self.procs = procs
        self.workers = sum(_cpu(p.pid) for p in procs)
        self.me = time.process_time()
        self.pg = _postgres_cpu()
        self.machine = _machine()

    def used(self, jobs: int) -> dict[str, float]:
        pg = _postgres_cpu()
        busy, total = _machine()
        per_job = 1000 / max(jobs, 1)
        return {
            "worker_ms_per_job": round((sum(_cpu(p.pid) for p in self.procs) - self.workers)
                                       * per_job, 1),
            "emulators_ms_per_job": round((time.process_time() - self.me) * per_job, 1),
            "postgres_ms_per_job": round(sum(c - self.pg.get(pid, 0.0) for pid, c in pg.items())
                                         * per_job, 1),
            "machine_busy": round((busy - self.machine[0]) / max(total - self.machine[1], 1e-9),
                                  2)}


def _registered(url: StoreURL) -> int:
    """The newest worker id procrastinate has registered (0 before any)."""
    import psycopg

    with psycopg.connect(worker.conninfo(url)) as conn:
        row = conn.execute(b"SELECT COALESCE(MAX(id), 0) FROM procrastinate_workers").fetchone()
        return int(row[0]) if row else 0


def _start(n: int, env: dict[str, str], logdir: Path, url: StoreURL, settle: float = 1.0
           ) -> list[subprocess.Popen[bytes]]:
    """``n`` worker processes, returned once each has registered with procrastinate (its
    imports and start-up done: they take seconds on a busy machine, and are no part of
    a cycle's time or CPU)."""
    before = _registered(url)
    out = []
    for i in range(n):
        log = (logdir / f"worker{i}.log").open("wb")
        out.append(subprocess.Popen(
            [sys.executable, "-m", "adapters.cli.main", "worker", "--name", f"bench{i}",
             "--tick", "5", "--interval", "86400", "--salesforce-interval", "86400",
             "--log-format", "json"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))
    deadline = time.monotonic() + 300
    while _registered(url) - before < n:
        if time.monotonic() > deadline or any(p.poll() is not None for p in out):
            _stop(out)
            raise RuntimeError(f"the workers did not start; see {logdir}")
        time.sleep(0.2)
    time.sleep(settle)  # the last one's first fetch
    return out


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()


def _observed(store: Store) -> int:
    """Items the service's jobs have read so far (the status read model's counters)."""
    return sum(int(r.get("observed") or 0) for r in status.raw(store).values())


def _trouble(store: Store) -> dict[str, Any]:
    """Failed jobs so far, their last errors, and the writes that failed (to be retried)."""
    rows = status.raw(store).values()
    failed = store.query("SELECT count(*) FROM {p}outbox WHERE state = 'failed'")
    return {"failed_jobs": sum(int(r.get("jobs_failed") or 0) for r in rows),
            "errors": sorted({str(r["last_error"])[:120] for r in rows if r.get("last_error")}),
            "failed_writes": int(failed[0][0]) if failed else 0}


def _cycle(app: Any, store: Store, url: StoreURL, config: Any, timeout: float) -> float:
    began = time.monotonic()
    worker.defer_cycle(app, store, config)
    if not worker.wait_idle(url, timeout=timeout, poll=0.2, settle=0.4):
        raise RuntimeError(f"a cycle did not finish within {timeout} s")
    return time.monotonic() - began - 0.4  # wait_idle waits 0.4 s of quiet to be sure


def measure_service(mailboxes: int, latency: float, workers: list[int],
                    log: Any = print) -> dict[str, Any]:
    schema = f"bench_{uuid.uuid4().hex[:16]}"
    db = f"postgresql://postgres@127.0.0.1:5432/test?schema={schema}"
    url = StoreURL.parse(db)
    result: dict[str, Any] = {"mailboxes": mailboxes, "latency_seconds": latency,
                              "cpus": os.cpu_count(), "cycle_seconds": {}, "cpu": {},
                              "requests": {}, "observed": {}}
    with tempfile.TemporaryDirectory(prefix="syncledger-bench-service-") as tmp, \
            service_org.cloud(mailboxes, per_mailbox=1) as cloud:
        cloud.graph.latency = cloud.salesforce.latency = latency
        env = {**os.environ, **cloud.write_config(Path(tmp) / "sync.toml"),
               "SYNCLEDGER_DB": db}
        store = Store.open(db)
        app = worker.make_app(url)
        worker.ensure_schema(app, url)
        try:
            with app.open():
                # The first cycle is queued before the workers start: on a ledger with no
                # status yet, a worker's tick would queue every mailbox itself, and the
                # bench's queueing would then add a second job for those already run.
                most = max(workers)
                log(f"service: first cycle of {mailboxes} mailboxes on {most} workers")
                worker.defer_cycle(app, store, cloud.config())
                procs = _start(most, env, Path(tmp), url, settle=0)
                try:
                    began = time.monotonic()  # from the workers' start-up, done
                    if not worker.wait_idle(url, timeout=7200, poll=0.2, settle=0.4):
                        raise RuntimeError("the first cycle did not finish within 7200 s")
                    result["first_cycle_seconds"] = round(time.monotonic() - began - 0.4, 2)
                    result["first_cycle_writes"] = len(cloud.writes())
                    result["first_cycle_trouble"] = _trouble(store)
                    # The Outlook copies of Salesforce meetings go out in the next cycle's
                    # mailbox jobs (the Salesforce pull runs after them): settle those too.
                    cloud.clear_log()
                    log("service: second and third cycles")
                    result["second_cycle_seconds"] = round(
                        _cycle(app, store, url, cloud.config(), 7200), 2)
                    result["second_cycle_writes"] = len(cloud.writes())
                    result["second_cycle_trouble"] = _trouble(store)
                    # The second cycle's writes (the "synced" category on each Outlook item)
                    # come back in each mailbox's next delta: read them once more, so every
                    # timed cycle reads the same (nothing).
                    result["third_cycle_seconds"] = round(
                        _cycle(app, store, url, cloud.config(), 7200), 2)
                finally:
                    _stop(procs)
                for n in workers:
                    procs = _start(n, env, Path(tmp), url)
                    try:
                        cloud.clear_log()
                        usage = _Usage(procs)
                        seen = _observed(store)
                        seconds = _cycle(app, store, url, cloud.config(), 7200)
                        result["cpu"][str(n)] = usage.used(mailboxes)
                        result["observed"][str(n)] = _observed(store) - seen
                        result["requests"][str(n)] = len(cloud.graph.requests) + len(
                            cloud.salesforce.requests)
                        if cloud.writes():
                            raise RuntimeError("a cycle with no outside change wrote something")
                        result["cycle_seconds"][str(n)] = round(seconds, 2)
                        log(f"service: {n} worker(s): {seconds:.1f} s, CPU {result['cpu'][str(n)]}")
                    finally:
                        _stop(procs)
        finally:
            store.close()
            import psycopg

            with psycopg.connect(host="127.0.0.1", user="postgres", dbname="test",
                                 autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'.encode())
    base = result["cycle_seconds"].get(str(workers[0]))
    result["speedup"] = {n: round(base / s, 2) for n, s in result["cycle_seconds"].items()} \
        if base else {}
    return result


def _troubles(t: dict[str, Any] | None) -> str:
    if not t:
        return "?"
    errors = f" ({'; '.join(t['errors'])})" if t["errors"] else ""
    return f"{t['failed_jobs']} / {t['failed_writes']}{errors}"


def report(result: dict[str, Any]) -> str:
    most = max(map(int, result["cycle_seconds"]), default=1)
    lines = [f"service: {result['mailboxes']} mailboxes, {result['latency_seconds'] * 1000:.0f} ms "
             f"per request, {result['cpus']} CPUs",
             f"  first cycle (everything new, {most} workers): "
             f"{result['first_cycle_seconds']} s, {result['first_cycle_writes']} writes; "
             f"second cycle {result['second_cycle_seconds']} s, "
             f"{result['second_cycle_writes']} writes",
             f"  failed jobs / writes after the first cycle: "
             f"{_troubles(result.get('first_cycle_trouble'))}; after the second: "
             f"{_troubles(result.get('second_cycle_trouble'))}",
             f"  third cycle (the second's echoes): {result.get('third_cycle_seconds')} s",
             "  cycle with no outside change:"]
    for n, s in result["cycle_seconds"].items():
        lines.append(f"    {n} worker(s): {s} s, speed-up x{result['speedup'].get(n)} "
                     f"({result['observed'].get(n)} items read, {result['requests'].get(n)} "
                     f"requests)")
    lines.append("  CPU per mailbox job in that cycle (ms: workers / emulators / PostgreSQL, "
                 "all of its sessions) and the machine's busy share:")
    for n, c in result.get("cpu", {}).items():
        lines.append(f"    {n} worker(s): {c['worker_ms_per_job']} / {c['emulators_ms_per_job']}"
                     f" / {c['postgres_ms_per_job']} ms, machine {c['machine_busy']:.0%} busy")
    per_job = {n: round(1000 * s / result["mailboxes"], 1)
               for n, s in result["cycle_seconds"].items()}
    calls = next(iter(result["requests"].values()), 0) / result["mailboxes"]
    lines.append(f"  per mailbox job: {per_job.get('1')} ms of wall time on 1 worker, "
                 f"{calls:.2f} requests of {result['latency_seconds'] * 1000:.0f} ms")
    return "\n".join(lines)
