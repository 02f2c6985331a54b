"""The sync as a service: ``run``'s scheduler and ``worker`` processes on real PostgreSQL.

Real clients against the emulators. The worker test starts three ``syncledger
worker`` processes on one PostgreSQL ledger, queues cycles for a 50-mailbox org,
kills one worker with SIGKILL in the middle of a job, and checks what a user
would see: every mailbox synced, no mailbox ever called by two workers at once
(the Graph emulator counts calls in flight per mailbox), nothing created twice
and nothing lost.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from adapters.sandbox import service_org
from adapters.sandbox.cloud import SandboxCloud
from adapters.service import metrics, policy, worker
from adapters.service.policy import Policy
from adapters.service.scheduler import Log, Scheduler
from ledger.store import Store, StoreURL
from projections import queries, status
from tests.conftest import drop_schema, require_postgres
from tests.test_sync import clock

ROOT = Path(__file__).resolve().parents[1]


class Lines:
    """A stream that keeps what was written (the scheduler's JSON log)."""

    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> int:
        self.text += text
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text.splitlines() if line.strip()]


def scheduler(store: Store, cloud: SandboxCloud, log: Lines, **policy: Any) -> Scheduler:
    return Scheduler(store, cloud.config(), clock=clock, policy=Policy(**policy),
                     log=Log("json", log),  # type: ignore[arg-type]
                     saves=cloud.take_saves, sleep=lambda s: None)


# --- run: one process -------------------------------------------------------------


def test_run_two_cycles_syncs_every_mailbox_and_the_status_says_so(
        store: Store, tmp_path: Path) -> None:
    log = Lines()
    with SandboxCloud.demo(clock=clock) as cloud:
        s = scheduler(store, cloud, log)
        s.run(cycles=2)
        assert queries.plan(store) == []
        cloud.clear_log()
        s.run(cycles=1)
        assert cloud.writes() == []  # nothing changed outside: nothing written
    rows = status.rows(store, now=clock())
    boxes = {r["key"]: r for r in rows if r["kind"] == "mailbox"}
    assert sorted(boxes) == sorted(cloud.mailboxes)
    for row in boxes.values():
        assert row["last_success"] and row["failures"] == 0 and not row["suspended"]
        assert row["jobs_ok"] == 3 and row["last_error"] is None
    assert boxes["alice@contoso.com"]["items_synced"] > 0
    org = {r["key"]: r for r in rows if r["kind"] != "mailbox"}
    assert set(org) == {"salesforce", "salesforce-writes", "catch-up"}
    events = log.records()
    assert {e["kind"] for e in events if e["event"] == "job"} == {
        "mailbox", "salesforce", "salesforce-writes", "catch-up"}
    assert all(e["ok"] for e in events if e["event"] == "job")


def test_a_failing_mailbox_backs_off_then_is_suspended_and_the_others_go_on(
        store: Store) -> None:
    log = Lines()
    with SandboxCloud.demo(clock=clock) as cloud:
        cloud.graph.fail(503, "ServiceUnavailable", "down", path="users/bob@contoso.com/",
                         times=10**6)
        s = scheduler(store, cloud, log, backoff_base=0.0, max_failures=3)
        s.run(cycles=4)
        bob = status.rows(store, now=clock(), mailbox="bob@contoso.com")[0]
        assert bob["suspended"] and bob["failures"] == 3 and "503" in bob["last_error"]
        assert bob["last_success"] is None
        failed_jobs = [e for e in log.records() if e.get("key") == "bob@contoso.com"]
        assert len(failed_jobs) == 3  # suspended: the fourth cycle left Bob alone
        alice = status.rows(store, now=clock(), mailbox="alice@contoso.com")[0]
        assert alice["jobs_ok"] == 4 and not alice["suspended"]
        # The suspension is an org-level sync issue in the ledger, listed by 'issues'.
        suspended = queries.issues(store, kind="mailbox-suspended")
        assert [(i["mailbox"], i["state"]) for i in suspended] == [("bob@contoso.com", "open")]
        assert "3 failed pulls in a row" in suspended[0]["message"]
        assert "503" in suspended[0]["message"]
        assert "status --resume bob@contoso.com" in suspended[0]["message"]
        # After the fix, ``status --resume`` lets the next cycle pull Bob again.
        cloud.graph.faults.clear()
        assert policy.resume(store, "bob@contoso.com", clock().isoformat())
        s.run(cycles=1)
    bob = status.rows(store, now=clock(), mailbox="bob@contoso.com")[0]
    assert bob["last_success"] and not bob["suspended"] and bob["failures"] == 0
    resolved = queries.issues(store, kind="mailbox-suspended")
    assert [(i["mailbox"], i["state"]) for i in resolved] == [("bob@contoso.com", "resolved")]
    assert queries.issues(store, kind="mailbox-suspended", state="open") == []


