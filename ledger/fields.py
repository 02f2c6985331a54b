"""The fields both calendars share, as the meeting and the write planner compare them.

A room of its own so that ``ledger.meeting`` and ``ledger.writes`` both read
the same normalisation without importing each other.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from ledger.limits import shorten

REDACTED_FIELDS = ("subject", "body", "location", "attendees")
_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")


@lru_cache(maxsize=1_024)
def plain_text(text: str) -> str:
    """Body text without runs of white space, for comparing both sides.

    Bodies reach the ledger as plain text (the Graph adapter converts HTML with
    inscriptis, ``adapters.graph.body``), and a round trip through either
    calendar keeps the words but not the spacing, so spacing is not compared.
    A body that is still markup (recorded before the adapter converted them) is
    compared without its tags, as it was then, so old ledgers decide as before.
    (Cached: the same bodies are compared on every observation of a linked item.)"""
    if text.lstrip().startswith("<") and "</" in text:
        text = _TAG.sub(" ", text)
    return _SPACE.sub(" ", text).strip()


def comparable(field: str, text: str) -> str:
    """A text field as Salesforce would hold it, normalised for comparison."""
    short = shorten(field, text)
    return plain_text(short) if field == "description" else short


PRIVATE_SENSITIVITIES = frozenset({"private", "confidential", "personal"})


def is_private_sensitivity(value: str) -> bool:
    """Private, personal or confidential, however the source spelled it ("Private"):
    DOMAIN.md treats the three alike, and so does every reader of the ledger."""
    return value.strip().lower() in PRIVATE_SENSITIVITIES


def redact(record: dict[str, Any]) -> dict[str, Any]:
    """A private item's record without subject, body, location or attendees."""
    out = dict(record)
    for name in REDACTED_FIELDS:
        out[name] = [] if name == "attendees" else ""
    out["redacted"] = True
    return out


def redact_event(record: dict[str, Any]) -> dict[str, Any]:
    """A private Salesforce Event's record without subject, description, location or people."""
    out = dict(record)
    out["subject"] = out["description"] = out["location"] = ""
    if out.get("invitees") is not None:
        out["invitees"] = []
    out["redacted"] = True
    return out


def exchange_fields(item: dict[str, Any]) -> dict[str, Any]:
    """The fields both calendars share, from an Exchange item record."""
    return {"subject": comparable("subject", item["subject"]),
            "description": comparable("description", item["body"]),
            "location": comparable("location", item["location"]),
            "start": item["start"], "end": item["end"]}


def salesforce_fields(event: dict[str, Any]) -> dict[str, Any]:
    return {"subject": comparable("subject", event["subject"]),
            "description": comparable("description", event["description"]),
            "location": comparable("location", event["location"]),
            "start": event["start"], "end": event["end"]}
