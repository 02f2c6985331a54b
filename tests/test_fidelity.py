"""Write fidelity, unit by unit: bodies, limits, time-zone spellings, Classic recurrence.

What each piece decides before anything is written (DOMAIN.md §11). The
end-to-end runs through the emulators are in ``tests/test_fidelity_sync.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.graph import wire as graph_wire
from adapters.graph.body import html_to_text, text_to_html
from ledger.fields import comparable
from ledger.limits import MAX_LENGTH, SHORTENED_MARKER, duration_problem, shorten
from ledger.recurrence import classic_plan, last_date
from ledger.timezones import DEFAULT_SALESFORCE_TIME_ZONES, salesforce_zone, to_windows

BODIES = Path(__file__).parent / "fixtures" / "bodies"


# --- bodies ---------------------------------------------------------------------------


def test_an_outlook_body_becomes_readable_text() -> None:
    text = html_to_text((BODIES / "outlook_agenda_table.html").read_text())
    assert text.startswith("Hi all,\n\nAgenda for the Q4 review & renewal "
                           "(Fabrikam \u2013 \"Gold\" tier):")
    # the table keeps its rows, aligned; entities decoded; accents kept
    assert "Time   Topic" in text and "10:00  Pricing: 5 < 10 seats" in text
    assert "10:30  Café contract, next steps" in text
    assert text.endswith("Thanks,\nAlice")
    for gone in ("<", "&nbsp;", "font-family", "alert(", "a comment", "mso-"):
        assert gone not in text.replace("5 < 10", "")


def test_a_teams_block_keeps_its_join_link_and_rules() -> None:
    text = html_to_text((BODIES / "teams_meeting.html").read_text())
    assert "Microsoft Teams meeting" in text
    assert "[Click here to join the meeting](https://teams.microsoft.com/l/meetup-join/" in text
    assert "Meeting ID: 347 512 889 104\nPasscode: dK3x7Z" in text
    assert text.count("_" * 80) == 2
    assert "\n\n\n" not in text and all(line == line.strip() for line in text.split("\n"))


@settings(max_examples=60, deadline=None)
@given(st.text(st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from("\n<>&\"'"),
               max_size=200))
def test_text_survives_a_round_trip_through_exchange(text: str) -> None:
    """What a Salesforce user typed, stored by Exchange as HTML and read back, compares
    equal: a round trip never looks like an edit."""
    back = html_to_text(text_to_html(text))
    assert comparable("description", back) == comparable("description", text)


def test_graph_html_bodies_are_read_as_text_and_text_is_written_as_text() -> None:
    payload = {"id": "AAMk1", "iCalUId": "U1", "subject": "s",
               "body": {"contentType": "html", "content": "<p>a &amp; b</p><p>c</p>"},
               "start": {"dateTime": "2026-11-20T10:00:00", "timeZone": "UTC"},
               "end": {"dateTime": "2026-11-20T11:00:00", "timeZone": "UTC"}}
    seen = graph_wire.to_observation(payload, "a@x.com", "2026-11-20T09:00:00Z")
    assert getattr(seen, "body", None) == "a & b\n\nc"
    assert graph_wire.observation_fields_to_graph({"body": "x < y\nz"})["body"] == {
        "contentType": "text", "content": "x < y\nz"}


# --- limits -----------------------------------------------------------------------------


@pytest.mark.parametrize("field", sorted(MAX_LENGTH))
def test_a_text_over_its_field_length_is_shortened_with_a_marker(field: str) -> None:
    limit = MAX_LENGTH[field]
    assert shorten(field, "x" * limit) == "x" * limit
    cut = shorten(field, "x" * (limit + 1))
    assert len(cut) <= limit and cut.endswith(SHORTENED_MARKER)


def test_durations_salesforce_refuses() -> None:
    assert duration_problem("2026-11-20T09:00:00Z", "2026-11-21T09:00:00Z", False) is None
    assert "24 hours" in str(duration_problem("2026-11-20T09:00:00Z",
                                              "2026-11-21T09:01:00Z", False))
    assert duration_problem("2026-11-20T00:00:00Z", "2026-12-04T00:00:00Z", True) is None
    assert "14 days" in str(duration_problem("2026-11-20T00:00:00Z",
                                             "2026-12-05T00:00:00Z", True))


# --- time zones -----------------------------------------------------------------------

ORG_LIST = frozenset({"Asia/Kolkata", "Asia/Kathmandu", "America/Argentina/Buenos_Aires",
                      "America/Indiana/Indianapolis", "Europe/London", "UTC"})


@pytest.mark.parametrize(("zone", "sent"), [
    ("India Standard Time", "Asia/Kolkata"),  # CLDR says Asia/Calcutta
    ("Asia/Calcutta", "Asia/Kolkata"),
    ("Nepal Standard Time", "Asia/Kathmandu"),
    ("Asia/Katmandu", "Asia/Kathmandu"),
    ("Argentina Standard Time", "America/Argentina/Buenos_Aires"),
    ("America/Buenos_Aires", "America/Argentina/Buenos_Aires"),
    ("US Eastern Standard Time", "America/Indiana/Indianapolis"),
    ("America/Indianapolis", "America/Indiana/Indianapolis"),
    ("GMT Standard Time", "Europe/London"),
    ("Pacific Standard Time", None),  # not in this org's list under any spelling
    ("tzone://Microsoft/Custom", None),
])
def test_zones_match_the_org_list_under_either_spelling(zone: str, sent: str | None) -> None:
    assert salesforce_zone(zone, ORG_LIST) == sent


def test_the_default_list_knows_the_new_spellings_too() -> None:
    default = frozenset(DEFAULT_SALESFORCE_TIME_ZONES)
    assert salesforce_zone("Asia/Kolkata", default) == "Asia/Calcutta"
    assert to_windows("Asia/Kolkata") == "India Standard Time"
    assert to_windows("America/Argentina/Buenos_Aires") == "Argentina Standard Time"
    assert to_windows("Europe/Berlin") == "W. Europe Standard Time"


# --- Classic recurrence, decided before any write ----------------------------------------

START = "2026-11-02T17:00:00Z"  # a Monday, 09:00 in Los Angeles


def weekly(**range_: object) -> dict[str, object]:
    return {"type": "weekly", "interval": 1, "days_of_week": ["monday"], "day_of_month": None,
            "month": None, "index": None, "first_day_of_week": "sunday",
            "range": "noEnd", "start_date": "2026-11-02", "end_date": None,
            "occurrences": None, "time_zone": "Pacific Standard Time", **range_}


def test_a_numbered_series_ends_on_its_last_occurrence() -> None:
    plan = classic_plan(weekly(range="numbered", occurrences=10), START, "America/Los_Angeles")
    assert (plan.end_date, plan.problem, plan.capped) == ("2027-01-04", None, None)
    assert last_date(weekly(range="numbered", occurrences=10), START,
                     "America/Los_Angeles").isoformat() == "2027-01-04"  # type: ignore[union-attr]


def test_a_series_without_end_is_capped_at_53_weeks() -> None:
    plan = classic_plan(weekly(), START, "America/Los_Angeles")
    assert plan.end_date == "2027-11-01" and plan.problem is None
    assert "at most 53 occurrences of a weekly series" in str(plan.capped)


@pytest.mark.parametrize(("rec", "cap", "end"), [
    ({"type": "daily", "interval": 1}, 100, "2027-02-09"),
    ({"type": "absoluteMonthly", "interval": 1, "day_of_month": 2}, 59, "2031-09-02"),
    ({"type": "relativeMonthly", "interval": 1, "days_of_week": ["monday"], "index": "first"},
     59, "2031-09-01"),
    ({"type": "absoluteYearly", "interval": 1, "day_of_month": 2, "month": 11}, 9, "2034-11-02"),
    ({"type": "relativeYearly", "interval": 1, "days_of_week": ["monday"], "index": "first",
      "month": 11}, 9, "2034-11-06"),
])
def test_every_pattern_is_capped_where_salesforce_caps_it(rec: dict[str, object], cap: int,
                                                          end: str) -> None:
    plan = classic_plan({**weekly(), "days_of_week": [], **rec}, START, "America/Los_Angeles")
    assert plan.end_date == end and f"at most {cap} occurrences" in str(plan.capped)


@pytest.mark.parametrize(("rec", "why"), [
    ({"type": "absoluteYearly", "interval": 2, "day_of_month": 2, "month": 11}, "every 2 years"),
    ({"type": "relativeYearly", "interval": 1, "days_of_week": ["monday", "tuesday"],
      "index": "first", "month": 11}, "several days"),
    ({"type": "weekly", "days_of_week": []}, "without days"),
    ({"type": "hourly"}, "no Salesforce form"),
])
def test_patterns_classic_cannot_hold_are_problems(rec: dict[str, object], why: str) -> None:
    plan = classic_plan({**weekly(), **rec}, START, "America/Los_Angeles")
    assert plan.end_date is None and why in str(plan.problem)


def test_auto_save_knows_when_a_numbered_series_ended() -> None:
    from ledger.rules import auto_save_applies
    from ledger.settings import OrgSettings

    settings = OrgSettings().applied({"product_users": {"a@x.com": "005000000000001AAA"}})
    master = {"is_organizer": True, "mailbox": "a@x.com", "item_type": "master",
              "start": START, "time_zone": "Pacific Standard Time",
              "recurrence": weekly(range="numbered", occurrences=3)}  # last: 2026-11-16
    assert auto_save_applies(master, "2026-11-20T09:00:00Z", settings)
    assert not auto_save_applies(master, "2026-12-05T09:00:00Z", settings)
    endless = {**master, "recurrence": weekly()}
    assert auto_save_applies(endless, "2026-12-05T09:00:00Z", settings)
