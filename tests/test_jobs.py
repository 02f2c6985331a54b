"""The cycle as jobs reaches what ``syncledger sync`` reaches, and each job is re-runnable.

Real clients against the emulated demo org; the assertions are on both
calendars and the read models, compared with two plain ``sync`` cycles.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from adapters.sandbox.cloud import SandboxCloud
from adapters.sync import jobs
from adapters.sync.outbox import Outbox, outbox_key
from ledger.store import Store
from tests.test_sync import clean_result, clock, cloud, final

__all__ = ["cloud"]  # the shared emulated cloud fixture


def seen(view: dict[str, Any]) -> dict[str, Any]:
    """What a user sees of the calendars and read models, without generated ids."""
    graph = {m: sorted(str((e.get("subject"), e.get("start"), e.get("categories"),
                            e.get("type"))) for e in events)
             for m, events in view["cloud"]["graph"].items()}
    sf = sorted(str((e.get("Subject"), e.get("StartDateTime"), e.get("WhatId"),
                     e.get("OwnerId"))) for e in view["cloud"]["salesforce"]["Event"])
    return {"graph": graph, "salesforce": sf, "plan": view["plan"],
            "issues": sorted(str((i["kind"], i["mailbox"], i["state"])) for i in view["issues"]),
            "mapping": len(view["mapping"]),
            "conflicts": sorted((c["kind"], c["state"]) for c in view["conflicts"])}


def service_cycle(store: Store, cloud: SandboxCloud, clients: jobs.Clients) -> list[str]:
    saves = cloud.take_saves()
    outcomes = []
    for kind, mailbox in jobs.cycle_jobs(cloud.mailboxes):
        result = jobs.run_job(store, clients, kind, mailbox, clock=clock, saves=saves)
        assert result.ok, (kind, mailbox, result.error, result.report.failed)
        outcomes.append(result.outcome)
    return outcomes


def test_two_cycles_of_jobs_end_where_two_sync_cycles_end(
        store: Store, cloud: SandboxCloud, tmp_path: Path) -> None:
    clients = jobs.Clients.connect(cloud.config(), sleep=lambda s: None)
    jobs.apply_settings(store, clients, clock=clock)
    service_cycle(store, cloud, clients)
    service_cycle(store, cloud, clients)
    # The same calendars and read models, up to the ids the emulators handed out
    # (they count creates, which happen in another order).
    assert seen(final(store, cloud)) == seen(clean_result(tmp_path))
    cloud.clear_log()
    service_cycle(store, cloud, clients)  # nothing changed outside: nothing is written
    assert cloud.writes() == []


def test_a_job_run_twice_writes_once(store: Store, cloud: SandboxCloud) -> None:
    """A job retried after a crash (here: simply run again) appends and writes nothing new."""
    clients = jobs.Clients.connect(cloud.config(), sleep=lambda s: None)
    jobs.apply_settings(store, clients, clock=clock)
    first = jobs.run_job(store, clients, jobs.SALESFORCE, clock=clock)
    again = jobs.run_job(store, clients, jobs.SALESFORCE, clock=clock)
    assert first.report.appended > 0 and again.report.appended == 0
    bob = "bob@contoso.com"
    made = jobs.run_job(store, clients, jobs.MAILBOX, bob, clock=clock)
    writes = len(cloud.graph.writes)
    redo = jobs.run_job(store, clients, jobs.MAILBOX, bob, clock=clock)
    assert made.report.writes and redo.report.writes == [] and len(cloud.graph.writes) == writes


def test_a_job_settles_only_its_own_outbox_entries_whose_write_left_the_plan(
        store: Store) -> None:
    """A mailbox job reads its own part of the plan; closing entries whose write left the
    plan must still spare what another job may be sending right now (another mailbox,
    the other target) and a write the plan now holds elsewhere (for another mailbox)."""
    outbox = Outbox(store)
    alice, bob = "alice@contoso.com", "bob@contoso.com"

    def write(key: str, target: str, mailbox: str | None) -> dict[str, Any]:
        return {"key": key, "target": target, "op": "update", "mailbox": mailbox,
                "id": key, "fields": {}, "meeting_id": "m"}

    entries = {"gone": write("ex-update|a1", "exchange", alice),
               "pending": write("ex-update|a2", "exchange", alice),
               "moved": write("ex-create|sf1", "exchange", alice),
               "other-mailbox": write("ex-update|b1", "exchange", bob),
               "other-target": write("sf-update|s1", "salesforce", alice)}
    for w in entries.values():
        outbox.sending(outbox_key(w), w, "m", "2026-11-20T09:00:00Z")
    asked: list[set[str]] = []

    def elsewhere(keys: set[str]) -> set[str]:
        asked.append(keys)
        return keys & {"ex-create|sf1"}  # planned now for bob's calendar

    closed = outbox.settle_absent({"ex-update|a2"}, "2026-11-20T09:05:00Z",
                                  target="exchange", mailbox=alice, elsewhere=elsewhere)
    states = {r["key"]: r["state"] for r in outbox.rows()}
    assert closed == 1
    assert {name: states[outbox_key(w)] for name, w in entries.items()} == {
        "gone": "settled", "pending": "sending", "moved": "sending",
        "other-mailbox": "sending", "other-target": "sending"}
    assert asked == [{"ex-update|a1", "ex-create|sf1"}]  # only this job's absent entries
