"""The fields both calendars share, as the meeting and the write planner compare them.

A room of its own so that ``ledger.meeting`` and ``ledger.writes`` both read
the same normalisation without importing each other.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

REDACTED_FIELDS = ("subject", "body", "location", "attendees")
_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")


@lru_cache(maxsize=1_024)
def plain_text(text: str) -> str:
    """Body text without markup or runs of white space, for comparing both sides.

    (Cached: the same bodies are compared on every observation of a linked item.)"""
    return _SPACE.sub(" ", _TAG.sub(" ", text)).strip()


def redact(record: dict[str, Any]) -> dict[str, Any]:
    """A private item's record without subject, body, location or attendees."""
    out = dict(record)
    for name in REDACTED_FIELDS:
        out[name] = [] if name == "attendees" else ""
    out["redacted"] = True
    return out


def exchange_fields(item: dict[str, Any]) -> dict[str, Any]:
    """The fields both calendars share, from an Exchange item record."""
    return {"subject": item["subject"], "description": plain_text(item["body"]),
            "location": item["location"], "start": item["start"], "end": item["end"]}


def salesforce_fields(event: dict[str, Any]) -> dict[str, Any]:
    return {"subject": event["subject"], "description": plain_text(event["description"]),
            "location": event["location"], "start": event["start"], "end": event["end"]}