def test_backoff_doubles_and_is_capped() -> None:
    p = Policy(backoff_base=60, backoff_max=600)
    assert [p.backoff(n) for n in (1, 2, 3, 4, 5)] == [60, 120, 240, 480, 600]


def _cli(*args: str, env: dict[str, str] | None = None, **kw: Any) -> subprocess.Popen[str]:
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    return subprocess.Popen([sys.executable, "-m", "adapters.cli.main", *args], cwd=kw.pop(
        "cwd", ROOT), env={**os.environ, **(env or {})}, text=True, **kw)


def test_run_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    proc = _cli("run", "--sandbox", "--db", str(tmp_path / "l.db"), "--interval", "1",
                "--log-format", "json", cwd=tmp_path)
    assert proc.stderr is not None
    first = proc.stderr.readline()  # the first finished job
    assert json.loads(first)["event"] == "job", first
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    notes = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert notes[-1]["event"] == "note" and "stopped after" in notes[-1]["message"]
    assert any("SIGTERM" in n.get("message", "") for n in notes)
    # What it did is there: the status read model has the jobs it finished.
    store = Store.open(f"sqlite:///{tmp_path / 'l.db'}")
    try:
        assert any(r["last_success"] for r in status.rows(store, now=datetime.now(UTC)))
    finally:
        store.close()


# --- worker: many processes on PostgreSQL ------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def pg_url() -> Iterator[str]:
    require_postgres()
    schema = f"t_{uuid.uuid4().hex[:20]}"
    yield f"postgresql://postgres@127.0.0.1:5432/test?schema={schema}"
    drop_schema(schema)


def _busy_workers(url: StoreURL) -> int:
    """Workers running a mailbox job right now."""
    import psycopg

    with psycopg.connect(worker.conninfo(url)) as conn:
        row = conn.execute(b"SELECT count(DISTINCT worker_id) FROM procrastinate_jobs "
                           b"WHERE status = 'doing' AND task_name = 'syncledger.mailbox'"
                           ).fetchone()
        return int(row[0]) if row else 0


def _retried(url: StoreURL) -> int:
    """Jobs a worker started more than once (a killed worker's job, run again)."""
    import psycopg

    with psycopg.connect(worker.conninfo(url)) as conn:
        row = conn.execute(b"SELECT count(*) FROM procrastinate_jobs WHERE attempts > 1 "
                           b"AND task_name = 'syncledger.mailbox'").fetchone()
        return int(row[0]) if row else 0


def _stop(procs: dict[str, subprocess.Popen[str]], logs: dict[str, Any]) -> None:
    """SIGTERM to the workers still running, then wait for each (SIGKILL after 30 s)
    and close its log; the caller checks the exit statuses."""
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for name, proc in procs.items():
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        logs[name].close()


