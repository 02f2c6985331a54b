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
