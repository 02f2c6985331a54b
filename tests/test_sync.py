"""Live sync cycles against the emulated cloud, with the real clients and the real ledger.

The demo org is served by the Graph and Salesforce emulators; ``SyncCycle``
runs with msal, simple-salesforce and requests over HTTPS. Assertions are on
what a user would see: what was written to each calendar (the emulators'
write logs and final state) and what the ledger shows (mapping, issues, plan).
The clock is fixed, so a faulted run can be compared with a clean one exactly.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from adapters.cli.main import main
from adapters.cli.sync import run_cycle
from adapters.feed.ingest import ingest_files
from adapters.sandbox import org as sandbox
from adapters.sandbox.cloud import SandboxCloud
from ledger.store import Store
from projections import queries

NOW = datetime(2026, 11, 20, 13, 0, tzinfo=UTC)
MARKER = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name SyncLedgerSalesforceId"
Inject = Callable[[SandboxCloud], object]


def clock() -> datetime:
    return NOW


@pytest.fixture
def cloud() -> Iterator[SandboxCloud]:
    # Small pages on both sides, so paging (and a cut mid-page) really happens.
    with SandboxCloud.demo(clock=clock, page_size=4, sf_page_size=4) as c:
        yield c


def sync(store: Store, cloud: SandboxCloud, sleeps: list[float] | None = None,
         failures: int = 0, **options: Any) -> dict[str, Any]:
    outcome = run_cycle(store, cloud.config(), clock=clock, saves=cloud.take_saves(),
                        sleep=(sleeps if sleeps is not None else []).append,
                        on_step=lambda step: None, **options)
    assert outcome["error"] is None and len(outcome["failures"]) == failures, outcome
    return outcome


def ledger_view(store: Store) -> dict[str, Any]:
    return {"mapping": queries.mapping(store), "issues": queries.issues(store),
            "conflicts": queries.conflicts(store), "plan": queries.plan(store)}


def final(store: Store, cloud: SandboxCloud) -> dict[str, Any]:
    return {**ledger_view(store), "cloud": _content(cloud.snapshot())}


_STAMPS = ("Id", "SystemModstamp", "LastModifiedDate")


def _content(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The calendars without what only says in which order things were written: a
    fault that delays one create shifts the stamps, change keys and relation Ids of
    the writes after it."""
    sf = snapshot["salesforce"]
    events = [{k: v for k, v in e.items() if k not in _STAMPS[1:]} for e in sf["Event"]]
    relations = sorted(({k: v for k, v in r.items() if k not in _STAMPS}
                        for r in sf["EventRelation"]),
                       key=lambda r: (r["EventId"], r["RelationId"]))
    graph = {m: [{k: v for k, v in e.items() if k not in ("changeKey", "@odata.etag")}
                 for e in items] for m, items in snapshot["graph"].items()}
    return {"graph": graph, "salesforce": {**sf, "Event": events, "EventRelation": relations}}


def by_meeting(store: Store) -> dict[UUID, list[tuple[int, str, bytes]]]:
    out: dict[UUID, list[tuple[int, str, bytes]]] = {}
    for _, oid, version, topic, state in store.read_log(0, 10**6):
        out.setdefault(UUID(oid), []).append((version, topic, state))
    return out


# --- a clean run ---------------------------------------------------------------------


