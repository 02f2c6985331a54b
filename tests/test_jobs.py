"""The cycle as jobs reaches what ``syncledger sync`` reaches, and each job is re-runnable.

Real clients against the emulated demo org; the assertions are on both
calendars and the read models, compared with two plain ``sync`` cycles.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from adapters.sandbox.cloud import SandboxCloud
from adapters.sync import jobs
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
