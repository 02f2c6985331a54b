"""People (issue 18, DOMAIN.md §4, §12): attendees related to Users, Contacts and Leads,
unresolved attendees, attendee lists and statuses both ways, auto-save as a setting,
saves by Outlook category. From raw payloads, through ``ingest``, on both stores."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID

from adapters.sandbox.org import (
    ALICE,
    BOB,
    CUSTOMERS,
    DAVE,
    LENA,
    NINA,
    OMAR,
    PAT,
    USER_IDS,
    SandboxOrg,
    _graph_id,
    _ical,
    _sf_id,
    graph_event,
    person_record,
    relation,
    sf_event,
)
from ledger.identity import ical_key
from ledger.meeting import Meeting
from ledger.store import Store
from projections import queries, runner
from projections.whatif import whatif
from tests.scenarios import decisions, ingest, meeting_of, org_with_settings, pending

SINGLE: dict[str, Any] = dict(start="2026-11-24T17:00:00", end="2026-11-24T18:00:00")
NINA_ID, OMAR_ID, DAVE_ID, LENA_ID = (CUSTOMERS[e][1] for e in (NINA, OMAR, DAVE, LENA))


def _meeting(org: SandboxOrg, minute: int, name: str, attendees: tuple[str, ...],
             organizer: str = ALICE, **kw: Any) -> None:
    org.graph(minute, organizer, graph_event(organizer, name, subject=name.title(),
                                             organizer=organizer, attendees=attendees,
                                             **{**SINGLE, **kw}))


def _linked(org: SandboxOrg, minute: int, name: str, n: int, rels: list[dict[str, Any]],
            modstamp: str = "2026-11-20T10:00:00.000+0000", who: str | None = None) -> str:
    """The Salesforce copy the sync created, read back with its relations."""
    record = sf_event(n, subject=name.title(), owner=ALICE, modstamp=modstamp,
                      ical=_ical(name), start=SINGLE["start"], end=SINGLE["end"])
    record["WhoId"] = who
    org.salesforce(minute, record, rels)
    return str(record["Id"])


def _rel(event_id: str, person: str, n: int, status: str) -> dict[str, Any]:
    return relation(event_id, person, n, status)


def test_a_saved_meeting_relates_users_contacts_and_leads_and_lists_the_unresolved(
        store: Store, tmp_path: Path) -> None:
    org = org_with_settings()
    for email in (NINA, OMAR, LENA):
        org.person(0, email)
    _meeting(org, 1, "renewal", (ALICE, BOB, NINA, OMAR, LENA, PAT),
             responses={OMAR: "declined", LENA: "tentativelyAccepted"})
    ingest(store, org, tmp_path)
    m = meeting_of(store, ical_key(_ical("renewal")))
    related = {d["email"]: (d["relation_id"], d["person_type"], d["source"])
               for d in decisions(store, m.id, "AttendeeRelated")}
    assert related == {BOB: (USER_IDS[BOB], "User", "product user"),
                       NINA: (NINA_ID, "Contact", "directory"),
                       OMAR: (OMAR_ID, "Contact", "directory"),
                       LENA: (LENA_ID, "Lead", "directory")}
    assert [d["email"] for d in decisions(store, m.id, "AttendeeUnresolved")] == [PAT]
    (create,) = pending(m, "salesforce", "create")
    # WhoId: the first Contact in attendee order; Contacts (not the Lead: a Who is up to
    # 50 Contacts or one Lead) are the Event's Who; statuses from the Outlook responses.
    assert create["fields"]["who_id"] == NINA_ID
    assert create["fields"]["invitees"] == [
        {"relation_id": USER_IDS[BOB], "status": "Accepted", "is_parent": False},
        {"relation_id": NINA_ID, "status": "Accepted", "is_parent": True},
        {"relation_id": OMAR_ID, "status": "Declined", "is_parent": True},
        {"relation_id": LENA_ID, "status": "New", "is_parent": False}]
    (row,) = queries.unresolved(store)
    assert (row["meeting_id"], row["email"], row["state"]) == (str(m.id), PAT, "open")
    assert row["since"] == "2026-11-20T09:01:00Z"
    counts = {r["meeting_id"]: r for r in queries.analytics_meetings(store)}[str(m.id)]
    assert (counts["related_users"], counts["related_contacts"], counts["related_leads"],
            counts["unresolved_attendees"]) == (1, 2, 1, 1)


def test_a_lead_alone_is_the_who_and_an_external_organizer_relates_nobody(
        store: Store, tmp_path: Path) -> None:
    org = org_with_settings()
    org.person(0, LENA)
    org.person(0, DAVE)
    _meeting(org, 1, "litware", (ALICE, LENA))
    # organizer-not-user: Dave (a Contact) organizes; Alice saves: no attendees at all.
    org.graph(2, ALICE, graph_event(ALICE, "intro", subject="Intro", organizer=DAVE,
                                    attendees=(DAVE, ALICE, LENA), **SINGLE))
    org.save(3, ALICE, _graph_id(ALICE, "intro"))
    ingest(store, org, tmp_path)
    (litware,) = pending(meeting_of(store, ical_key(_ical("litware"))), "salesforce", "create")
    assert litware["fields"]["who_id"] == LENA_ID
    assert litware["fields"]["invitees"] == [
        {"relation_id": LENA_ID, "status": "Accepted", "is_parent": True}]
    intro = meeting_of(store, ical_key(_ical("intro")))
    (create,) = pending(intro, "salesforce", "create")
    assert create["reason"] == "organizer-not-user"
    assert (create["fields"]["invitees"], create["fields"]["who_id"]) == ([], None)
    assert not decisions(store, intro.id, "AttendeeRelated")


def test_a_later_directory_observation_relates_the_unresolved_attendee(
        store: Store, tmp_path: Path) -> None:
    org = org_with_settings()
    _meeting(org, 1, "renewal", (ALICE, NINA))
    sf_id = _linked(org, 2, "renewal", 60, [])
    ingest(store, org, tmp_path, "first.jsonl")
    m = meeting_of(store, ical_key(_ical("renewal")))
    assert list(m.unresolved) == [NINA] and not pending(m, "salesforce", "relate")

    later = SandboxOrg()
    later.person(30, NINA)  # someone created the Contact; the next look-up finds her
    ingest(store, later, tmp_path, "later.jsonl")
    m = meeting_of(store, ical_key(_ical("renewal")))
    assert m.unresolved == {} and m.people[NINA]["relation_id"] == NINA_ID
    (relate,) = pending(m, "salesforce", "relate")
    assert (relate["id"], relate["fields"]) == (
        sf_id, {"relation_id": NINA_ID, "status": "Accepted", "is_parent": True})
    (who,) = [w for w in pending(m, "salesforce", "update") if w["key"].startswith("sf-who")]
    assert who["fields"] == {"who_id": NINA_ID}
    assert queries.unresolved(store) == []
    (row,) = queries.unresolved(store, state=None)
    assert (row["state"], row["relation_id"], row["resolved_at"]) == (
        "resolved", NINA_ID, "2026-11-20T09:30:00Z")
    # the same person again changes nothing
    assert ingest(store, later, tmp_path, "again.jsonl").appended == 0


def test_who_index_rows_go_when_the_email_is_resolved_or_the_attendee_leaves(
        store: Store, tmp_path: Path) -> None:
    """A meeting waiting on an email has a ``who:`` index row; once the email is related
    (a Contact appeared) or the attendee is no longer on the meeting, the row is deleted
    in the transaction of the events that say so: a later person with that email no
    longer brings the meeting back."""
    org = org_with_settings()
    _meeting(org, 1, "renewal", (ALICE, NINA, PAT))
    _linked(org, 2, "renewal", 60, [])
    _meeting(org, 3, "kickoff", (ALICE, PAT, LENA))
    _linked(org, 4, "kickoff", 62, [])
    ingest(store, org, tmp_path, "first.jsonl")
    renewal = meeting_of(store, ical_key(_ical("renewal"))).id.hex
    kickoff = meeting_of(store, ical_key(_ical("kickoff"))).id.hex

    def waiting(email: str) -> set[str]:
        return set(store.keys_with_prefix(f"who:{email}|").values())

    assert (waiting(NINA), waiting(PAT), waiting(LENA)) == (
        {renewal}, {renewal, kickoff}, {kickoff})

    def still_open() -> set[tuple[str, str]]:
        """What ``syncledger unresolved`` lists: (meeting, email)."""
        return {(UUID(r["meeting_id"]).hex, r["email"]) for r in queries.unresolved(store)}

    assert still_open() == {(renewal, NINA), (renewal, PAT), (kickoff, PAT), (kickoff, LENA)}

    later = SandboxOrg()
    later.person(30, NINA)  # resolved: Nina is a Contact now
    later.graph(31, ALICE, graph_event(ALICE, "kickoff", subject="Kickoff", organizer=ALICE,
                                       attendees=(ALICE, LENA), revision=1, **SINGLE))
    ingest(store, later, tmp_path, "later.jsonl")
    assert (waiting(NINA), waiting(PAT), waiting(LENA)) == (set(), {renewal}, {kickoff})
    assert meeting_of(store, ical_key(_ical("renewal"))).people[NINA]["relation_id"] == NINA_ID
    # Pat left the kickoff: nobody has to find Pat for it any more
    assert PAT not in meeting_of(store, ical_key(_ical("kickoff"))).unresolved
    assert still_open() == {(renewal, PAT), (kickoff, LENA)}
    assert {(UUID(r["meeting_id"]).hex, r["email"]): r["state"]
            for r in queries.unresolved(store, state=None)}[(kickoff, PAT)] == "left"

    # Pat leaves the renewal too: no meeting waits on Pat, and the row is gone.
    gone = SandboxOrg()
    gone.graph(40, ALICE, graph_event(ALICE, "renewal", subject="Renewal", organizer=ALICE,
                                      attendees=(ALICE, NINA), revision=1, **SINGLE))
    ingest(store, gone, tmp_path, "gone.jsonl")
    assert waiting(PAT) == set()
    assert store.keys_with_prefix("who:") == {f"who:{LENA}|{kickoff}": kickoff}
    assert still_open() == {(kickoff, LENA)}

    # Pat is invited to the renewal again: open again, since this observation
    back = SandboxOrg()
    back.graph(50, ALICE, graph_event(ALICE, "renewal", subject="Renewal", organizer=ALICE,
                                      attendees=(ALICE, NINA, PAT), revision=2, **SINGLE))
    ingest(store, back, tmp_path, "back.jsonl")
    assert still_open() == {(renewal, PAT), (kickoff, LENA)}
    assert waiting(PAT) == {renewal}
    # built batch by batch above; built from zero in one pass, the same rows
    every, coverage = queries.unresolved(store, state=None), queries.analytics_meetings(store)
    runner.rebuild(store)
    assert (queries.unresolved(store, state=None),
            queries.analytics_meetings(store)) == (every, coverage)


def test_attendee_lists_and_statuses_follow_outlook_and_salesforce_additions_reach_outlook(
        store: Store, tmp_path: Path) -> None:
    org = org_with_settings()
    for email in (NINA, OMAR, DAVE):
        org.person(0, email)
    _meeting(org, 1, "qbr", (ALICE, BOB, NINA))
    sf_id = _linked(org, 2, "qbr", 61, [_rel(_sf_id("00U", 61), BOB, 1, "Accepted"),
                                        _rel(_sf_id("00U", 61), NINA_ID, 2, "Accepted")],
                    who=NINA_ID)
    ingest(store, org, tmp_path, "first.jsonl")
    m = meeting_of(store, ical_key(_ical("qbr")))
    assert not [w for w in m.pending.values() if w["target"] == "salesforce"]

    # In Outlook: Omar added, Bob removed, Nina declines. In Salesforce: Dave invited.
    step = SandboxOrg()
    step.graph(10, ALICE, graph_event(ALICE, "qbr", subject="Qbr", organizer=ALICE,
                                      attendees=(ALICE, NINA, OMAR), revision=1,
                                      responses={NINA: "declined", OMAR: "none"}, **SINGLE))
    step.salesforce(11, {**sf_event(61, subject="Qbr", owner=ALICE, ical=_ical("qbr"),
                                    modstamp="2026-11-20T10:00:00.000+0000", **SINGLE),
                         "WhoId": NINA_ID},
                    [_rel(sf_id, BOB, 1, "Accepted"), _rel(sf_id, NINA_ID, 2, "Accepted"),
                     _rel(sf_id, DAVE_ID, 3, "New")])
    ingest(store, step, tmp_path, "step.jsonl")
    m = meeting_of(store, ical_key(_ical("qbr")))
    writes = {w["key"].split("|")[0]: w for w in m.pending.values()}
    assert writes["sf-relate"]["fields"] == {"relation_id": OMAR_ID, "status": "New",
                                             "is_parent": True}
    assert writes["sf-unrelate"]["fields"] == {"relation_id": USER_IDS[BOB]}
    assert writes["sf-relation-status"]["fields"] == {"relation_id": NINA_ID,
                                                      "status": "Declined"}
    # Dave, invited in Salesforce, is added in Outlook with no response.
    assert writes["ex-attendees"]["fields"]["attendees"][-1] == {
        "email": DAVE, "name": "", "response": "none"}
    assert {w["reason"] for w in m.pending.values()} >= {
        "attendee added in Outlook", "attendee removed in Outlook",
        "attendee responded in Outlook", "invitee added in Salesforce"}

    # Removed in Salesforce (Nina's relation deleted there): Outlook is left as it is and
    # the relation is not made again.
    gone = SandboxOrg()
    gone.salesforce(20, {**sf_event(61, subject="Qbr", owner=ALICE, ical=_ical("qbr"),
                                    modstamp="2026-11-20T10:00:00.000+0000", **SINGLE),
                         "WhoId": NINA_ID}, [_rel(sf_id, BOB, 1, "Accepted")])
    ingest(store, gone, tmp_path, "gone.jsonl")
    m = meeting_of(store, ical_key(_ical("qbr")))
    assert m.relations[sf_id][NINA_ID] == "dropped"
    assert not [w for w in m.pending.values() if NINA_ID in str(w["fields"])]
    assert not [w for w in m.pending.values() if w["target"] == "exchange"
                and "attendees" in w["fields"] and NINA not in str(w["fields"])]


LIGHTNING = "RRULE:FREQ=WEEKLY;BYDAY=TU;INTERVAL=1;COUNT=5"


def test_a_lightning_series_copy_carries_no_attendee_change_and_says_so(
        store: Store, tmp_path: Path) -> None:
    """DOMAIN.md §1: a Lightning series keeps no series id on its occurrences, so a
    relation written to the linked Event would change one occurrence; §3: nothing of a
    Lightning series is synced down. The changes are a ``lightning-relations`` warning."""
    org = org_with_settings()
    for email in (NINA, OMAR, DAVE):
        org.person(0, email)
    _meeting(org, 1, "qbr", (ALICE, BOB, NINA))
    sf_id = _linked(org, 2, "qbr", 61, [_rel(_sf_id("00U", 61), BOB, 1, "Accepted"),
                                        _rel(_sf_id("00U", 61), NINA_ID, 2, "Accepted")],
                    who=NINA_ID)
    ingest(store, org, tmp_path, "first.jsonl")

    # In Outlook Omar is added, Bob removed, Nina declines; the Event is made to repeat
    # in Lightning, and Dave invited there (the order of a live cycle: Graph, then
    # Salesforce, then writes).
    step = SandboxOrg()
    lightning = {**sf_event(61, subject="Qbr", owner=ALICE, ical=_ical("qbr"),
                            modstamp="2026-11-20T10:05:00.000+0000", lightning=LIGHTNING,
                            **SINGLE), "WhoId": NINA_ID}
    step.graph(10, ALICE, graph_event(ALICE, "qbr", subject="Qbr", organizer=ALICE,
                                      attendees=(ALICE, NINA, OMAR), revision=1,
                                      responses={NINA: "declined", OMAR: "none"}, **SINGLE))
    step.salesforce(11, lightning, [_rel(sf_id, BOB, 1, "Accepted"),
                                    _rel(sf_id, NINA_ID, 2, "Accepted"),
                                    _rel(sf_id, DAVE_ID, 3, "New")])
    ingest(store, step, tmp_path, "step.jsonl")
    m = meeting_of(store, ical_key(_ical("qbr")))
    assert not [w for w in m.pending.values() if w["op"] in (
        "relate", "unrelate", "relation-status") or w["key"].startswith(
        ("ex-attendees|", "sf-who|"))]
    [issue] = [i for i in queries.issues(store) if i["kind"] == "lightning-relations"]
    assert (issue["state"], issue["severity"]) == ("open", "warning")
    assert issue["message"] == (
        f"the Salesforce copy {sf_id} is a Lightning event series, which keeps no series id "
        "on its occurrences: not carried: 1 attendee(s) added in Outlook, 1 attendee(s) "
        "removed in Outlook, 1 attendee(s) responded in Outlook, invitee(s) added in "
        "Salesforce")

    # Outlook back to what Salesforce holds: nothing left to carry, the issue resolves.
    back = SandboxOrg()
    back.salesforce(20, {**lightning, "SystemModstamp": "2026-11-20T10:20:00.000+0000"},
                    [_rel(sf_id, BOB, 1, "Accepted"), _rel(sf_id, NINA_ID, 2, "Accepted")])
    back.graph(21, ALICE, graph_event(ALICE, "qbr", subject="Qbr", organizer=ALICE,
                                      attendees=(ALICE, BOB, NINA), revision=2,
                                      responses={BOB: "accepted", NINA: "accepted"},
                                      **SINGLE))
    ingest(store, back, tmp_path, "back.jsonl")
    [issue] = [i for i in queries.issues(store) if i["kind"] == "lightning-relations"]
    assert issue["state"] == "resolved"


def test_an_attendee_who_deletes_their_copy_loses_only_their_relation(
        store: Store, tmp_path: Path) -> None:
    org = org_with_settings()
    org.person(0, NINA)
    _meeting(org, 1, "sync", (ALICE, BOB, NINA))
    org.graph(2, BOB, graph_event(BOB, "sync", subject="Sync", organizer=ALICE,
                                  attendees=(ALICE, BOB, NINA), **SINGLE))
    sf_id = _linked(org, 3, "sync", 62, [_rel(_sf_id("00U", 62), BOB, 1, "Accepted"),
                                         _rel(_sf_id("00U", 62), NINA_ID, 2, "Accepted")],
                    who=NINA_ID)
    org.removed(4, BOB, _graph_id(BOB, "sync"))
    ingest(store, org, tmp_path)
    m = meeting_of(store, ical_key(_ical("sync")))
    sf_writes = [w for w in m.pending.values() if w["target"] == "salesforce"]
    assert [(w["op"], w["id"], w["fields"]) for w in sf_writes] == [
        ("unrelate", sf_id, {"relation_id": USER_IDS[BOB]})]  # the Event itself stays


def test_auto_save_setting_off_organizer_and_with_contacts(store: Store, tmp_path: Path
                                                          ) -> None:
    def org_for(mode: str | None) -> SandboxOrg:
        org = org_with_settings(**({"auto_save": mode} if mode else {}))
        org.person(0, NINA)
        _meeting(org, 1, "internal", (ALICE, BOB))
        _meeting(org, 2, "customer", (ALICE, NINA))
        return org

    def saved(s: Store) -> set[str]:
        return {name for name in ("internal", "customer")
                if meeting_of(s, ical_key(_ical(name))).saves}

    ingest(store, org_for(None), tmp_path)
    assert saved(store) == {"internal", "customer"}  # the default: organizer
    off = whatif(store, ["auto_save=off"])
    assert len(off["would_stop_syncing"]) == 2 and off["would_now_sync"] == []
    contacts = whatif(store, ["auto_save=with_contacts"])
    internal = str(meeting_of(store, ical_key(_ical("internal"))).id)
    assert contacts["would_stop_syncing"] == [{"meeting_id": internal}]


def test_with_contacts_saves_once_the_directory_knows_the_customer(
        store: Store, tmp_path: Path) -> None:
    org = org_with_settings(auto_save="with_contacts")
    _meeting(org, 1, "customer", (ALICE, NINA))
    ingest(store, org, tmp_path, "first.jsonl")
    assert not meeting_of(store, ical_key(_ical("customer"))).saves
    later = SandboxOrg()
    later.person(5, NINA)
    ingest(store, later, tmp_path, "later.jsonl")
    m = meeting_of(store, ical_key(_ical("customer")))
    (create,) = pending(m, "salesforce", "create")
    assert create["fields"]["who_id"] == NINA_ID


def test_saves_and_unsync_by_outlook_category(store: Store, tmp_path: Path) -> None:
    org = org_with_settings(auto_save="off")
    _meeting(org, 1, "tagged", (ALICE, BOB), categories=("Salesforce",))
    _meeting(org, 2, "untagged", (ALICE, BOB))
    ingest(store, org, tmp_path, "first.jsonl")
    tagged = meeting_of(store, ical_key(_ical("tagged")))
    (save,) = decisions(store, tagged.id, "SaveAccepted")
    assert (save["saver"], save["how"], save["timestamp"]) == (
        ALICE, "category", "2026-11-20T09:01:00Z")
    assert pending(tagged, "salesforce", "create")
    assert not meeting_of(store, ical_key(_ical("untagged"))).saves

    # Linked, then the user asks for the Salesforce copy to go: "Unsync".
    step = SandboxOrg()
    # (read at 09:03, so last modified by then: a deletion at 09:05 comes after it)
    sf_id = _linked(step, 3, "tagged", 63, [], modstamp="2026-11-20T09:03:00.000+0000")
    step.graph(4, ALICE, graph_event(ALICE, "tagged", subject="Tagged", organizer=ALICE,
                                     attendees=(ALICE, BOB), revision=1,
                                     categories=("Salesforce", "Unsync"), **SINGLE))
    ingest(store, step, tmp_path, "step.jsonl")
    m = meeting_of(store, ical_key(_ical("tagged")))
    (delete,) = pending(m, "salesforce", "delete")
    assert delete["id"] == sf_id and "Unsync category set by alice" in delete["reason"]
    done = SandboxOrg()
    done._add({"kind": "salesforce.deleted", "observed_at": "2026-11-20T09:05:00Z",
               "payload": {"id": sf_id, "deletedDate": "2026-11-20T09:05:00.000+0000"}})
    ingest(store, done, tmp_path, "done.jsonl")
    m = meeting_of(store, ical_key(_ical("tagged")))
    (cats,) = pending(m, "exchange", "set-categories")
    assert cats["fields"] == {"categories": []} and not m.saves

    # A sidebar save from 09:02, before the Unsync, read late (another file): the sync was
    # withdrawn after it, so it restarts nothing; a save after the withdrawal does.
    late = SandboxOrg()
    late.save(2, ALICE, _graph_id(ALICE, "tagged"))
    ingest(store, late, tmp_path, "late.jsonl")
    m = meeting_of(store, ical_key(_ical("tagged")))
    assert not m.saves and not pending(m, "salesforce", "create")
    fresh = SandboxOrg()
    fresh.save(7, ALICE, _graph_id(ALICE, "tagged"))
    ingest(store, fresh, tmp_path, "fresh.jsonl")
    m = meeting_of(store, ical_key(_ical("tagged")))
    assert m.saves and pending(m, "salesforce", "create")


def test_a_snapshot_from_before_people_loads() -> None:
    """Meeting class_version 3 added ``people``, ``unresolved``, ``relations``."""
    meeting = Meeting.open(ical_key("x"), "2026-11-20T09:00:00Z")
    old = {k: v for k, v in vars(meeting).items()
           if k not in ("people", "unresolved", "relations")}
    Meeting.upcast_v2_v3(old)
    assert (old["people"], old["unresolved"], old["relations"]) == ({}, {}, {})


def test_a_snapshot_from_before_dated_withdrawals_loads_and_judges_no_save_stale() -> None:
    """Meeting class_version 4 added ``withdrawn_at``: a version-3 snapshot's withdrawals
    have no time, so a save is taken as before (never judged older than them)."""
    from eventsourcing.domain import Snapshot

    meeting = Meeting.open(ical_key("x"), "2026-11-20T09:00:00Z")
    meeting.withdrawn["a@contoso.com|AAMk1"] = "Unsync"
    snap = Snapshot.take(meeting)
    state = {k: v for k, v in snap.state.items() if k != "withdrawn_at"}
    state["class_version"] = 3
    old = Snapshot(originator_id=snap.originator_id, originator_version=snap.originator_version,
                   timestamp=snap.timestamp, topic=snap.topic, state=state)
    restored = old.mutate(None)
    assert isinstance(restored, Meeting)
    assert restored.withdrawn == {"a@contoso.com|AAMk1": "Unsync"}
    assert restored.withdrawn_at == {}


def test_person_lines_are_validated_and_replay_the_same(store: Store, tmp_path: Path) -> None:
    org = org_with_settings()
    org.person(0, NINA)
    bad = person_record(OMAR)
    org._add({"kind": "salesforce.person", "observed_at": "2026-11-20T09:00:00Z",
              "payload": {**bad, "attributes": {"type": "Account"}}})
    org._add({"kind": "salesforce.person", "observed_at": "2026-11-20T09:00:00Z",
              "payload": {**bad, "Id": "not-an-id"}})
    _meeting(org, 1, "renewal", (ALICE, NINA, OMAR))
    result = ingest(store, org, tmp_path)
    assert result.quarantined == 2
    fields = sorted(q["field"] for q in store.quarantined())
    assert fields == ["payload.Id", "payload.attributes.type"]
    directory = store.directory()
    assert directory is not None and list(directory.by_id) == [NINA_ID]


def test_an_older_look_up_delivered_late_does_not_undo_a_newer_one(
        store: Store, tmp_path: Path) -> None:
    """A Contact's email changed: the look-up after the change, then (two files, two
    runs overlapping) the one before it. The directory keeps the newer answer."""
    after = person_record(NINA)
    before = {**after, "Email": "nina.old@northwind.com"}
    org = SandboxOrg()
    org._add({"kind": "salesforce.person", "observed_at": "2026-11-20T10:00:00Z",
              "payload": after})
    org._add({"kind": "salesforce.person", "observed_at": "2026-11-20T09:00:00Z",
              "payload": before})
    ingest(store, org, tmp_path, "late.jsonl")
    directory = store.directory()
    assert directory is not None
    person = directory.person(str(before["Id"]))
    assert person is not None and person["email"] == NINA
    assert directory.match(NINA) is not None
    assert directory.match("nina.old@northwind.com") is None