def test_first_sync_writes_what_the_rules_allow_and_nothing_else(
        store: Store, cloud: SandboxCloud) -> None:
    outcome = sync(store, cloud)
    graph = {(w["method"], w["path"]): w["body"] for w in cloud.graph.writes}
    sf = [(w["method"], w["path"], w["body"]) for w in cloud.salesforce.writes]
    apac, offsite = (sandbox._graph_id(sandbox.ALICE, n) for n in ("apac", "offsite"))

    # Down-sync: Bob's "Contract signing" (created in Salesforce) lands in his calendar,
    # stamped with the Salesforce Id.
    created = graph.pop(("POST", "/v1.0/users/bob@contoso.com/events"))
    assert created["subject"] == "Contract signing"
    assert created["location"]["displayName"] == "Fabrikam HQ"
    marker = {p["id"]: p["value"] for p in created["singleValueExtendedProperties"]}[MARKER]
    assert marker[:15] == "00U5e0000000030"
    # unsupported-time-zone and recurring-all-day: the Outlook items get "Error"; the
    # synced single items get "Salesforce" (a series master is not tagged).
    tagged = {n: ["Salesforce"] for n in ("review", "intro", "renewal")}
    assert graph == {
        ("PATCH", f"/v1.0/users/alice@contoso.com/events/{apac}"): {"categories": ["Error"]},
        ("PATCH", f"/v1.0/users/alice@contoso.com/events/{offsite}"): {"categories": ["Error"]},
        ("PATCH", "/v1.0/users/bob@contoso.com/events/"
                  f"{sandbox._graph_id(sandbox.BOB, 'litware')}"): {"categories": ["Salesforce"]},
        **{("PATCH", f"/v1.0/users/alice@contoso.com/events/{sandbox._graph_id(sandbox.ALICE, n)}"):
           {"categories": c} for n, c in tagged.items()}}
    creates = {w[2]["Subject"]: w[2] for w in sf if w[1].endswith("/Event/")}
    relations = sorted((w[2]["EventId"], w[2]["RelationId"], w[2]["Status"],
                        w[2].get("IsParent", False)) for w in sf
                       if w[1].endswith("/EventRelation/"))
    # organizer-not-user: Alice's save of the Fabrikam intro becomes an Event she owns,
    # linked to the opportunity, with no invitees (no EventRelation is created).
    body = creates.pop("Intro call with Fabrikam")
    assert (body["OwnerId"], body["WhatId"], body["WhoId"]) == (
        sandbox.USER_IDS[sandbox.ALICE], "0065e000003XyZaAAK", None)
    assert body[sandbox.ICAL_FIELD] == sandbox._ical("intro")
    # Attendees related: the renewal's Who is Nina (the first Contact); Bob as a User,
    # Omar as a Contact who declined; Pat matches nobody and is not related. Litware's
    # Who is the Lead, whose tentative answer is New (Undecided).
    renewal, litware = creates.pop("Northwind renewal"), creates.pop("Litware discovery call")
    assert creates == {}
    nina, omar, lena = (sandbox.CUSTOMERS[e][1] for e in (sandbox.NINA, sandbox.OMAR,
                                                        sandbox.LENA))
    assert (renewal["WhoId"], litware["WhoId"]) == (nina, lena)
    by_subject = {e["Subject"]: e["Id"] for e in cloud.salesforce.all("Event")}
    rid, lid = by_subject["Northwind renewal"], by_subject["Litware discovery call"]
    qbr, forecast = sandbox._sf_id("00U", 2), sandbox._sf_id("00U", 3)
    dave = sandbox.CUSTOMERS[sandbox.DAVE][1]
    users = sandbox.USER_IDS
    assert relations == sorted([
        (rid, users[sandbox.BOB], "Accepted", False), (rid, nina, "Accepted", True),
        (rid, omar, "Declined", True), (lid, lena, "New", True),
        # already in Salesforce, linked by marker: their attendees are related now
        (qbr, dave, "Accepted", True), (forecast, users[sandbox.BOB], "Accepted", False),
        (forecast, users[sandbox.CAROL], "Accepted", False)])
    assert ("PATCH", f"/services/data/v59.0/sobjects/Event/{qbr}", {"WhoId": dave}) in sf
    # private-item: nothing of the private 1:1 went anywhere.
    assert "compensation" not in json.dumps(cloud.writes()).lower()
    assert {(w["target"], w["op"]) for w in outcome["writes"]} == {
        ("exchange", "create"), ("exchange", "set-categories"), ("salesforce", "create"),
        ("salesforce", "relate"), ("salesforce", "update")}
    assert queries.plan(store) == []
    kinds = {i["kind"] for i in queries.issues(store)}
    assert {"private-item", "unsupported-time-zone", "recurring-all-day"} <= kinds


def test_second_sync_without_outside_change_writes_nothing(
        store: Store, cloud: SandboxCloud) -> None:
    sync(store, cloud)
    after_first = final(store, cloud)
    cloud.clear_log()
    second = sync(store, cloud)
    assert cloud.writes() == []
    assert second["writes"] == [] and second["events_appended"] == 0
    assert final(store, cloud) == after_first


