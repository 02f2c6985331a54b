"""A private Outlook item's content blanked in the wire payload itself.

The ledger records a private item without subject, body, location or
attendees (``ledger.fields.redact``); this does the same to the raw Graph
JSON, for the copies of a payload that leave the ledger's decisions: the raw
line a quarantine row keeps and the lines ``sync --record`` writes.
"""

from __future__ import annotations

from typing import Any

#: Graph ``sensitivity`` values that make an item private (compared case-insensitively).
PRIVATE = frozenset({"private", "personal", "confidential"})
#: Content fields of a Graph event, and their blank values.
_BLANK: dict[str, Any] = {"subject": "", "bodyPreview": "", "attendees": [],
                          "body": {"contentType": "text", "content": ""},
                          "uniqueBody": {"contentType": "text", "content": ""},
                          "location": {"displayName": ""}, "locations": []}


def is_private(payload: Any) -> bool:
    value = payload.get("sensitivity") if isinstance(payload, dict) else None
    return isinstance(value, str) and value.strip().lower() in PRIVATE


def redacted(payload: dict[str, Any]) -> dict[str, Any]:
    """``payload`` with its content fields blanked (those it has)."""
    return {k: _BLANK.get(k, v) for k, v in payload.items()}
