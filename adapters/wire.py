"""What both wire translations share: the error that names a field, and the time format."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, TypeVar


class WireError(ValueError):
    """A payload the ledger cannot read; ``field`` is its path in the payload."""

    def __init__(self, field: str, message: str, item_id: str | None = None) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.item_id = item_id


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
    return utc_iso(parsed)


def kind_of(value: Any) -> str:
    """The JSON kind of a value, for error messages."""
    return "null" if value is None else type(value).__name__


_EXPECTED = {str: "a string", bool: "true or false"}
T = TypeVar("T", str, bool)


def _typed(record: dict[str, Any], field: str, item_id: str | None, kind: type[T],
           default: T) -> T:
    value = record.get(field)
    if value is None:
        return default
    if not isinstance(value, kind):
        raise WireError(field, f"expected {_EXPECTED[kind]}, got {kind_of(value)}", item_id)
    return value


def text(record: dict[str, Any], field: str, item_id: str | None, default: str = "") -> str:
    """A string field; absent or null is ``default``, anything else not a string is an error."""
    return _typed(record, field, item_id, str, default)


def flag(record: dict[str, Any], field: str, item_id: str | None, default: bool = False) -> bool:
    """A boolean field; absent or null is ``default``."""
    return _typed(record, field, item_id, bool, default)