def test_an_outside_change_in_salesforce_reaches_outlook(store: Store,
                                                         cloud: SandboxCloud) -> None:
    sync(store, cloud)
    created = next(e for e in cloud.graph.calendar(sandbox.BOB)
                   if e["subject"] == "Contract signing")
    cloud.clear_log()
    cloud.salesforce.touch(sandbox._sf_id("00U", 30), Location="Fabrikam HQ, room 12")
    sync(store, cloud)
    assert [(w["method"], w["path"].rsplit("/", 1)[-1]) for w in cloud.writes()] == [
        ("PATCH", created["id"])]
    event = cloud.graph.event(sandbox.BOB, created["id"])
    assert event is not None and event["location"]["displayName"] == "Fabrikam HQ, room 12"


# --- faults end where a clean run ends -----------------------------------------------------


_baseline: dict[str, Any] = {}


def clean_result(tmp_path: Path) -> dict[str, Any]:
    """Two clean cycles on a fresh SQLite ledger (the projections read the same on both
    stores), computed once."""
    if not _baseline:
        with SandboxCloud.demo(clock=clock, page_size=4, sf_page_size=4) as c:
            s = Store.open(f"sqlite:///{tmp_path / 'clean.db'}")
            try:
                sync(s, c)
                sync(s, c)
                _baseline.update(final(s, c))
            finally:
                s.close()
    return _baseline


def _expire_twice(c: SandboxCloud) -> None:
    """The Graph token dies mid-paging, and the renewed one dies again before a write."""
    c.graph.at(c.graph.expire_tokens, path="skiptoken")
    c.graph.at(c.graph.expire_tokens, method="PATCH")


FAULTS: dict[str, tuple[Inject | None, Inject | None]] = {
    "graph-429": (lambda c: c.graph.fail(429, "TooManyRequests", "Please retry again later.",
                                         retry_after=0.01, path="calendarView", times=3), None),
    "graph-503-on-create": (lambda c: c.graph.fail(503, "ServiceUnavailable", "busy",
                                                   retry_after=0.01, method="POST",
                                                   path="/events$"), None),
    "graph-token-expiry": (lambda c: _expire_twice(c), None),
    "graph-delta-410": (None, lambda c: c.graph.expire_delta_tokens()),
    "graph-cut-mid-page": (lambda c: c.graph.drop(200, path="skiptoken", times=2), None),
    "graph-slow": (lambda c: c.graph.slow(0.2, path="calendarView"), None),
    "salesforce-session-expiry": (lambda c: c.salesforce.at(c.salesforce.expire_tokens,
                                                            path="/query/"), None),
    "salesforce-503": (lambda c: c.salesforce.fail(503, "SERVER_UNAVAILABLE", "try later",
                                                   path="/query/", times=2), None),
    "salesforce-cut-mid-page": (lambda c: c.salesforce.drop(120, path="/query/01g"), None),
    "salesforce-request-limit": (lambda c: c.salesforce.request_limit(times=3), None),
}


@pytest.mark.parametrize("name", sorted(FAULTS))
def test_a_fault_ends_in_the_same_state_as_a_clean_run(
        name: str, store: Store, cloud: SandboxCloud, tmp_path: Path) -> None:
    before_first, before_second = FAULTS[name]
    sleeps: list[float] = []
    faults = list(cloud.graph.faults) + list(cloud.salesforce.faults)
    if before_first:
        before_first(cloud)
    first = sync(store, cloud, sleeps)
    if before_second:
        before_second(cloud)
    second = sync(store, cloud, sleeps)
    fired = [f for f in cloud.graph.faults + cloud.salesforce.faults if f not in faults]
    assert all(f.used > 0 for f in fired), "the injected fault never happened"
    assert final(store, cloud) == clean_result(tmp_path)
    if name == "graph-delta-410":
        assert second["resyncs"] == list(cloud.mailboxes)
    if name == "graph-429":
        assert first["requests"]["graph_throttled"] == 3 and sleeps.count(0.01) == 3
    if name == "salesforce-request-limit":
        assert first["requests"]["salesforce_limited"] == 3 and sleeps[:3] == [1.0, 2.0, 4.0]