def _one_worker_saves_all(cloud: SandboxCloud, url: StoreURL, env: dict[str, str], tmp_path: Path,
                          n: int, *options: str, wait: float = 90) -> None:
    """One ``syncledger worker`` until the org's ``n`` Outlook meetings are in Salesforce
    and its queue is idle, then SIGTERM: it must stop cleanly (exit 0)."""
    log = (tmp_path / "w.log").open("w")
    proc = _cli("worker", "--name", "solo", "--tick", "1", *options, "--interval", "3600",
                "--salesforce-interval", "3600", "--log-format", "json", env=env,
                stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + wait
        while _creates(cloud)["salesforce"] < n and time.monotonic() < deadline:
            time.sleep(0.5)
        assert worker.wait_idle(url, timeout=60)
        assert _creates(cloud) == {"graph": 0, "salesforce": n}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
    assert proc.returncode == 0, (tmp_path / "w.log").read_text()[-3000:]


def test_three_workers_share_fifty_mailboxes_and_survive_a_kill(
        pg_url: str, tmp_path: Path) -> None:
    n = 50
    url = StoreURL.parse(pg_url)
    with service_org.cloud(n, per_mailbox=1) as cloud:
        cloud.graph.latency = 0.01
        env = {**cloud.write_config(tmp_path / "sync.toml"), "SYNCLEDGER_DB": pg_url}
        store = Store.open(pg_url)
        app = worker.make_app(url)
        worker.ensure_schema(app, url)
        port = _free_port()
        names = [f"w{i}" for i in range(3)]
        victim_name = [""]
        common = ["--tick", "1", "--heartbeat", "0.5", "--stalled-after", "3",
                  "--interval", "3600", "--salesforce-interval", "3600", "--log-format",
                  "json"]
        logs = {name: (tmp_path / f"{name}.log").open("w") for name in names}
        procs = {name: _cli("worker", "--name", name, *common,
                            *(["--metrics-port", str(port)] if name == "w1" else []), env=env,
                            stdout=logs[name], stderr=subprocess.STDOUT)
                 for name in names}
        try:
            with app.open():
                # Cycle 1: everything is new; 50 Outlook meetings go to Salesforce (the
                # 5 Salesforce meetings reach Outlook in cycle 2's mailbox jobs).
                began = time.monotonic()
                worker.defer_cycle(app, store, cloud.config())
                assert worker.wait_idle(url, timeout=120), "cycle 1 did not finish"
                seconds = [time.monotonic() - began]
                assert _creates(cloud) == {"graph": 0, "salesforce": n}

                # Cycle 2: every meeting is moved in Outlook; one worker is killed with
                # SIGKILL while it runs a mailbox job.
                for i in range(n):
                    cloud.graph.put_event(service_org.mailbox(i), _moved(cloud, i, 0))
                worker.defer_cycle(app, store, cloud.config())
                began = time.monotonic()
                victim = victim_name[0] = _kill_mid_job(procs, url)
                assert worker.wait_idle(url, timeout=120), "cycle 2 did not finish"
                seconds.append(time.monotonic() - began)
                retried = _retried(url)
                assert _creates(cloud) == {"graph": 5, "salesforce": n}

                # Cycle 3: nothing changed outside, so nothing is written.
                cloud.clear_log()
                worker.defer_cycle(app, store, cloud.config())
                assert worker.wait_idle(url, timeout=120), "cycle 3 did not finish"
                assert cloud.writes() == []
            page = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10
                                          ).read().decode()
        finally:
            _stop(procs, logs)
        for name, proc in procs.items():
            if name != victim_name[0]:
                assert proc.returncode == 0, (tmp_path / f"{name}.log").read_text()[-3000:]
        # Never two calls for one mailbox at once, whichever workers ran its jobs.
        assert cloud.graph.overlapping == 0
        assert set(cloud.graph.max_in_flight.values()) == {1}
        assert len(cloud.graph.max_in_flight) == n
        # Nothing lost: every move reached Salesforce; nothing duplicated: each meeting
        # has exactly one Salesforce copy, each Salesforce meeting one Outlook copy.
        sf = cloud.salesforce.all("Event")
        moved = [e for e in sf if str(e["Subject"]).startswith("Customer call")]
        assert len(moved) == n
        assert all(e["StartDateTime"].startswith("2026-12-01") for e in moved)
        assert sum(1 for m in cloud.mailboxes for e in cloud.graph.calendar(m)
                   if str(e.get("subject")).startswith("Salesforce meeting")) == 5
        assert queries.plan(store) == []
        rows = status.rows(store, now=datetime.now(UTC), mailboxes=cloud.mailboxes)
        boxes = [r for r in rows if r["kind"] == "mailbox"]
        assert len(boxes) == n and all(r["last_success"] and not r["suspended"] for r in boxes)
        assert sum(r["items_synced"] for r in boxes) == n + 5
        store.close()
    assert procs[victim].returncode == -signal.SIGKILL
    assert retried >= 1  # the killed worker's job was run again by another worker
    assert 'syncledger_jobs_total{kind="mailbox",outcome="ok"}' in page
    assert "syncledger_api_calls_total" in page and metrics.REGISTRY is not None
    print(f"\nworkers: 3, mailboxes: {n}, cycles: 3, jobs retried after the kill: {retried}, "
          f"overlapping pulls: {cloud.graph.overlapping}, kills survived: 1 ({victim}); "
          f"cycle seconds {[round(x, 1) for x in seconds]}")


def test_a_worker_on_a_fresh_ledger_records_the_org_settings_before_its_first_pull(
        pg_url: str, tmp_path: Path) -> None:
    """Nobody runs ``schedule``: the worker's own tick queues every mailbox at once. The
    org's product users must be known before those pulls decide, or the users' meetings
    are taken for outsiders' and never reach Salesforce."""
    n = 4
    url = StoreURL.parse(pg_url)
    with service_org.cloud(n, per_mailbox=1) as cloud:
        env = {**cloud.write_config(tmp_path / "sync.toml"), "SYNCLEDGER_DB": pg_url}
        _one_worker_saves_all(cloud, url, env, tmp_path, n)


