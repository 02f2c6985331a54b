"""What both wire translations share: the error that names a field, the time format,
and the typed field readers.

Every wire field is read through one of the readers below (``text``, ``flag``,
``integer``, ``strings``, ``obj``): each checks the JSON type and raises
``WireError`` naming the field's whole path (``at`` is the enclosing object's
path, so ``body.content``, never ``content``). Nothing is coerced: ``"no"`` is not
false and ``"two"`` is not a number. Text the ledger cannot hold is refused here,
on both stores alike: NUL and other control characters (tab, newline and
carriage return are allowed in free text, nothing in ids), unpaired surrogates,
and times outside the years 2 to 9998 (the ledger adds and subtracts days and
converts zones; at years 1 and 9999 that overflows).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote

#: Years a ledger time may have (see the module docstring).
MIN_YEAR, MAX_YEAR = 2, 9998
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_ID_CONTROL = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")


class WireError(ValueError):
    """A payload the ledger cannot read; ``field`` is its path in the payload."""

    def __init__(self, field: str, message: str, item_id: str | None = None) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.item_id = item_id


def path(at: str, field: str) -> str:
    """``field`` inside the object at ``at`` (``at`` empty: the top level)."""
    if not at:
        return field
    return f"{at}{field}" if field.startswith("[") else f"{at}.{field}"


def checked_text(value: str, field: str, item_id: str | None = None, *,
                 is_id: bool = False) -> str:
    """``value`` when the ledger can store it: no NUL or control character (in an id,
    not even tab or newline), no unpaired surrogate."""
    bad = (_ID_CONTROL if is_id else _CONTROL).search(value)
    if bad is not None:
        char = bad.group()
        what = "an unpaired surrogate" if "\ud800" <= char <= "\udfff" \
            else f"a control character (U+{ord(char):04X})"
        raise WireError(field, f"contains {what} at position {bad.start()}", item_id)
    return value


def checked_utc(parsed: datetime, field: str, item_id: str | None = None) -> str:
    """A zoned time as ledger UTC, refused when outside the years the ledger can hold."""
    try:
        text_ = utc_iso(parsed)
        year = parsed.astimezone(UTC).year
    except (OverflowError, ValueError):
        year = MAX_YEAR + 1 if parsed.year > 5000 else MIN_YEAR - 1
        text_ = ""
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise WireError(field, f"{parsed.isoformat()} is outside the years the ledger can "
                               f"hold ({MIN_YEAR} to {MAX_YEAR})", item_id)
    return text_


def utc_iso(value: datetime) -> str:
    """The one time format of the ledger: ISO-8601 UTC, seconds (fraction only if any)."""
    value = value.astimezone(UTC)
    if value.year >= 1000:  # ``isoformat`` is twice as fast as ``strftime``, same text
        return value.isoformat()[:-6] + "Z"  # drop "+00:00"
    if value.microsecond:
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_instant(value: Any, field: str, item_id: str | None = None) -> str:
    """An ISO-8601 time with a zone (``Z``, ``+00:00`` or ``+0000``), as ledger UTC."""
    if not isinstance(value, str):
        raise WireError(field, f"expected an ISO-8601 time string, got {kind_of(value)}", item_id)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise WireError(field, f"{value!r} is not an ISO-8601 time", item_id) from None
    if parsed.tzinfo is None:
        raise WireError(field, f"{value!r} has no zone (expected e.g. ...Z)", item_id)
    return checked_utc(parsed, field, item_id)


def path_segment(value: str) -> str:
    """``value`` quoted as exactly one URL path segment (``/``, ``?``, ``#``, ``%`` escaped).

    Ids are checked where they enter; this is the second guard, where they
    leave: whatever an id holds, it cannot climb out of its segment."""
    return quote(value, safe="")


def kind_of(value: Any) -> str:
    """The JSON kind of a value, for error messages."""
    return "null" if value is None else type(value).__name__


_EXPECTED: dict[type, str] = {str: "a string", bool: "true or false", int: "an integer",
                              list: "a list", dict: "an object"}
T = TypeVar("T", str, bool, int)


def _typed(record: dict[str, Any], field: str, item_id: str | None, kind: type[T],
           default: T, at: str) -> T:
    value = record.get(field)
    if value is None:
        return default
    # bool is an int in Python, never in JSON: ``true`` is not a number
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise WireError(path(at, field), f"expected {_EXPECTED[kind]}, got {kind_of(value)}",
                        item_id)
    return value


def text(record: dict[str, Any], field: str, item_id: str | None, default: str = "", *,
         at: str = "", is_id: bool = False) -> str:
    """A string field; absent or null is ``default``, anything else not a string is an error."""
    value = _typed(record, field, item_id, str, default, at)
    return checked_text(value, path(at, field), item_id, is_id=is_id)


def opt_text(record: dict[str, Any], field: str, item_id: str | None, *, at: str = "",
             is_id: bool = False) -> str | None:
    """A string field that may be absent (None); empty counts as absent."""
    return text(record, field, item_id, at=at, is_id=is_id) or None


def flag(record: dict[str, Any], field: str, item_id: str | None, default: bool = False, *,
         at: str = "") -> bool:
    """A boolean field; absent or null is ``default``."""
    return _typed(record, field, item_id, bool, default, at)


def integer(record: dict[str, Any], field: str, item_id: str | None, *, at: str = ""
            ) -> int | None:
    """An integer field (absent or null: None)."""
    value = record.get(field)
    if value is None:
        return None
    return _typed(record, field, item_id, int, 0, at)


def strings(record: dict[str, Any], field: str, item_id: str | None, *, at: str = ""
            ) -> list[str]:
    """A list of strings (absent or null: empty)."""
    value = record.get(field)
    if value is None:
        return []
    if not isinstance(value, list):
        raise WireError(path(at, field), f"expected a list of strings, got {kind_of(value)}",
                        item_id)
    where = path(at, field)
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise WireError(f"{where}[{i}]", f"expected a string, got {kind_of(item)}", item_id)
        checked_text(item, f"{where}[{i}]", item_id)
    return list(value)


def obj(record: dict[str, Any], field: str, item_id: str | None, *, at: str = ""
        ) -> dict[str, Any] | None:
    """An object field (absent or null: None)."""
    value = record.get(field)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise WireError(path(at, field), f"expected an object, got {kind_of(value)}", item_id)
    return value
