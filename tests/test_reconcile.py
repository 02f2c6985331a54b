"""Reconciliation and safety (issue 14), against the emulated cloud with the real clients.

What a user would notice: a fresh ledger pointed at an org an earlier ledger
synced joins the copies by their markers instead of creating second ones; a
drift report names each kind of drift with both ids; the repair plan is carried
out exactly as shown and a second run plans nothing; the mass-change guard
holds an empty read and a large deletion until someone approves.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.cli.sync import run_cycle
from adapters.sandbox.cloud import SandboxCloud
from ledger.store import Store
from projections import queries

NOW = datetime(2026, 11, 20, 13, 0, tzinfo=UTC)


def clock() -> datetime:
    return NOW


@pytest.fixture
def cloud() -> Iterator[SandboxCloud]:
    with SandboxCloud.demo(clock=clock) as c:
        yield c


def sync(store: Store, cloud: SandboxCloud, **options: Any) -> dict[str, Any]:
    outcome = run_cycle(store, cloud.config(), clock=clock, saves=cloud.take_saves(),
                        sleep=lambda s: None, on_step=lambda step: None, **options)
    assert outcome["error"] is None and not outcome["failures"], outcome
    return outcome


def pairs(store: Store) -> set[tuple[str, str, str]]:
    return {(r["mailbox"], r["exchange_id"], r["salesforce_id"]) for r in queries.mapping(store)}


def test_a_fresh_ledger_adopts_the_marked_copies_instead_of_creating_second_ones(
        store: Store, cloud: SandboxCloud, tmp_path: Path) -> None:
    first = Store.open(f"sqlite:///{tmp_path / 'a.db'}")
    try:
        sync(first, cloud)
        before = pairs(first)
    finally:
        first.close()
    cloud.clear_log()
    outcome = sync(store, cloud)  # a new, empty ledger; the same org
    assert cloud.writes() == [] and outcome["writes"] == []
    bob = [e for e in cloud.graph.calendar("bob@contoso.com")
           if e.get("subject") == "Contract signing"]
    assert len(bob) == 1
    # The mapping rebuilt from the markers alone is the one the first ledger built.
    assert pairs(store) == before
    salesforce_ids = [sf for _, _, sf in pairs(store)]
    assert len(salesforce_ids) == len(set(salesforce_ids))


# --- reconcile: drift of every class, the plan, apply, a second run --------------------


def reconcile(store: Store, cloud: SandboxCloud, *, apply_plan: bool = False,
              allow: bool = False) -> dict[str, Any]:
    from adapters.cli.sync import build_cycle
    from adapters.reconcile.job import Reconciliation, window
    from adapters.reconcile.plans import Plans, apply

    cycle = build_cycle(store, cloud.config(), clock=clock, sleep=lambda s: None,
                        on_step=lambda s: None)
    start, end = window(NOW, 14, 60)
    report = Reconciliation(cycle).run(list(cloud.config().graph.mailboxes), start, end)
    plans = Plans(store)
    plan = plans.propose(report, "2026-11-20T13:00:00Z")
    result = {**plan.as_dict()}
    if apply_plan:
        result["outcome"] = apply(plan, plans, cycle, allow_mass_change=allow)
    return result


def by_class(rows: list[dict[str, Any]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for row in rows:
        out.setdefault(row["class"], set()).update(
            i for i in (row["exchange_id"], row["salesforce_id"]) if i)
    return out


def test_reconcile_reports_each_class_of_drift_and_its_plan_converges(
        store: Store, cloud: SandboxCloud) -> None:
    from adapters.sandbox.drift import make_drift

    sync(store, cloud)
    assert reconcile(store, cloud)["drift"] == []  # a clean sync leaves no drift
    made = make_drift(cloud, "2026-11-26")
    cloud.clear_log()
    first = reconcile(store, cloud)
    assert cloud.writes() == []  # proposing writes nothing
    found = by_class(first["drift"])
    assert set(found) == set(made)
    extra_contract, twin, *invites = made.pop("duplicate")
    for kind, ids in made.items():
        assert set(ids) <= found[kind], (kind, ids, found[kind])
    # One of the two identical invitations is reported against the other.
    assert {extra_contract, twin} <= found["duplicate"] and found["duplicate"] & set(invites)
    writes = {(w["target"], w["op"], w.get("id")) for w in first["writes"]}
    assert ("exchange", "delete", extra_contract) in writes
    assert ("salesforce", "delete", twin) in writes
    assert not any(w.get("id") in invites for w in first["writes"])  # reported, kept
    assert {("salesforce", "create"), ("exchange", "create")} <= {
        (t, o) for t, o, _ in writes}

    second = reconcile(store, cloud, apply_plan=True, allow=True)
    outcome = second["outcome"]
    assert not outcome["failed"] and not outcome["held"], outcome
    assert cloud.graph.event("bob@contoso.com", extra_contract) is None
    assert cloud.salesforce.get("Event", twin) is None
    assert all(cloud.graph.event("carol@contoso.com", i) is not None for i in invites)
    third = reconcile(store, cloud)
    assert third["writes"] == [], third["writes"]
    assert {r["class"] for r in third["drift"]} <= {"duplicate", "orphan-marker"}, third["drift"]
    # The mapping stays one-to-one on both sides.
    rows = queries.mapping(store)
    assert len({r["salesforce_id"] for r in rows}) == len(rows)
    assert len({(r["mailbox"], r["exchange_id"]) for r in rows}) == len(rows)


# --- the mass-change guard ---------------------------------------------------------------


def open_guard_issues(store: Store) -> dict[str, str]:
    return {i["mailbox"]: i["message"] for i in queries.issues(store, kind="mass-change-guard")
            if i["state"] == "open"}


def approve(store: Store, mailbox: str) -> None:
    from adapters.feed.envelopes import envelope, parse_line
    from ledger.intake import Intake, Ledger

    line = envelope("sync.guard", "2026-11-20T13:00:00Z",
                    {"action": "approved", "reason": "test"}, mailbox=mailbox)
    Ledger(store).ingest([Intake("approve", None, line, parse_line(line))])


def test_the_guard_holds_a_fifty_percent_deletion_until_approved(
        store: Store, cloud: SandboxCloud) -> None:
    from adapters.sandbox import org as sandbox

    sync(store, cloud)
    alice = {r["meeting_id"] for r in queries.mapping(store, mailbox=sandbox.ALICE)}
    assert 4 <= len(alice) <= 5  # (the people work added a meeting to the sandbox org)
    for name in ("Quarterly pipeline review", "Customer QBR"):  # 40-50 % of her meetings
        item = next(e for e in cloud.graph.calendar(sandbox.ALICE) if e["subject"] == name)
        cloud.graph.remove_event(sandbox.ALICE, item["id"])
    cloud.clear_log()
    held = sync(store, cloud)
    assert cloud.writes() == [] and held["writes"] == []
    assert set(held["held"]) == {sandbox.ALICE}
    assert {(w["target"], w["op"]) for w in held["withheld"]} == {("salesforce", "delete")}
    assert "delete 2" in open_guard_issues(store)[sandbox.ALICE]
    again = sync(store, cloud)  # still held, nothing written, the issue stays open
    assert cloud.writes() == [] and set(again["held"]) == {sandbox.ALICE}
    approve(store, sandbox.ALICE)
    through = sync(store, cloud)
    assert through["held"] == {}
    assert sorted(w["op"] for w in through["writes"]) == ["delete", "delete"]
    assert open_guard_issues(store) == {}
    assert sync(store, cloud)["writes"] == []


def test_an_empty_read_holds_the_mailbox_and_its_deletions(
        store: Store, cloud: SandboxCloud) -> None:
    from adapters.sandbox import org as sandbox

    sync(store, cloud)
    # Bob's calendar reads empty (a permissions glitch, a wiped mailbox) on a full read.
    cloud.graph.events[sandbox.BOB].clear()
    cloud.graph.expire_delta_tokens()
    cloud.clear_log()
    first = sync(store, cloud)
    assert set(first["held"]) == {sandbox.BOB} and cloud.writes() == []
    assert "returned no items" in open_guard_issues(store)[sandbox.BOB]
    # A reconciliation confirms the copy is gone and plans its deletion: held too, both
    # by 'apply' and by later (delta) syncs, until a person approves.
    plan = reconcile(store, cloud, apply_plan=True)
    assert any(w["op"] == "delete" for w in plan["writes"])
    assert set(plan["outcome"]["held"]) == {sandbox.BOB} and not plan["outcome"]["done"]
    later = sync(store, cloud)
    assert set(later["held"]) == {sandbox.BOB} and cloud.writes() == []
    dry = sync(store, cloud, allow_mass_change=False, dry_run=True)
    assert any(w["op"] == "delete" for w in dry["planned"]) and cloud.writes() == []
    through = sync(store, cloud, allow_mass_change=True)
    ops = [w["op"] for w in through["writes"]]
    assert ops and set(ops) == {"delete"}
    assert open_guard_issues(store) == {}


def test_dry_run_shows_the_plan_and_writes_nothing(store: Store, cloud: SandboxCloud) -> None:
    dry = sync(store, cloud, dry_run=True)
    assert cloud.writes() == [] and dry["writes"] == []
    shown = sorted((w["target"], w["op"], w["key"]) for w in dry["planned"])
    real = sync(store, cloud)
    # The cycle carries out what the dry run showed (later rounds add the follow-ups
    # that the first writes' answers call for, e.g. categories after a create).
    assert shown and set(shown) <= {(w["target"], w["op"], w["key"]) for w in real["writes"]}


def test_guard_notes_and_full_reads_replay_from_the_feed(store: Store) -> None:
    """What the guard and reconciliation record is feed lines: ingest replays them."""
    from adapters.feed.envelopes import FeedError, envelope, parse_line
    from ledger.intake import Intake, Ledger

    def ingest(*lines: bytes) -> None:
        Ledger(store).ingest([Intake("t", n, line, parse_line(line))
                              for n, line in enumerate(lines, 1)])

    bob = "bob@contoso.com"
    ingest(envelope("sync.guard", "2026-11-20T13:00:00Z",
                    {"action": "held", "reason": "the full read of bob returned no items"},
                    mailbox=bob),
           envelope("calendar.read", "2026-11-20T13:00:00Z",
                    {"source": "salesforce", "start": "2026-11-06T13:00:00Z",
                     "end": "2027-01-19T13:00:00Z", "ids": ["00U5e0000000030"]},
                    mailbox=bob))
    assert "returned no items" in open_guard_issues(store)[bob]
    safety = store.safety()
    assert safety is not None
    assert safety.reads[f"salesforce|{bob}"]["ids"] == ["00U5e0000000030EAA"]
    ingest(envelope("sync.guard", "2026-11-20T14:00:00Z",
                    {"action": "released", "reason": "approved"}, mailbox=bob))
    assert open_guard_issues(store) == {}
    # An older full read recorded later (another file) is history, not the latest read:
    # explain would otherwise say the Event was gone by a read from before it existed.
    ingest(envelope("calendar.read", "2026-11-20T12:00:00Z",
                    {"source": "salesforce", "start": "2026-11-06T12:00:00Z",
                     "end": "2027-01-19T12:00:00Z", "ids": []}, mailbox=bob))
    safety = store.safety()
    assert safety is not None
    assert safety.reads[f"salesforce|{bob}"]["observed_at"] == "2026-11-20T13:00:00Z"
    assert safety.reads[f"salesforce|{bob}"]["ids"] == ["00U5e0000000030EAA"]
    with pytest.raises(FeedError) as bad:
        parse_line(envelope("calendar.read", "2026-11-20T13:00:00Z",
                            {"source": "salesforce", "start": "2026-11-06T13:00:00Z",
                             "end": "2027-01-19T13:00:00Z", "ids": ["001000000000001"]},
                            mailbox=bob))
    assert bad.value.field == "payload.ids[0]"
    with pytest.raises(FeedError) as bad:
        parse_line(envelope("sync.guard", "2026-11-20T13:00:00Z",
                            {"action": "deleted", "reason": ""}, mailbox=bob))
    assert bad.value.field == "payload.action"


def test_reconcile_alone_rebuilds_the_mapping_of_a_fresh_ledger_from_markers(
        store: Store, cloud: SandboxCloud, tmp_path: Path) -> None:
    first = Store.open(f"sqlite:///{tmp_path / 'a.db'}")
    try:
        sync(first, cloud)
        before = pairs(first)
    finally:
        first.close()
    cloud.clear_log()
    result = reconcile(store, cloud)  # no sync on this ledger: only the full reads
    assert result["writes"] == [] and cloud.writes() == []
    assert {r["class"] for r in result["drift"]} == {"adopted"}
    assert pairs(store) == before
    assert {r["salesforce_id"] for r in result["drift"]} == {sf for _, _, sf in before}
