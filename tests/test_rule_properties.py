"""The rule table (DOMAIN.md §3) as properties over generated Outlook items (hypothesis).

Each example is a raw Graph event with random sensitivity, zone, all-day
flag, shape, start and ownership, observed under random org settings. The
aggregate is driven directly (pure, no store), so hundreds of examples run
in seconds; the store-backed scenarios live in test_rules.py.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import example, given, settings
from hypothesis import strategies as st

from adapters.graph import wire as graph_wire
from adapters.sandbox.org import ALICE, BOB, USER_IDS, graph_event, weekly
from ledger.identity import ical_key
from ledger.meeting import Meeting
from ledger.settings import OrgSettings, validate_changes
from ledger.timezones import salesforce_zone

NOW = datetime(2026, 11, 20, 9, 0)
PRIVATE = {"private", "personal", "confidential"}
ZONES = ["Pacific Standard Time", "Samoa Standard Time", "tzone://Microsoft/Custom", "UTC",
         "Dateline Standard Time", "W. Europe Standard Time"]


def org(sync_private: bool, alice_uses_sync: bool) -> OrgSettings:
    users = dict(USER_IDS) if alice_uses_sync else {BOB: USER_IDS[BOB]}
    return OrgSettings().applied(validate_changes({
        "org_domains": ["contoso.com"], "product_users": users,
        "sync_private_items": sync_private}))


items = st.fixed_dictionaries({
    "sensitivity": st.sampled_from(["normal", "personal", "private", "confidential"]),
    "zone": st.sampled_from(ZONES),
    "all_day": st.booleans(),
    "series": st.booleans(),
    "day": st.integers(min_value=-30, max_value=90),
    "organizer": st.sampled_from([ALICE, BOB]),
    "sync_private": st.booleans(),
    "alice_uses_sync": st.booleans(),
})


def start_of(case: dict[str, object]) -> datetime:
    start = NOW + timedelta(days=int(str(case["day"])))
    return start.replace(hour=0) if case["all_day"] else start


def observe(case: dict[str, object]) -> tuple[Meeting, OrgSettings]:
    start = start_of(case)
    end = start + (timedelta(days=1) if case["all_day"] else timedelta(hours=1))
    fmt = "%Y-%m-%dT%H:%M:%S"
    payload = graph_event(
        ALICE, "m", subject="Secret plans", body="details", organizer=str(case["organizer"]),
        attendees=(ALICE, BOB), start=start.strftime(fmt), end=end.strftime(fmt),
        sensitivity=str(case["sensitivity"]), zone=str(case["zone"]),
        all_day=bool(case["all_day"]), kind="seriesMaster" if case["series"] else "singleInstance",
        recurrence=weekly(start.strftime("%Y-%m-%d"), ["monday"], 5) if case["series"] else None)
    observed_at = NOW.strftime(fmt) + "Z"
    obs = graph_wire.to_observation(payload, ALICE, observed_at)
    s = org(bool(case["sync_private"]), bool(case["alice_uses_sync"]))
    m = Meeting.open(ical_key(str(payload["iCalUId"])), observed_at)
    m.observe(obs, s)
    return m, s


def expected_rules(case: dict[str, object], s: OrgSettings) -> set[str]:
    out = set()
    if case["sensitivity"] in PRIVATE and not case["sync_private"]:
        out.add("private-item")
    if case["series"] and case["all_day"]:
        out.add("recurring-all-day")
    if salesforce_zone(str(case["zone"]), s.salesforce_time_zones) is None:
        out.add("unsupported-time-zone")
    return out


def in_auto_save_scope(case: dict[str, object]) -> bool:
    start, ahead = start_of(case), NOW + timedelta(days=60)
    window = start <= ahead if case["series"] else NOW - timedelta(days=14) <= start <= ahead
    return case["organizer"] == ALICE and bool(case["alice_uses_sync"]) and window


@settings(max_examples=300, deadline=None)
@given(case=items)
@example(case={"sensitivity": "normal", "zone": "Samoa Standard Time", "all_day": True,
               "series": False, "day": -14, "organizer": ALICE, "sync_private": False,
               "alice_uses_sync": True})  # midnight, 14 days back: just outside the window
def test_every_blocking_rule_applies_exactly_when_its_condition_holds(
        case: dict[str, object]) -> None:
    m, s = observe(case)
    rules = {i["rule"] for i in m.issues.values()}
    if not in_auto_save_scope(case):
        # Nobody asked to sync it: no issue is raised and nothing is written.
        assert rules == set() and m.pending == {}
        return
    assert rules == expected_rules(case, s)


@settings(max_examples=300, deadline=None)
@given(case=items)
def test_an_item_is_created_in_salesforce_only_when_no_rule_blocks_it(
        case: dict[str, object]) -> None:
    m, s = observe(case)
    creates = [w for w in m.pending.values() if w["op"] == "create"]
    blocked = bool(expected_rules(case, s))
    assert len(creates) == (1 if in_auto_save_scope(case) and not blocked else 0)
    for create in creates:
        assert create["target"] == "salesforce" and create["fields"]["subject"] == "Secret plans"


@settings(max_examples=300, deadline=None)
@given(case=items)
def test_error_category_follows_issues_but_not_skips(case: dict[str, object]) -> None:
    m, s = observe(case)
    flagged = [w for w in m.pending.values() if w["op"] == "set-categories"]
    issues = expected_rules(case, s) - {"private-item"}
    wants_flag = in_auto_save_scope(case) and bool(issues)
    assert [w["fields"]["categories"] for w in flagged] == ([["Error"]] if wants_flag else [])


@settings(max_examples=200, deadline=None)
@given(case=items)
def test_private_content_is_never_kept_unless_private_sync_is_on(
        case: dict[str, object]) -> None:
    m, _ = observe(case)
    (item,) = m.items.values()
    hidden = case["sensitivity"] in PRIVATE and not case["sync_private"]
    assert (item["subject"] == "") is hidden and (item["attendees"] == []) is hidden
