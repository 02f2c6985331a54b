"""What a page may show of a meeting whose Outlook or Salesforce item is private.

The ledger records private items without content unless the org syncs them
(``sync_private_items``); even then a page that anyone with the dashboard
token can open shows none of it. A meeting is private when any of its items
ever was (sensitivity private, personal or confidential, Salesforce IsPrivate, or a
redacted record): its subjects, bodies, locations and attendees are replaced
by a placeholder everywhere the dashboard shows them.
"""

from __future__ import annotations

from typing import Any

from ledger.fields import REDACTED_FIELDS, is_private_sensitivity
from ledger.meeting import Meeting

#: Record fields that carry what people wrote (both sides' names for them).
CONTENT_FIELDS = frozenset({*REDACTED_FIELDS, "description", "invitees", "title"})
HIDDEN = "(private)"


def is_private_meeting(m: Meeting, entries: list[dict[str, Any]] | None = None) -> bool:
    """Any item of the meeting private now, or (with its timeline) at any time before."""
    if any(is_private_sensitivity(str(i.get("sensitivity") or "")) or i.get("redacted")
           for i in m.items.values()):
        return True
    if any(e.get("is_private") for e in m.sf.values()):
        return True
    for entry in entries or []:
        for name in ("sensitivity", "is_private", "redacted"):
            value = entry["changes"].get(name)
            values = value if isinstance(value, list) else [value]
            if any(v is True or (isinstance(v, str) and is_private_sensitivity(v))
                   for v in values):
                return True
    return False


def _hide(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: (HIDDEN if k in CONTENT_FIELDS and v not in (None, "", [], {}) else _hide(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_hide(v) for v in value]
    return value


def without_content(value: Any) -> Any:
    """A copy of a timeline, state view or explanation with every content field hidden."""
    return _hide(value)


def hide_evidence_detail(out: dict[str, Any]) -> dict[str, Any]:
    """An explanation whose evidence lines quote no observed content."""
    shown = without_content(out)
    for e in shown["evidence"]:
        if e["source"] in ("graph", "salesforce", "sidebar"):
            e["detail"] = "(content of a private item withheld)"
    return dict(shown)
