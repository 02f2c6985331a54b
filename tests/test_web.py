"""The dashboard and its JSON API over a real ledger, through FastAPI's test client.

What an admin would notice: the API answers exactly what the CLI's ``--json``
prints, the pages filter and page, any id opens its meeting, a subject from
outside cannot run script in the page, a private meeting shows no content,
and nobody without the token (or off loopback) gets in.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.cli.main import main
from adapters.sandbox.org import ALICE, BOB, _graph_id, _ical, _sf_id, build, graph_event
from adapters.web.access import AccessError, check_binding
from adapters.web.app import WebConfig, create_app
from ledger.identity import ical_key, meeting_id
from ledger.store import Store
from tests.scenarios import ingest, org_with_settings

LOOPBACK = ("127.0.0.1", 50000)
XSS = '<script>alert("subject")</script><img src=x onerror=alert(1)>'
TOKEN = "s3cret-dashboard-token-for-tests"


def _demo_with_hostile_subject(store_url: str, tmp: Path) -> None:
    org = build()
    org.graph(40, ALICE, graph_event(ALICE, "xss", subject=XSS, organizer=ALICE,
                                     attendees=(ALICE, BOB), start="2026-11-25T10:00:00",
                                     end="2026-11-25T11:00:00"))
    store = Store.open(store_url)
    ingest(store, org, tmp)
    store.close()


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    tmp = tmp_path_factory.mktemp("web")
    url = f"sqlite:///{tmp / 'demo.db'}"
    _demo_with_hostile_subject(url, tmp)
    return url


@pytest.fixture(scope="module")
def client(demo_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(WebConfig(db=demo_url)), client=LOOPBACK) as c:
        yield c


def cli_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_api_answers_what_the_cli_prints(store_url: str, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    _demo_with_hostile_subject(store_url, tmp_path)
    with TestClient(create_app(WebConfig(db=store_url)), client=LOOPBACK) as api:
        for route, argv in (
                ("/api/mapping", ["mapping"]), ("/api/issues", ["issues"]),
                ("/api/issues?state=open&kind=private-item", ["issues", "--state", "open",
                                                              "--kind", "private-item"]),
                ("/api/conflicts?mailbox=bob@contoso.com", ["conflicts", "--mailbox",
                                                            "bob@contoso.com"]),
                ("/api/plan", ["plan"]), ("/api/analytics", ["analytics"]),
                ("/api/analytics?daily=true", ["analytics", "--daily"]),
                ("/api/explain?id=" + _sf_id("00U", 1)[:15], ["explain", _sf_id("00U", 1)[:15]]),
                ("/api/history?id=" + _ical("boardprep"), ["history", _ical("boardprep")]),
                ("/api/state?id=" + _ical("boardprep") + "&version=2",
                 ["state", _ical("boardprep"), "--version", "2"])):
            answer = api.get(route)
            assert answer.status_code == 200, (route, answer.text)
            assert answer.json() == cli_json(capsys, *argv, "--db", store_url, "--json"), route
        paged = api.get("/api/issues?offset=1&limit=2")
        assert paged.json() == api.get("/api/issues").json()[1:3]
        assert paged.headers["X-Total-Count"] == str(len(api.get("/api/issues").json()))
        assert api.get("/api/explain?id=no-such-id").status_code == 404
        assert "no meeting" in api.get("/api/explain?id=no-such-id").json()["error"]
        assert api.get("/api/issues?state=closed").status_code == 422  # not a state
        whatif = api.post("/api/whatif", json={"set": ["sync_private_items=true"]})
        assert whatif.json() == cli_json(capsys, "whatif", "--set", "sync_private_items=true",
                                         "--db", store_url, "--json")
        bad = api.post("/api/whatif", json={"set": ["no_such_setting=1"]})
        assert bad.status_code == 400 and "no_such_setting" in bad.json()["detail"]


def test_overview_counts_what_the_read_models_hold(client: TestClient) -> None:
    data = client.get("/api/overview").json()
    issues = client.get("/api/issues?state=open").json()
    conflicts = client.get("/api/conflicts?state=open").json()
    assert data["totals"]["open_issues"] == len(issues) > 0
    assert data["totals"]["open_conflicts"] == len(conflicts) == 1
    alice = next(r for r in data["mailboxes"] if r["mailbox"] == ALICE)
    assert alice["open_issues"] == sum(1 for i in issues if i["mailbox"] == ALICE)
    page = client.get("/").text
    assert f'id="open-issues">{len(issues)}<' in page and ALICE in page


def test_issue_list_filters_and_pages(client: TestClient) -> None:
    page = client.get("/issues?kind=private-item&state=open").text
    assert page.count("<code>private-item</code>") == 1
    assert "<code>unsupported-time-zone</code>" not in page
    every = client.get("/api/issues").json()
    assert client.get("/issues").text.count("<tr>") == min(len(every), 25) + 1
    none = client.get("/issues?mailbox=nobody@contoso.com").text
    assert "No sync issue matches." in none
    conflicts = client.get("/conflicts?state=open").text
    assert "bob@contoso.com" in conflicts and "No conflict matches." not in conflicts


def test_meeting_page_by_every_kind_of_id(client: TestClient) -> None:
    review = str(meeting_id(ical_key(_ical("review"))))
    for any_id in (review, _ical("review"), _graph_id(ALICE, "review"), _sf_id("00U", 1),
                   _sf_id("00U", 1)[:15]):
        page = client.get("/meeting", params={"id": any_id})
        assert page.status_code == 200, any_id
        assert review in page.text and "Synced" in page.text
    apac = client.get("/meeting", params={"id": _graph_id(ALICE, "apac")}).text
    assert "unsupported-time-zone" in apac and "Who can act" in apac
    assert 'id="timeline"' in apac and "ExchangeItemObserved" in apac
    missing = client.get("/meeting", params={"id": "no-such-id"})
    assert missing.status_code == 404 and "no meeting in the ledger" in missing.text


def test_every_page_escapes_what_came_from_outside(client: TestClient) -> None:
    assert client.get("/api/explain", params={"id": _ical("xss")}).status_code == 200
    for path in ("/meeting?id=" + _ical("xss"), "/issues", "/"):
        text = client.get(path).text
        assert "<script>alert" not in text and "<img src=x" not in text
    page = client.get("/meeting", params={"id": _ical("xss")}).text
    assert "&lt;script&gt;alert(&#34;subject&#34;)&lt;/script&gt;" in page
    headers = client.get("/").headers
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    reflected = client.get("/meeting", params={"id": "<b>bold</b>"}).text
    assert "<b>bold</b>" not in reflected and "&lt;b&gt;bold&lt;/b&gt;" in reflected


@pytest.mark.parametrize("sensitivity", ["private", "Personal", "confidential"])
def test_private_meetings_show_no_content(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          sensitivity: str) -> None:
    """Personal and confidential are private as the ledger's rules say (DOMAIN.md §3), in
    any spelling: the dashboard used to hide private and confidential only."""
    url = f"sqlite:///{tmp_path / 'private.db'}"
    org = org_with_settings(sync_private_items=True)
    org.graph(1, ALICE, graph_event(ALICE, "secret", subject="Merger talk with Fabrikam",
                                    organizer=ALICE, attendees=(ALICE,),
                                    sensitivity=sensitivity, start="2026-11-24T17:00:00",
                                    end="2026-11-24T18:00:00", location="CEO office"))
    store = Store.open(url)
    ingest(store, org, tmp_path)
    store.close()
    cli = json.dumps(cli_json(capsys, "history", _ical("secret"), "--db", url, "--json"))
    assert "Merger talk" in cli  # the org syncs private items: the ledger holds it
    with TestClient(create_app(WebConfig(db=url)), client=LOOPBACK) as web:
        shown = [web.get("/meeting", params={"id": _ical("secret")}).text,
                 web.get("/api/history", params={"id": _ical("secret")}).text,
                 web.get("/api/explain", params={"id": _ical("secret")}).text,
                 web.get("/api/state", params={"id": _ical("secret")}).text,
                 web.get("/api/plan").text]
    for text in shown:
        assert "Merger talk" not in text and "CEO office" not in text
    assert "(private item)" in shown[0] and "(private)" in shown[1]


def test_token_or_loopback(demo_url: str) -> None:
    with pytest.raises(AccessError, match="loopback"):
        check_binding("0.0.0.0", None)
    with pytest.raises(AccessError, match="too short"):
        check_binding("0.0.0.0", "short")
    check_binding("127.0.0.1", None)
    check_binding("0.0.0.0", TOKEN)
    with TestClient(create_app(WebConfig(db=demo_url)), client=("10.1.2.3", 5000)) as far:
        assert far.get("/").status_code == 403
        assert far.get("/api/issues").status_code == 403
    app = create_app(WebConfig(db=demo_url, token=TOKEN))
    with TestClient(app, client=("10.1.2.3", 5000), follow_redirects=False) as web:
        assert web.get("/api/issues").status_code == 401
        assert web.get("/metrics").status_code == 401
        assert web.get("/api/issues", headers={"Authorization": "Bearer wrong"}
                       ).status_code == 401
        ok = web.get("/api/issues", headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200 and ok.json()
        page = web.get("/issues")
        assert page.status_code == 303 and page.headers["location"].startswith("/login")
        assert web.get("/healthz").status_code == 200  # probes carry no token
        assert web.post("/login", data={"token": "wrong", "next": "/"}).status_code == 401
        login = web.post("/login", data={"token": TOKEN, "next": "https://evil.example/"})
        assert login.status_code == 303 and login.headers["location"] == "/"
        assert "httponly" in login.headers["set-cookie"].lower()
        assert web.get("/issues").status_code == 200  # the cookie now carries the token


def test_health_metrics_and_api_docs(client: TestClient) -> None:
    health = client.get("/healthz").json()
    assert health["store"] == "ok" and health["last_cycle"]["position"] > 0
    metrics = client.get("/metrics").text
    open_issues = len(client.get("/api/issues?state=open&mailbox=" + ALICE).json())
    assert re.search(rf'syncledger_open_issues{{mailbox="{ALICE}"}} {open_issues}\.0', metrics)
    schema = client.get("/openapi.json").json()
    assert {"/api/issues", "/api/explain", "/api/whatif", "/healthz"} <= set(schema["paths"])
    docs = client.get("/api").text
    assert "/api/explain" in docs and "syncledger explain ID --json" in docs


def test_whatif_form(client: TestClient) -> None:
    page = client.post("/whatif", data={"settings": "sync_private_items=true\n"})
    assert page.status_code == 200
    private = str(meeting_id(ical_key(_ical("private"))))
    assert private in page.text and 'data-key="would_now_sync">1<' in page.text
    bad = client.post("/whatif", data={"settings": "no_such_setting=1"})
    assert bad.status_code == 400 and "no_such_setting" in bad.text


def test_overview_health_and_metrics_come_from_the_service_read_models(
        store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from adapters.sync.outbox import Outbox
    from projections import status

    _demo_with_hostile_subject(store_url, tmp_path)
    store = Store.open(store_url)
    status.record(store, status.JobRecord(
        key=ALICE, kind="mailbox", started="2026-11-20T09:00:00+00:00",
        ended="2026-11-20T09:00:01+00:00", ok=False, error="Graph 503 ServiceUnavailable",
        failures=2, backoff_until="2026-11-20T09:02:01+00:00"))
    status.record(store, status.JobRecord(
        key=BOB, kind="mailbox", started="2026-11-20T09:00:02+00:00",
        ended="2026-11-20T09:00:03+00:00", ok=True, observed=4))
    box = Outbox(store)
    write = {"key": "k1", "target": "salesforce", "op": "update", "mailbox": ALICE}
    for _ in range(status.PARKED_AFTER):
        box.sending("k1#x", write, "m1", "2026-11-20T09:00:00+00:00")
        box.finish("k1#x", "failed", "2026-11-20T09:00:00+00:00", error="refused")
    store.close()
    cli_status = {r["key"]: r for r in cli_json(capsys, "status", "--db", store_url, "--json")}
    unresolved = cli_json(capsys, "unresolved", "--db", store_url, "--json")
    assert unresolved  # the sandbox org's Tailspin guest matches no Contact or Lead
    with TestClient(create_app(WebConfig(db=store_url)), client=LOOPBACK) as web:
        data = web.get("/api/overview").json()
        rows = {r["mailbox"]: r for r in data["mailboxes"]}
        for mailbox in (ALICE, BOB):
            for key in ("failures", "last_success", "last_error", "backoff_until",
                        "parked_writes", "suspended"):
                assert rows[mailbox][key] == cli_status[mailbox][key], (mailbox, key)
        assert rows[ALICE]["parked_writes"] == data["totals"]["parked_writes"] == 1
        assert data["totals"]["unresolved_attendees"] == len(unresolved)
        page = web.get("/").text
        assert f'id="unresolved-attendees">{len(unresolved)}<' in page
        alice_row = page.split(f"<td>{ALICE}</td>", 1)[1].split("</tr>", 1)[0]
        assert "failing" in alice_row and "Graph 503" in alice_row
        health = web.get("/healthz").json()
        assert health["last_cycle"]["source"] == "service"
        assert health["last_cycle"]["at"] == "2026-11-20T09:00:03+00:00"
        metrics = web.get("/metrics").text
        assert "syncledger_parked_writes 1.0" in metrics
        assert f"syncledger_unresolved_attendees {float(len(unresolved))}" in metrics
        assert "syncledger_mailboxes_suspended 0.0" in metrics
        assert "# HELP syncledger_notifications_total" in metrics  # the service's registry
        assert metrics.count("# HELP syncledger_mailboxes_suspended") == 1
