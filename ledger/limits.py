"""What Salesforce stores at most (DOMAIN.md §11): field lengths and event durations.

Pure facts and the two things the ledger does with them: shorten a text to
what the field holds, with a visible marker (the write planner sends that,
and body comparison shortens both sides the same way so a round trip is not
an edit), and tell whether an item is longer than Salesforce allows.
"""

from __future__ import annotations

from datetime import datetime, timedelta

#: Event field lengths in characters (Object Reference: Subject 255, Location 255,
#: Description 32,000). Keys are the ledger's field names.
MAX_LENGTH = {"subject": 255, "location": 255, "description": 32_000}
#: Appended to a shortened text so a reader sees that something was cut.
SHORTENED_MARKER = " […] (shortened by the sync: the full text is in Outlook)"
MAX_TIMED = timedelta(hours=24)
MAX_ALL_DAY = timedelta(days=14)


def shorten(field: str, text: str) -> str:
    """``text`` as the Salesforce field holds it: whole when it fits, else cut + marker."""
    limit = MAX_LENGTH[field]
    if len(text) <= limit:
        return text
    return text[:limit - len(SHORTENED_MARKER)].rstrip() + SHORTENED_MARKER


def too_long_fields(values: dict[str, str]) -> list[str]:
    """The fields (of subject, location, description) whose text is over its length."""
    return [f for f in MAX_LENGTH if len(values.get(f) or "") > MAX_LENGTH[f]]


def duration_problem(start: str, end: str, is_all_day: bool) -> str | None:
    """Why Salesforce would refuse an event this long (None when it would not)."""
    length = datetime.fromisoformat(end) - datetime.fromisoformat(start)
    if is_all_day and length > MAX_ALL_DAY:
        return f"an all-day event of {length.days} days is longer than Salesforce's 14 days"
    if not is_all_day and length > MAX_TIMED:
        hours = length.total_seconds() / 3600
        return f"an event of {hours:g} hours is longer than Salesforce's 24 hours"
    return None
