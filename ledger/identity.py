"""Deterministic meeting identity (DOMAIN.md §1).

A meeting's aggregate id is a uuid5 of its series-or-single key: the
Exchange iCalUId, or the Salesforce series-or-single Id for a meeting first
seen in Salesforce. The same key always gives the same id, so the same
observation always lands on the same aggregate.
"""

from __future__ import annotations

import re
from functools import lru_cache
from uuid import UUID, uuid5

NAMESPACE = UUID("5b0f7a4e-3c1d-4f6e-9a51-7d2c0e8b9f10")
ORG_SETTINGS_ID = uuid5(NAMESPACE, "org-settings")
DIRECTORY_ID = uuid5(NAMESPACE, "directory")

_SF_ID = re.compile(r"^[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?$")
_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def ical_key(ical_uid: str) -> str:
    return f"ical:{ical_uid}"


def salesforce_key(event_id: str) -> str:
    return f"sf:{salesforce_id18(event_id)}"


@lru_cache(maxsize=16_384)
def meeting_id(key: str) -> UUID:
    """(Cached: intake asks for the same keys again and again, and uuid5 is slow.)"""
    return uuid5(NAMESPACE, key)


@lru_cache(maxsize=16_384)
def uuid_of(hex_id: str) -> UUID:
    """The UUID of an id as the external-id index holds it (cached, as above)."""
    return UUID(hex_id)


def waiting_key(email: str, meeting_hex: str) -> str:
    """The index key saying that a meeting waits for a person with this email."""
    return f"who:{email.lower()}|{meeting_hex}"


def item_key(mailbox: str, item_id: str) -> str:
    """Key of one mailbox's copy of an item (Graph ids differ per mailbox)."""
    return f"{mailbox.lower()}|{item_id}"


def exchange_index_key(mailbox: str, item_id: str) -> str:
    """The external-id index key of one mailbox's copy of an Exchange item."""
    return "ex:" + item_key(mailbox, item_id)


def is_salesforce_id(value: str) -> bool:
    return bool(_SF_ID.match(value))


def salesforce_id18(value: str) -> str:
    """The 18-character form of a 15- or 18-character Salesforce Id."""
    if len(value) != 15:
        return value
    suffix = ""
    for block in range(3):
        bits = 0
        for i, ch in enumerate(value[block * 5 : block * 5 + 5]):
            if "A" <= ch <= "Z":
                bits |= 1 << i
        suffix += _SUFFIX[bits]
    return value + suffix
