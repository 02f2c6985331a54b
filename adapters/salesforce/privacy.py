"""A private Salesforce Event's content blanked in the SOQL record itself (see
``adapters.graph.privacy``): ``IsPrivate`` true hides Subject, Description,
Location and its people from everyone but the owner, and so does the ledger."""

from __future__ import annotations

from typing import Any

_BLANK = {"Subject": "", "Description": "", "Location": ""}


def is_private(record: Any) -> bool:
    return isinstance(record, dict) and record.get("IsPrivate") is True


def redacted(record: dict[str, Any]) -> dict[str, Any]:
    return {k: _BLANK.get(k, v) for k, v in record.items()}
