"""A decision of the rule book: the event the meeting records, and its fields."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Decision:
    """One event to record: its name on ``Meeting`` and its JSON-native fields."""

    event: str
    fields: dict[str, Any] = field(default_factory=dict)