def test_a_slow_job_spanning_many_ticks_is_pulled_once_for_one_schedule(
        pg_url: str, tmp_path: Path) -> None:
    """A mailbox whose pull takes several ticks, and a slow Salesforce pull, on a fresh
    ledger with ``schedule`` and the workers' tick both queueing: each is pulled once.
    Before, every tick queued a mailbox again while its job ran (no status row yet, and
    the queueing lock only holds while a job waits), so it was pulled again right after."""
    n = 4
    url = StoreURL.parse(pg_url)
    with service_org.cloud(n, per_mailbox=1) as cloud:
        slow = service_org.mailbox(0)
        cloud.graph.slow(8.0, path=f"users/{slow}/", times=1)
        cloud.salesforce.slow(6.0, path="deleted", times=1)
        env = {**cloud.write_config(tmp_path / "sync.toml"), "SYNCLEDGER_DB": pg_url}
        store = Store.open(pg_url)
        app = worker.make_app(url)
        worker.ensure_schema(app, url)
        with app.open():
            queued = worker.defer_cycle(app, store, cloud.config())
        assert queued["queued"] == n + 1
        names = ["a", "b", "c"]  # one in each slow job, one ticking meanwhile
        logs = {name: (tmp_path / f"{name}.log").open("w") for name in names}
        procs = {name: _cli("worker", "--name", name, "--tick", "1", "--interval", "3600",
                            "--salesforce-interval", "3600", "--log-format", "json",
                            env=env, stdout=logs[name], stderr=subprocess.STDOUT)
                 for name in names}
        try:
            time.sleep(3)  # both slow jobs are running, the other worker ticks meanwhile
            assert worker.wait_idle(url, timeout=90, settle=3.0)
            rows = {r["key"]: r for r in status.rows(store, now=datetime.now(UTC))}
            pulls = sum(1 for _, target, _ in cloud.graph.requests
                        if f"/users/{slow}/calendarView/delta" in unquote(target))
        finally:
            _stop(procs, logs)
            store.close()
        for name, proc in procs.items():
            assert proc.returncode == 0, (tmp_path / f"{name}.log").read_text()[-3000:]
    jobs_run = {key: rows[key]["jobs_ok"] + rows[key]["jobs_failed"]
                for key in [*cloud.mailboxes, "salesforce"]}
    assert jobs_run == {key: 1 for key in jobs_run}
    assert pulls == 1  # the slow mailbox's delta requests: its one page, read once


def test_a_dead_workers_catch_up_with_another_waiting_does_not_stop_the_tick(
        pg_url: str, tmp_path: Path) -> None:
    """A worker died in a catch-up while the next catch-up already waited (one is queued
    after every pull, also while one runs). Sending the dead job back to the queue would
    make two waiting catch-ups, which the queueing lock refuses: before, the tick failed
    there at every run, so no mailbox was queued again and the dead job's lock stayed."""
    import psycopg

    n = 3
    url = StoreURL.parse(pg_url)
    with service_org.cloud(n, per_mailbox=1) as cloud:
        env = {**cloud.write_config(tmp_path / "sync.toml"), "SYNCLEDGER_DB": pg_url}
        app = worker.make_app(url)
        worker.ensure_schema(app, url)
        with app.open():
            assert worker.defer(app, "catch-up")
            with psycopg.connect(worker.conninfo(url)) as conn:  # its worker died, pruned
                conn.execute(b"UPDATE procrastinate_jobs SET status = 'doing', worker_id = "
                             b"NULL WHERE task_name = 'syncledger.catch_up'")
            assert worker.defer(app, "catch-up")
        _one_worker_saves_all(cloud, url, env, tmp_path, n, "--stalled-after", "2", wait=60)


def _creates(cloud: SandboxCloud) -> dict[str, int]:
    return {"graph": sum(1 for w in cloud.graph.writes if w["method"] == "POST"),
            "salesforce": sum(1 for w in cloud.salesforce.writes if w["method"] == "POST"
                              and w["path"].endswith("/sobjects/Event/"))}