# --- crash windows and recording ------------------------------------------------------------


@pytest.mark.parametrize("api", ["graph", "salesforce"])
def test_a_create_whose_answer_is_lost_is_not_made_twice(
        api: str, store: Store, cloud: SandboxCloud, tmp_path: Path) -> None:
    """The write happened, its answer never arrived: the outbox finds it by marker."""
    emulator = cloud.graph if api == "graph" else cloud.salesforce
    emulator.drop(10, method="POST", path="/events" if api == "graph" else "/sobjects/Event/")
    first = sync(store, cloud)  # not a failure: the next round recovered it
    assert len(first["recovered"]) == 1 and "IncompleteRead" in first["recovered"][0]
    sync(store, cloud)
    creates = [w for w in emulator.writes if w["method"] == "POST"
               and not w["path"].endswith("/EventRelation/")]
    # Graph: Bob's "Contract signing"; Salesforce: the intro, the renewal, Litware.
    assert len(creates) == (1 if api == "graph" else 3)
    assert final(store, cloud) == clean_result(tmp_path)


def test_a_lost_create_is_finished_with_its_invitees_not_made_again(
        store: Store, cloud: SandboxCloud) -> None:
    """Alice's new meeting with Bob: the Event's answer is lost; Bob is still invited once."""
    meeting = sandbox.graph_event(sandbox.ALICE, "kickoff", subject="Kickoff",
                                  start="2026-11-27T17:00:00", end="2026-11-27T18:00:00",
                                  organizer=sandbox.ALICE,
                                  attendees=(sandbox.ALICE, sandbox.BOB))
    cloud.graph.put_event(sandbox.ALICE, meeting)
    cloud.salesforce.drop(10, method="POST", path="/sobjects/Event/")
    first = sync(store, cloud)
    assert len(first["recovered"]) == 1
    posts = [w for w in cloud.salesforce.writes if w["method"] == "POST"]
    events = [w for w in posts if w["path"].endswith("/sobjects/Event/")
              and w["body"]["Subject"] == "Kickoff"]
    assert len(events) == 1
    kickoff = next(e["Id"] for e in cloud.salesforce.all("Event") if e["Subject"] == "Kickoff")
    relations = [w["body"] for w in posts if w["path"].endswith("/sobjects/EventRelation/")
                 and w["body"]["EventId"] == kickoff]
    assert [r["RelationId"] for r in relations] == [sandbox.USER_IDS[sandbox.BOB]]
    sync(store, cloud)
    assert [w for w in cloud.salesforce.writes if w["method"] == "POST"] == posts


@pytest.mark.parametrize("target", ["salesforce", "exchange"])
def test_a_process_that_died_after_writing_does_not_write_again(
        target: str, store: Store, cloud: SandboxCloud) -> None:
    """The create went out, then the process died before recording it (its outbox row
    still says ``sending``). The next run sees the new object in the calendar, its marker
    links it, and the create leaves the plan: nothing is written twice."""
    from adapters.graph.client import GraphClient
    from adapters.salesforce.client import SalesforceClient
    from adapters.sync.cycle import SyncCycle, iso
    from adapters.sync.outbox import outbox_key

    config = cloud.config()
    cycle = SyncCycle(store, config, GraphClient(config.graph, sleep=lambda s: None),
                      SalesforceClient(config.salesforce, config.salesforce_marker_field,
                                       sleep=lambda s: None),
                      clock=clock, saves=cloud.take_saves())
    cycle.observe()
    (write,) = [w for w in queries.pending_writes(store)
                if w["target"] == target and w["op"] == "create"
                and w["reason"] in ("organizer-not-user",
                                    "created in Salesforce by a product user")]
    cycle.outbox.sending(outbox_key(write), write, write["meeting_id"], iso(clock()))
    cycle._perform(write, recovering=False)  # the write happens; then the process dies
    emulator = cloud.salesforce if target == "salesforce" else cloud.graph
    posts = [w for w in emulator.writes if w["method"] == "POST"]
    assert len(posts) == 1

    sync(store, cloud)  # a new process, same ledger and outbox
    again = [w for w in emulator.writes if w["method"] == "POST"
             and (w["body"].get("Subject") or w["body"].get("subject")) == (
                 posts[0]["body"].get("Subject") or posts[0]["body"].get("subject"))]
    assert again == posts
    assert not [w for w in queries.plan(store) if w["op"] == "create"]
    row = next(r for r in cycle.outbox.rows() if r["key"] == outbox_key(write))
    assert row["state"] == "settled"  # closed, not left hanging at "sending"


