"""``scripts/bench.py --service``: one full cycle of ``syncledger worker`` processes.

A sandbox org of N mailboxes (``adapters/sandbox/service_org.py``) on the
emulators, every answer delayed by ``latency`` seconds (a real API's round
trip), one PostgreSQL ledger. The first cycle (everything new: every mailbox's
first delta, one Salesforce create per mailbox) runs on one worker; then a
cycle with no outside change (each mailbox's delta, nothing to write) is timed
with 1, 2, 4 ... workers on the same ledger, and printed as speed-ups against
one worker in the same run.
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

ROOT = Path(__file__).resolve().parents[1]


def _start(n: int, env: dict[str, str], logdir: Path) -> list[subprocess.Popen[bytes]]:
    out = []
    for i in range(n):
        log = (logdir / f"worker{i}.log").open("wb")
        out.append(subprocess.Popen(
            [sys.executable, "-m", "adapters.cli.main", "worker", "--name", f"bench{i}",
             "--tick", "5", "--interval", "86400", "--salesforce-interval", "86400",
             "--log-format", "json"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))
    return out


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()


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
                              "cpus": os.cpu_count(), "cycle_seconds": {}}
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
                procs = _start(1, env, Path(tmp))
                try:
                    log(f"service: first cycle of {mailboxes} mailboxes on 1 worker")
                    result["first_cycle_seconds"] = round(
                        _cycle(app, store, url, cloud.config(), 7200), 2)
                    result["first_cycle_writes"] = len(cloud.writes())
                    # The Outlook copies of Salesforce meetings go out in the next cycle's
                    # mailbox jobs (the Salesforce pull runs after them): settle those too.
                    cloud.clear_log()
                    result["second_cycle_seconds"] = round(
                        _cycle(app, store, url, cloud.config(), 7200), 2)
                    result["second_cycle_writes"] = len(cloud.writes())
                finally:
                    _stop(procs)
                for n in workers:
                    procs = _start(n, env, Path(tmp))
                    try:
                        time.sleep(3)  # every worker up and listening before the clock starts
                        cloud.clear_log()
                        seconds = _cycle(app, store, url, cloud.config(), 7200)
                        if cloud.writes():
                            raise RuntimeError("a cycle with no outside change wrote something")
                        result["cycle_seconds"][str(n)] = round(seconds, 2)
                        log(f"service: {n} worker(s): {seconds:.1f} s")
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


def report(result: dict[str, Any]) -> str:
    lines = [f"service: {result['mailboxes']} mailboxes, {result['latency_seconds'] * 1000:.0f} ms "
             f"per request, {result['cpus']} CPUs",
             f"  first cycle (everything new, 1 worker): {result['first_cycle_seconds']} s, "
             f"{result['first_cycle_writes']} writes; second cycle "
             f"{result['second_cycle_seconds']} s, {result['second_cycle_writes']} writes",
             "  cycle with no outside change:"]
    for n, s in result["cycle_seconds"].items():
        lines.append(f"    {n} worker(s): {s} s, speed-up x{result['speedup'].get(n)}")
    return "\n".join(lines)
