"""Salesforce Ids read from outside: checked before they name a record, a query or a URL.

An Id is 15 case-sensitive characters of ``[0-9A-Za-z]``, or those 15 plus a
3-character case checksum (each character encodes which of five letters are
upper case). The first three characters are the object's key prefix: an
Event's is ``00U``. A marker, a ``RecurrenceActivityId`` or a getDeleted entry
that should name an Event and names anything else (an Account, a path such as
``../Account/001...``) is refused with the field named, so no outside value
can steer a write at another object (DOMAIN.md §13).
"""

from __future__ import annotations

import re

from adapters.wire import WireError
from ledger.identity import salesforce_id18

EVENT_PREFIX = "00U"
_SHAPE = re.compile(r"[0-9A-Za-z]{15}(?:[0-9A-Za-z]{3})?")


def id_problem(value: object, *, prefix: str | None = None) -> str | None:
    """Why ``value`` is not a Salesforce Id (of an object with ``prefix``); None if it is."""
    if not isinstance(value, str):
        return f"expected a Salesforce Id string, got {type(value).__name__}"
    if not _SHAPE.fullmatch(value):
        shown = repr(value[:40]) + ("..." if len(value) > 40 else "")
        return f"{shown} is not a Salesforce Id (15 or 18 letters and digits)"
    if len(value) == 18 and salesforce_id18(value[:15]) != value[:15] + value[15:].upper():
        return f"{value!r} is not a Salesforce Id (its case checksum does not match)"
    if prefix is not None and not value.startswith(prefix):
        if prefix == EVENT_PREFIX:
            return f"{value!r} is not an Event Id (Event Ids start with {prefix})"
        return f"{value!r} does not have the key prefix {prefix}"
    return None


def is_id(value: object, *, prefix: str | None = None) -> bool:
    return id_problem(value, prefix=prefix) is None


def checked_id(value: object, field: str, item_id: str | None = None, *,
               prefix: str | None = None) -> str:
    """``value`` as an 18-character Id, or ``WireError`` naming ``field``."""
    problem = id_problem(value, prefix=prefix)
    if problem is not None:
        raise WireError(field, problem, item_id)
    assert isinstance(value, str)
    return salesforce_id18(value[:15])


def checked_event_id(value: object, field: str, item_id: str | None = None) -> str:
    """An Id that must name an Event (key prefix ``00U``)."""
    return checked_id(value, field, item_id, prefix=EVENT_PREFIX)
