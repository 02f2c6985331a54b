"""Data from outside never steers a write; private stays private (README, "Security").

Live cycles against the emulators with the real clients: what was requested
and written is read from the emulators' own logs.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from adapters.cli.main import main
from adapters.feed.envelopes import envelope
from adapters.feed.ingest import ingest_files
from adapters.sandbox import org as sandbox
from adapters.sandbox.cloud import SandboxCloud
from ledger.identity import salesforce_id18
from ledger.store import Store
from projections import queries
from tests.test_sync import clock, sync

CONTRACT = salesforce_id18("00U5e0000000030")  # Bob's "Contract signing", made in Salesforce


@pytest.fixture
def cloud() -> Iterator[SandboxCloud]:
    with SandboxCloud.demo(clock=clock) as c:
        yield c


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(f"sqlite:///{tmp_path / 'ledger.db'}")
    yield s
    s.close()


def crafted(marker: str, **fields: Any) -> dict[str, Any]:
    return sandbox.graph_event(sandbox.ALICE, "crafted", subject="Crafted", organizer=sandbox.ALICE,
                               start="2026-11-23T10:00:00", end="2026-11-23T11:00:00",
                               marker=marker, **fields)


def sf_requests(cloud: SandboxCloud) -> list[tuple[str, str]]:
    return [(m, p) for m, p, _ in cloud.salesforce.requests if "/sobjects/" in p]


def test_a_marker_holding_a_path_is_quarantined_and_deletes_nothing(
        store: Store, cloud: SandboxCloud) -> None:
    relation = cloud.salesforce.all("EventRelation")[0]["Id"]
    item = crafted(f"../EventRelation/{relation}")
    cloud.graph.put_event(sandbox.ALICE, item)
    assert sync(store, cloud)["quarantined"] == 1
    cloud.clear_log()
    cloud.graph.remove_event(sandbox.ALICE, item["id"])
    sync(store, cloud)
    assert queries.plan(store) == []
    assert [m for m, _ in sf_requests(cloud) if m != "GET"] == []
    assert relation in [r["Id"] for r in cloud.salesforce.all("EventRelation")]
    (row,) = store.quarantined()
    assert row["field"] == "payload.singleValueExtendedProperties[0].value"
    assert "not a Salesforce Id" in row["error"]


def test_a_marker_naming_someone_elses_event_never_writes_to_it(
        store: Store, cloud: SandboxCloud) -> None:
    sync(store, cloud)  # Bob's Contract signing is down-synced into his calendar
    item = crafted(CONTRACT)  # Alice's own item claims Bob's Event by a valid Id
    cloud.graph.put_event(sandbox.ALICE, item)
    sync(store, cloud)
    cloud.clear_log()
    cloud.graph.remove_event(sandbox.ALICE, item["id"])  # she deletes it: "delete the Event"
    outcome = sync(store, cloud)
    assert [m for m, _ in sf_requests(cloud) if m != "GET"] == []
    assert cloud.salesforce.get("Event", CONTRACT) is not None
    # The crafted copy is never linked (one Outlook copy per Event: a second copy with
    # the same marker is a duplicate, issue 14), so no deletion of Bob's Event is even
    # planned; were one planned, the outbox target check would refuse it.
    assert outcome["writes"] == [] and outcome["refused_writes"] == []
    rows = [r for r in queries.mapping(store) if r["salesforce_id"] == CONTRACT]
    assert [r["mailbox"] for r in rows] == [sandbox.BOB]


def test_a_private_item_spelled_private_with_a_capital_is_private(
        store: Store, cloud: SandboxCloud) -> None:
    cloud.graph.put_event(sandbox.ALICE, sandbox.graph_event(
        sandbox.ALICE, "shouty", subject="Layoff planning", organizer=sandbox.ALICE,
        start="2026-11-23T10:00:00", end="2026-11-23T11:00:00", sensitivity="Private",
        body="names", location="Room 1"))
    sync(store, cloud)
    assert "Layoff" not in json.dumps(cloud.writes())
    assert all(b"Layoff" not in state for *_, state in store.read_log(0, 10**6))
    assert any(i["kind"] == "private-item" and "Layoff" not in i["message"]
               for i in queries.issues(store))


def test_a_quarantined_private_line_keeps_no_content(store: Store, tmp_path: Path) -> None:
    item = sandbox.graph_event(sandbox.ALICE, "p", subject="Salary review", organizer=sandbox.ALICE,
                               start="2026-11-23T10:00:00", end="2026-11-23T11:00:00",
                               sensitivity="CONFIDENTIAL", body="secret body",
                               location="HR office", attendees=(sandbox.BOB,))
    item["isAllDay"] = "yes"  # wrong for an unrelated reason
    feed = tmp_path / "feed.jsonl"
    feed.write_bytes(envelope("graph.event", "2026-11-20T09:00:00Z", item,
                              mailbox=sandbox.ALICE) + b"\n")
    assert ingest_files(store, [feed], show_progress=False).quarantined == 1
    (row,) = store.quarantined()
    assert row["field"] == "payload.isAllDay" and "blanked" in row["error"]
    for secret in ("Salary", "secret body", "HR office", sandbox.BOB):
        assert secret not in row["raw"]
    assert orjson.loads(row["raw"])["payload"]["isAllDay"] == "yes"  # the rest is kept


def test_sync_record_writes_no_private_content_and_reingests(
        store: Store, cloud: SandboxCloud, tmp_path: Path) -> None:
    record = tmp_path / "recorded.jsonl"
    with record.open("ab") as handle:
        sync(store, cloud, record=handle)
    text = record.read_text()
    assert "compensation" not in text and "Salary" not in text  # Alice's private 1:1
    fresh = Store.open(f"sqlite:///{tmp_path / 'replayed.db'}")
    try:
        assert ingest_files(fresh, [record], show_progress=False).quarantined == 0
        assert queries.mapping(fresh) == queries.mapping(store)
    finally:
        fresh.close()


def _private_event(cloud: SandboxCloud) -> dict[str, Any]:
    event = sandbox.sf_event(90, subject="Acquisition talks", start="2026-11-24T10:00:00",
                             end="2026-11-24T11:00:00", owner=sandbox.BOB,
                             modstamp="2026-11-19T08:00:00.000+0000")
    event["IsPrivate"] = True
    cloud.salesforce.put("Event", event)
    return event


@pytest.mark.parametrize("allowed", [False, True])
def test_a_private_salesforce_event_goes_down_only_when_allowed_and_then_as_private(
        store: Store, cloud: SandboxCloud, allowed: bool) -> None:
    cloud.org["sync_private_items"] = allowed
    _private_event(cloud)
    sync(store, cloud)
    posts = [w["body"] for w in cloud.graph.writes if w["method"] == "POST"
             and w["body"].get("subject") == "Acquisition talks"]
    if not allowed:
        assert posts == []
        assert all(b"Acquisition talks" not in state for *_, state in store.read_log(0, 10**6))
    else:
        assert [p["sensitivity"] for p in posts] == ["private"]


@pytest.mark.parametrize("allowed", [False, True])
def test_a_private_outlook_item_goes_up_only_when_allowed_and_then_as_private(
        store: Store, cloud: SandboxCloud, allowed: bool) -> None:
    """Alice's private 1:1 reaches Salesforce only when the org syncs private items, and
    then as a private Event (IsPrivate), so Salesforce hides it from other users too."""
    cloud.org["sync_private_items"] = allowed
    sync(store, cloud)
    creates = [w["body"] for w in cloud.salesforce.writes
               if w["method"] == "POST" and w["path"].endswith("/sobjects/Event/")]
    private = [b for b in creates if b.get("Subject") == "1:1 compensation talk"]
    assert [b.get("IsPrivate") for b in private] == ([True] if allowed else [])
    assert creates and all(b.get("IsPrivate") is None for b in creates if b not in private)


def test_ledger_cloud_state_and_record_files_are_owner_only(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        db = tmp_path / "s.db"
        assert main(["sync", "--sandbox", "--db", str(db), "--record",
                     str(tmp_path / "r.jsonl")]) == 0
    finally:
        os.umask(old)
    made = [p for p in tmp_path.iterdir()]
    assert {p.name for p in made} >= {"s.db", "s.db.cloud.json", "r.jsonl"}
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in made} == {
        p.name: 0o600 for p in made}
