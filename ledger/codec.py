"""Event encoding with orjson.

Our events hold JSON-native values only, so orjson encodes them directly; the
one exception is the library's own ``timestamp`` attribute (a datetime, set
from the observation's ``observed_at``), stored as an ISO-8601 UTC string and
turned back into a datetime on the way out.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from eventsourcing.persistence import Transcoder

_OPTIONS = orjson.OPT_UTC_Z


def encode_state(obj: Any) -> bytes:
    """An event's state as stored (what ``OrjsonTranscoder.encode`` gives)."""
    return orjson.dumps(obj, option=_OPTIONS)


class OrjsonTranscoder(Transcoder):
    """Fast path for JSON-native event state (no ``_type_`` wrappers)."""

    def encode(self, obj: Any) -> bytes:
        return orjson.dumps(obj, option=_OPTIONS)

    def decode(self, data: bytes) -> Any:
        state = orjson.loads(data)
        ts = state.get("timestamp")
        if isinstance(ts, str):
            state["timestamp"] = datetime.fromisoformat(ts)
        state_ = state.get("state")  # snapshots keep the aggregate's own state
        if isinstance(state_, dict):
            for name in ("_created_on", "_modified_on"):
                if isinstance(state_.get(name), str):
                    state_[name] = datetime.fromisoformat(state_[name])
        return state
