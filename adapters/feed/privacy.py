"""Private items blanked in feed lines before they are kept outside the ledger.

``redact_line`` takes one raw feed line and, when its payload is a private
Outlook item (``sensitivity`` private, personal or confidential, in any case)
or a private Salesforce Event (``IsPrivate``), returns the same envelope with
subject, body, location and attendees blanked; otherwise None. Quarantine rows
and ``sync --record`` files go through it while the org does not sync private
items, so their content is never written anywhere (README, "Security").
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from adapters.graph import privacy as graph_privacy
from adapters.salesforce import privacy as salesforce_privacy

NOTE = "private item: subject, body, location and attendees blanked in the kept line"


def redact_line(raw: bytes) -> bytes | None:
    """The line with a private item's content blanked; None when it holds none."""
    if b"ensitivity" not in raw and b"IsPrivate" not in raw:
        return None  # the common case: no need to decode
    try:
        line = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _undecodable(raw)
    if not isinstance(line, dict) or not isinstance(line.get("payload"), dict):
        return _undecodable(raw)
    payload: dict[str, Any] = line["payload"]
    if graph_privacy.is_private(payload):
        line["payload"] = graph_privacy.redacted(payload)
    elif salesforce_privacy.is_private(payload):
        line["payload"] = salesforce_privacy.redacted(payload)
        if "relations" in line:
            line["relations"] = []
    else:
        return None
    return orjson.dumps(line)


_LOOKS_PRIVATE = re.compile(
    rb'"sensitivity"\s*:\s*"\s*(?:private|personal|confidential)|"IsPrivate"\s*:\s*true', re.I)


def _undecodable(raw: bytes) -> bytes | None:
    """A line we cannot read that still says it is private: keep none of its content."""
    if _LOOKS_PRIVATE.search(raw):
        return orjson.dumps({"redacted": NOTE})
    return None