def test_a_recorded_sync_reingests_to_the_same_events(
        store: Store, cloud: SandboxCloud, tmp_path: Path) -> None:
    record = tmp_path / "recorded.jsonl"
    with record.open("ab") as handle:
        sync(store, cloud, record=handle)
        cloud.salesforce.touch(sandbox._sf_id("00U", 30), Description="Bring the pen")
        sync(store, cloud, record=handle)
    fresh = Store.open(f"sqlite:///{tmp_path / 'replayed.db'}")
    try:
        result = ingest_files(fresh, [record], show_progress=False)
        assert result.quarantined == 0
        assert by_meeting(fresh) == by_meeting(store)
        assert ledger_view(fresh)["mapping"] == ledger_view(store)["mapping"]
    finally:
        fresh.close()


# --- the command line ----------------------------------------------------------------------


def test_sync_sandbox_twice_from_the_command_line(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "sandbox.db")
    assert main(["sync", "--sandbox", "--db", db, "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    # 7 Graph writes (Bob's new event, 2 Error and 4 Salesforce categories) and 11
    # Salesforce writes (3 Events, 7 EventRelations, 1 WhoId)
    assert len(first["emulator_writes"]) == 18 and first["error"] is None
    assert Path(db + ".cloud.json").exists()
    assert main(["sync", "--sandbox", "--db", db]) == 0
    out, err = capsys.readouterr()
    assert "EMULATOR WRITE LOG (0)" in out and "WRITES (0)" in out
    assert "sync: resuming the emulated cloud" in err


def test_config_check_names_what_is_missing_and_never_prints_secrets(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("SYNCLEDGER_CONFIG", "SYNCLEDGER_GRAPH_TENANT", "SYNCLEDGER_GRAPH_CLIENT_ID",
                 "SYNCLEDGER_GRAPH_MAILBOXES", "SYNCLEDGER_GRAPH_CLIENT_SECRET",
                 "SYNCLEDGER_SF_CLIENT_SECRET", "SYNCLEDGER_SF_INSTANCE_URL",
                 "SYNCLEDGER_SF_CLIENT_ID", "SYNCLEDGER_ORG_DOMAINS", "SYNCLEDGER_SF_USERNAME"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "sync.toml"
    config.write_text('[graph]\ntenant = "contoso.onmicrosoft.com"\n'
                      'client_id = "11111111-2222-3333-4444-555555555555"\n'
                      'mailboxes = ["alice@contoso.com"]\n'
                      '[salesforce]\ninstance_url = "https://contoso.my.salesforce.com"\n'
                      'client_id = "3MVG9abc"\n[org]\ndomains = ["contoso.com"]\n'
                      'product_users = { "alice@contoso.com" = "0055e000001AbCdAAK" }\n')
    assert main(["config", "check", "--config", str(config)]) == 2
    out = capsys.readouterr().out
    assert "SYNCLEDGER_GRAPH_CLIENT_SECRET is not set" in out
    assert "SYNCLEDGER_SF_CLIENT_SECRET is not set" in out
    assert "tenant" not in out  # what is there is not reported missing
    monkeypatch.setenv("SYNCLEDGER_GRAPH_CLIENT_SECRET", "graph-very-secret")
    monkeypatch.setenv("SYNCLEDGER_SF_CLIENT_SECRET", "sf-very-secret")
    assert main(["config", "check", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "complete" in out and "alice@contoso.com" in out
    assert "very-secret" not in out
    assert main(["sync", "--config", str(tmp_path / "missing.toml")]) == 2
    assert "does not exist" in capsys.readouterr().err