def _moved(cloud: SandboxCloud, i: int, k: int) -> dict[str, Any]:
    from adapters.sandbox import org as sandbox

    box = service_org.mailbox(i)
    event_id = sandbox._graph_id(box, f"svc-{i}-{k}")
    event = cloud.graph.event(box, event_id)
    assert event is not None
    hour = 9 + k
    event = dict(event)
    event["start"] = {"dateTime": f"2026-12-01T{hour:02d}:00:00.0000000", "timeZone": "UTC"}
    event["end"] = {"dateTime": f"2026-12-01T{hour:02d}:30:00.0000000", "timeZone": "UTC"}
    event["changeKey"] = f"moved{i}x{k}"  # what Exchange does on a save
    event["@odata.etag"] = f'W/"moved{i}x{k}"'
    event["lastModifiedDateTime"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")
    return event


def _kill_mid_job(procs: dict[str, subprocess.Popen[str]], url: StoreURL) -> str:
    """SIGKILL a worker while every worker runs a mailbox job (so the victim is mid-job)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if _busy_workers(url) == len(procs):
            name, proc = next(iter(procs.items()))
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            return name
        time.sleep(0.02)
    raise AssertionError("the workers were never all busy with mailbox jobs at once")


def test_suspension_lines_replay_from_a_feed_once_each(store: Store, tmp_path: Path) -> None:
    """A ``sync.suspension`` line is an observation like any other: ``ingest`` reads it,
    a repeat appends nothing, a resume resolves the issue, a bad action is quarantined
    naming the field."""
    from adapters.feed.envelopes import envelope
    from adapters.feed.ingest import ingest_files

    def line(at: str, action: str) -> bytes:
        return envelope("sync.suspension", at, {"action": action, "reason": "6 failed pulls"},
                        mailbox="bob@contoso.com")

    feed = tmp_path / "notes.jsonl"
    feed.write_bytes(b"\n".join([line("2026-11-20T10:00:00Z", "suspended"),
                                 line("2026-11-20T11:00:00Z", "suspended"),
                                 line("2026-11-20T12:00:00Z", "paused"),
                                 line("2026-11-20T13:00:00Z", "resumed")]) + b"\n")
    result = ingest_files(store, [feed])
    assert (result.appended, result.duplicates, result.quarantined) == (3, 1, 1)
    assert store.quarantined()[0]["field"] == "payload.action"
    rows = queries.issues(store, kind="mailbox-suspended")
    assert [(r["mailbox"], r["state"]) for r in rows] == [("bob@contoso.com", "resolved")]
    again = ingest_files(store, [feed])
    assert again.appended == 0


def test_the_hourly_prune_deletes_old_finished_jobs_and_keeps_the_rest(pg_url: str) -> None:
    """procrastinate keeps every job it ran: without the prune its tables grow by a row
    per mailbox per interval, forever."""
    import asyncio

    import psycopg

    from adapters.sync import jobs

    url = StoreURL.parse(pg_url)
    Store.open(pg_url).close()
    app = worker.make_app(url)
    worker.ensure_schema(app, url)
    # (mailbox, status, hours since it reached that status)
    cases = [("old-ok", "succeeded", 30), ("new-ok", "succeeded", 1),
             ("failed-week", "failed", 30), ("failed-old", "failed", 24 * 7 + 1),
             ("waiting", "todo", 300), ("running", "doing", 300)]
    with app.open():
        for mailbox, _, _ in cases:
            assert worker.defer(app, jobs.MAILBOX, f"{mailbox}@example.com")
    with psycopg.connect(worker.conninfo(url), autocommit=True) as conn:
        for mailbox, state, hours in cases:
            job = conn.execute(b"SELECT id FROM procrastinate_jobs WHERE args->>'mailbox' = %s",
                               (f"{mailbox}@example.com",)).fetchone()
            assert job is not None
            if state != "todo":
                conn.execute(b"UPDATE procrastinate_jobs SET status = 'doing' WHERE id = %s",
                             (job[0],))
            if state not in ("todo", "doing"):
                conn.execute(b"UPDATE procrastinate_jobs SET status = %s WHERE id = %s",
                             (state, job[0]))
            conn.execute(b"UPDATE procrastinate_events SET at = now() - make_interval("
                         b"hours => %s) WHERE job_id = %s", (hours, job[0]))

    async def prune() -> None:
        async with app.open_async():
            await worker.prune_history(app, 24)

    asyncio.run(prune())
    with psycopg.connect(worker.conninfo(url)) as conn:
        left = {str(r[0]).split("@")[0] for r in conn.execute(
            b"SELECT args->>'mailbox' FROM procrastinate_jobs")}
        orphans = conn.execute(b"SELECT count(*) FROM procrastinate_events e WHERE NOT EXISTS "
                               b"(SELECT 1 FROM procrastinate_jobs j WHERE j.id = e.job_id)"
                               ).fetchone()
    assert left == {"new-ok", "failed-week", "waiting", "running"}
    assert orphans == (0,)
