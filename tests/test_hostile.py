"""The hostile corpus (``tests/hostile_corpus.py``) through ingest and through a live sync."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.cli.sync import run_cycle
from adapters.sandbox.cloud import SandboxCloud
from ledger.store import Store
from tests.hostile_corpus import requests_outside, run_ingest, seed_cloud
from tests.test_sync import clock


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(f"sqlite:///{tmp_path / 'ledger.db'}")
    yield s
    s.close()


def test_every_hostile_id_is_refused_naming_its_field(store: Store, tmp_path: Path) -> None:
    figures = run_ingest(store, tmp_path)
    assert figures["lines_read"] == figures["tried"] + 1  # nothing stopped the file
    assert figures["ids_accepted"] == [] and figures["refused_naming_another_field"] == []
    assert figures["ids_refused_field_named"] == figures["ids_tried"]
    assert figures["text_taken_as_data"] > 0


def test_a_live_sync_of_hostile_items_writes_only_to_its_own_objects(
        store: Store, tmp_path: Path) -> None:
    with SandboxCloud.demo(clock=clock) as cloud:
        seed_cloud(cloud)
        outcome = run_cycle(store, cloud.config(), clock=clock, saves=cloud.take_saves(),
                            sleep=lambda s: None, on_step=lambda s: None)
        assert outcome["error"] is None, outcome
        assert outcome["quarantined"] > 0
        assert requests_outside(cloud) == []
        rows = store.quarantined()
        assert rows and all(r["field"] for r in rows)
