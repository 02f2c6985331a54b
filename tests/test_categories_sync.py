"""Outlook categories end to end (issue 18 point 6, DOMAIN.md §4): a synced item gets
"Salesforce", an item whose write was refused gets "Error", through a sync cycle
against the emulators (``run_cycle``: msal, simple-salesforce and requests over
HTTPS, as ``sync --sandbox`` does), asserting the Graph PATCHes sent and what the
Graph emulator stored on the item.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.cli.sync import run_cycle
from adapters.sandbox import org as sandbox
from adapters.sandbox.cloud import SandboxCloud
from adapters.sandbox.org import ALICE, BOB, graph_event
from ledger.store import Store
from projections import queries

NOW = datetime(2026, 11, 20, 13, 0, tzinfo=UTC)
ORG = {"org_domains": [sandbox.ORG_DOMAIN], "product_users": dict(sandbox.USER_IDS),
       "sync_private_items": False}


def clock() -> datetime:
    return NOW


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(f"sqlite:///{tmp_path / 'ledger.db'}")
    yield opened
    opened.close()


def meeting(name: str) -> dict[str, Any]:
    """Alice's own meeting near NOW: auto-saved (``auto_save`` organizer)."""
    event = graph_event(ALICE, name, subject=name, organizer=ALICE,
                        start="2026-11-23T17:00:00", end="2026-11-23T18:00:00")
    return {"kind": "graph.event", "observed_at": "2026-11-20T09:00:00Z", "mailbox": ALICE,
            "payload": event}


def sync(store: Store, cloud: SandboxCloud) -> dict[str, Any]:
    outcome = run_cycle(store, cloud.config(), clock=clock, saves=cloud.take_saves(),
                        sleep=lambda s: None, on_step=lambda step: None)
    assert outcome["error"] is None and outcome["failures"] == [], outcome
    return outcome


def graph_writes(cloud: SandboxCloud) -> list[tuple[str, Any]]:
    return [(w["method"], w["body"]) for w in cloud.graph.writes]


def categories(cloud: SandboxCloud, item_id: str) -> list[str]:
    return list((cloud.graph.event(ALICE, item_id) or {})["categories"])


def test_a_synced_item_gets_the_salesforce_category(store: Store) -> None:
    line = meeting("Pipeline review")
    item_id = line["payload"]["id"]
    with SandboxCloud([line], mailboxes=[ALICE, BOB], org=ORG, clock=clock) as cloud:
        sync(store, cloud)
        [event] = cloud.salesforce.all("Event")
        assert event["Subject"] == "Pipeline review"
        assert graph_writes(cloud) == [("PATCH", {"categories": ["Salesforce"]})]
        assert categories(cloud, item_id) == ["Salesforce"]
        cloud.clear_log()
        sync(store, cloud)
        assert cloud.writes() == []  # the category is there: nothing more to write


def test_a_write_salesforce_refused_puts_error_on_the_item_in_the_same_cycle(
        store: Store) -> None:
    line = meeting("Renewal")
    item_id = line["payload"]["id"]
    with SandboxCloud([line], mailboxes=[ALICE, BOB], org=ORG, clock=clock) as cloud:
        cloud.salesforce.fail(400, "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                              "Events need a Type before they can be saved", method="POST",
                              path=r"/sobjects/Event/$", times=1)
        first = sync(store, cloud)
        assert len(first["refused_writes"]) == 1 and cloud.salesforce.all("Event") == []
        # The refusal's round is followed by another: the Error PATCH goes out now.
        assert graph_writes(cloud) == [("PATCH", {"categories": ["Error"]})]
        assert categories(cloud, item_id) == ["Error"]
        cloud.clear_log()
        sync(store, cloud)
        assert cloud.writes() == []  # not sent again, and Error is already there

        changed = {**line["payload"], "subject": "Renewal (with Type)", "changeKey": "ck-2"}
        cloud.graph.put_event(ALICE, changed)
        sync(store, cloud)
        assert [e["Subject"] for e in cloud.salesforce.all("Event")] == ["Renewal (with Type)"]
        assert graph_writes(cloud) == [("PATCH", {"categories": ["Salesforce"]})]
        assert categories(cloud, item_id) == ["Salesforce"]  # Error off, synced on


def test_a_write_graph_refused_puts_error_on_the_item(store: Store) -> None:
    """A refused write to Outlook is no Salesforce issue, so no issue asks for "Error"
    (``outlook_category`` is off): the refusal itself does."""
    line = meeting("Forecast")
    item_id = line["payload"]["id"]
    with SandboxCloud([line], mailboxes=[ALICE, BOB], org=ORG, clock=clock) as cloud:
        sync(store, cloud)
        [event] = cloud.salesforce.all("Event")
        cloud.clear_log()
        cloud.salesforce.touch(event["Id"], Location="Room 9")  # edited in Salesforce
        cloud.graph.fail(400, "ErrorInvalidRequest", "The location is not valid.",
                         method="PATCH", path=item_id, times=1)
        second = sync(store, cloud)
        assert len(second["refused_writes"]) == 1
        # the refused PATCH is not in the log (refused), the category PATCH is
        assert graph_writes(cloud) == [("PATCH", {"categories": ["Salesforce", "Error"]})]
        assert categories(cloud, item_id) == ["Salesforce", "Error"]
        [issue] = [i for i in queries.issues(store) if i["kind"] == "write-refused"]
        assert issue["state"] == "open" and "Exchange refused the update (400 " \
            "ErrorInvalidRequest): The location is not valid." in issue["message"]

        cloud.clear_log()
        cloud.salesforce.touch(event["Id"], Location="Room 10")  # a different write now
        sync(store, cloud)
        assert (cloud.graph.event(ALICE, item_id) or {})["location"]["displayName"] == \
            "Room 10"
        assert categories(cloud, item_id) == ["Salesforce"]
        [issue] = [i for i in queries.issues(store) if i["kind"] == "write-refused"]
        assert issue["state"] == "resolved"
