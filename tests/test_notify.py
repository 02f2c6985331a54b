"""Graph change notifications end to end: the emulated Graph, the served endpoint, the sync.

The dashboard app is served over HTTPS by uvicorn (a certificate from the
emulators' throw-away CA); the Graph emulator creates subscriptions only after
the validation handshake against it and POSTs notifications to it when its
calendars change. What a user would notice: an Outlook edit reaches
Salesforce within seconds, through notification -> request_pull -> ``run``'s
scheduler, with a poll interval of an hour; forged notifications do nothing;
lifecycle events renew or re-create the subscription and pull the mailbox.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from fastapi.testclient import TestClient

from adapters.graph import subscriptions as graph_subs
from adapters.graph.client import GraphClient, GraphError
from adapters.sandbox.cloud import SandboxCloud
from adapters.sandbox.org import ALICE, BOB, _graph_id
from adapters.service.policy import Policy
from adapters.service.scheduler import Log, Scheduler
from adapters.web.app import WebConfig, create_app
from adapters.web.notify import PATH, Notifications
from ledger.store import Store
from projections import status, subscriptions
from tests.live_server import free_port, serving
from tests.test_service import Lines
from tests.test_sync import NOW, clock

HOUR = Policy(interval=3600, salesforce_interval=3600)


def wait_for(what: Callable[[], Any], timeout: float = 30.0, step: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = what()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"not within {timeout} s: {what}")


@contextmanager
def notify_service(cloud: SandboxCloud, db: str, **options: Any
                   ) -> Iterator[tuple[Notifications, str]]:
    """The web app with notifications on, served over HTTPS; yields it and its URL."""
    port = free_port()
    url = f"https://127.0.0.1:{port}{PATH}"
    notes = Notifications(db, GraphClient(cloud.config().graph), cloud.mailboxes,
                          notify_url=url, clock=clock, **options)
    app = create_app(WebConfig(db=db, notifications=notes))
    with serving(app, port=port, ssl_certfile=cloud.ca.server_pem()):
        yield notes, url


def subscribed(cloud: SandboxCloud, store: Store) -> dict[str, dict[str, Any]]:
    rows = {r["mailbox"]: r for r in subscriptions.rows(store) if r["state"] == "active"}
    live = {s["id"] for s in cloud.graph.subscriptions.values()}
    ok = set(cloud.mailboxes) <= set(rows) and all(r["subscription_id"] in live
                                                    for r in rows.values())
    return rows if ok else {}


def test_an_outlook_edit_reaches_salesforce_through_a_notification(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    with SandboxCloud.demo(clock=clock) as cloud:
        store = Store.open(db)
        log = Lines()
        sched = Scheduler(store, cloud.config(), clock=clock, policy=HOUR, tick=0.05,
                          log=Log("json", log),  # type: ignore[arg-type]
                          saves=cloud.take_saves, sleep=lambda s: None)
        with notify_service(cloud, db) as (_notes, _url):
            wait_for(lambda: subscribed(cloud, store))
            runner = threading.Thread(target=sched.run, daemon=True)
            runner.start()  # a first full cycle, then each job on its (hourly) interval
            wait_for(lambda: sched.totals.cycles >= 1, timeout=120)
            time.sleep(0.3)
            cloud.clear_log()
            graph = GraphClient(cloud.config().graph)
            review = _graph_id(ALICE, "review")
            edited = time.monotonic()
            graph.patch_event(ALICE, review, {"subject": "Quarterly review (moved agenda)"})
            sf_write = wait_for(lambda: next((w for w in cloud.salesforce.writes
                                              if w["method"] == "PATCH"
                                              and "/sobjects/Event/" in w["path"]), None))
            written = time.monotonic()
            sched.stop.set()
            runner.join(timeout=30)
        delivered = next(d for d in cloud.graph.deliveries
                         if d["at"] >= edited and d["what"] == "updated")
        store.close()
    assert delivered["status"] == 202
    assert sf_write["body"]["Subject"] == "Quarterly review (moved agenda)"
    lag = written - edited
    print(f"\nnotification timeline (seconds after the Outlook edit; poll interval "
          f"{HOUR.interval:.0f} s):\n"
          f"  Outlook edit (PATCH to the Graph emulator)   0.000\n"
          f"  notification delivered, answered 202         {delivered['at'] - edited:.3f}\n"
          f"  Salesforce Event PATCH by the sync           {lag:.3f}")
    assert lag < 15, lag  # seconds, where the poll would have waited an hour


def test_the_handshake_and_what_the_emulated_graph_refuses(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    Store.open(db).close()
    with TestClient(create_app(WebConfig(db=db, token="s3cret-dashboard-token-for-tests",
                                         notifications=Notifications(
            db, None, (), notify_url="https://example.invalid/n"))),  # type: ignore[arg-type]
            client=("203.0.113.9", 443)) as web:
        # Graph's handshake: the token back as text/plain, without the dashboard's token
        assert web.get("/api/issues").status_code == 401
        began = time.monotonic()
        answer = web.post(f"{PATH}?validationToken=Validation%3A+Testing+123")
        assert answer.status_code == 200 and answer.text == "Validation: Testing 123"
        assert answer.headers["content-type"].startswith("text/plain")
        assert time.monotonic() - began < 10
        assert web.post(f"{PATH}?validationToken=").status_code == 400
        assert web.post(PATH, content=b"not json").status_code == 400
        assert "subscriptionId" in web.post(PATH, json={"value": [{}]}).json()["error"]
    with pytest.raises(ValueError, match="HTTPS"):
        Notifications(db, None, (), notify_url="http://example.com/n")  # type: ignore[arg-type]
    with SandboxCloud.demo(clock=clock) as cloud:
        graph = GraphClient(cloud.config().graph)
        good = {"notification_url": "https://127.0.0.1:9/none", "secret": "s"}
        for kwargs, message in (
                ({"notification_url": "http://127.0.0.1/n", "secret": "s",
                  "expires": NOW + timedelta(days=1)}, "HTTPS"),
                ({**good, "expires": NOW + timedelta(minutes=10081)}, "10080 minutes"),
                ({**good, "expires": NOW - timedelta(minutes=1)}, "in the future"),
                ({**good, "expires": NOW + timedelta(days=1)}, "validation request failed")):
            with pytest.raises(GraphError, match=message):
                graph_subs.create(graph, ALICE, **kwargs)  # type: ignore[arg-type]
        assert cloud.graph.subscriptions == {}
        # an endpoint that answers but does not echo the token is refused too
        port = free_port()
        with serving(create_app(WebConfig(db=db)), port=port,
                     ssl_certfile=cloud.ca.server_pem()), \
                pytest.raises(GraphError, match="must respond with 200 OK"):
            graph_subs.create(graph, ALICE, notification_url=f"https://127.0.0.1:{port}"
                              "/healthz", secret="s", expires=NOW + timedelta(days=1))
        assert cloud.graph.subscriptions == {}


def test_forged_notifications_do_nothing(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    with SandboxCloud.demo(clock=clock) as cloud:
        store = Store.open(db)
        with notify_service(cloud, db) as (_notes, url):
            rows = wait_for(lambda: subscribed(cloud, store))
            sub_id = rows[ALICE]["subscription_id"]
            real = cloud.graph.subscriptions[sub_id]["clientState"]
            bob_secret = cloud.graph.subscriptions[rows[BOB]["subscription_id"]]["clientState"]
            status.take_requests(store)

            def post(items: list[dict[str, Any]]) -> int:
                return requests.post(url, json={"value": items}, verify=cloud.ca.ca_file,
                                     timeout=10).status_code

            change = {"subscriptionId": sub_id, "changeType": "updated",
                      "resource": f"Users/{ALICE}/Events/x", "tenantId": "contoso"}
            assert post([{**change, "clientState": "guessed"}]) == 403
            assert post([{**change, "clientState": bob_secret}]) == 403  # another's secret
            assert post([change]) == 403  # none at all
            assert post([{**change, "subscriptionId": "0000-unknown", "clientState": real}]) == 403
            assert status.take_requests(store) == []  # nothing was pulled for them
            assert post([{**change, "clientState": real},
                         {**change, "clientState": "guessed"}]) == 202
            assert status.take_requests(store) == [ALICE]
        store.close()


def test_lifecycle_events_renew_pull_and_subscribe_again(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    with SandboxCloud.demo(clock=clock) as cloud:
        store = Store.open(db)
        with notify_service(cloud, db, check_every=0.5) as (_notes, _url):
            rows = wait_for(lambda: subscribed(cloud, store))
            first = rows[ALICE]["subscription_id"]
            status.take_requests(store)

            def renewals() -> list[dict[str, Any]]:
                return [w for w in cloud.graph.writes
                        if w["method"] == "PATCH" and w["path"] == f"/v1.0/subscriptions/{first}"]

            cloud.graph.lifecycle(first, "reauthorizationRequired")
            wait_for(renewals)
            assert wait_for(lambda: subscriptions.rows(store)[0]["renewed_at"])
            assert status.take_requests(store) == []  # a renewal, no pull

            cloud.graph.lifecycle(first, "missed")
            wait_for(lambda: len(renewals()) >= 2)
            assert wait_for(lambda: status.take_requests(store)) == [ALICE]
            assert subscribed(cloud, store)[ALICE]["subscription_id"] == first

            cloud.graph.lifecycle(first, "subscriptionRemoved")
            assert first not in cloud.graph.subscriptions
            again = wait_for(lambda: subscribed(cloud, store).get(ALICE, {}).get(
                "subscription_id") not in (None, first) and subscribed(cloud, store))
            assert again[ALICE]["subscription_id"] in cloud.graph.subscriptions
            assert wait_for(lambda: status.take_requests(store)) == [ALICE]
            assert subscriptions.rows(store)[0]["last_notice"] == "subscriptionRemoved"
        store.close()


def test_subscriptions_are_renewed_before_they_expire(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    with SandboxCloud.demo(clock=clock) as cloud:
        store = Store.open(db)
        with notify_service(cloud, db, lifetime=timedelta(hours=3),
                            renew_before=timedelta(hours=1), check_every=3600) as (notes, _):
            rows = wait_for(lambda: subscribed(cloud, store))
            for sub in cloud.graph.subscriptions.values():
                assert sub["changeType"] == "created,updated,deleted"
                assert sub["resource"] == f"users/{sub['_mailbox']}/events"
                assert sub["expirationDateTime"].startswith(
                    (NOW + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%S"))
            cloud.clear_log()
            assert notes.upkeep(store) == 0 and not cloud.graph.writes  # 3 h left: nothing
            later = NOW + timedelta(hours=2, minutes=1)
            notes.clock = lambda: later
            assert notes.upkeep(store) == 0
            patched = sorted(w["path"] for w in cloud.graph.writes if w["method"] == "PATCH")
            assert patched == sorted(f"/v1.0/subscriptions/{r['subscription_id']}"
                                     for r in rows.values())
            for row in subscriptions.rows(store):
                assert row["expires_at"] == (later + timedelta(hours=3)).isoformat()
                assert row["subscription_id"] == rows[row["mailbox"]]["subscription_id"]
        store.close()
