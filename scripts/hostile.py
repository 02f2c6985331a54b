"""The hostile corpus's figures: ``python scripts/hostile.py`` (see tests/hostile_corpus.py)."""

from __future__ import annotations

import json
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.cli.sync import run_cycle
from adapters.sandbox.cloud import SandboxCloud
from ledger.store import Store
from tests.hostile_corpus import requests_outside, run_ingest, seed_cloud

NOW = datetime(2026, 11, 20, 13, 0, tzinfo=UTC)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(f"sqlite:///{tmp}/ingest.db")
        figures = run_ingest(store, Path(tmp))
        store.close()
        store = Store.open(f"sqlite:///{tmp}/sync.db")
        with SandboxCloud.demo(clock=lambda: NOW) as cloud:
            seeded = seed_cloud(cloud)
            outcome = run_cycle(store, cloud.config(), clock=lambda: NOW,
                                saves=cloud.take_saves(), sleep=lambda s: None,
                                on_step=lambda s: None)
            rows = store.quarantined()
            figures["sync"] = {
                "hostile_items_seeded": seeded, "cycle_error": outcome["error"],
                "quarantined": len(rows),
                "quarantined_without_field": sum(1 for r in rows if not r["field"]),
                "requests": len(cloud.graph.requests) + len(cloud.salesforce.requests),
                "writes": len(cloud.writes()),
                "requests_outside_own_objects": requests_outside(cloud)}
        store.close()
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
