"""Defence in depth before a write: is its target this meeting's own object?

Ids are checked where they enter, but a write may still name an object that
came from outside: a marker holding someone else's valid Event Id links an
Outlook item to an Event the sync never made. So before any update or delete,
the outbox asks this module whether the target is an object this meeting
created or linked itself, and refuses (with the reason recorded on the
meeting) otherwise:

* a Salesforce Event: observed in this meeting; carrying this meeting's
  iCalUId marker, or an occurrence of such a series, or down-synced or linked
  by this meeting; and claimed by no Outlook item the sync did not make (an
  item outside the Event owner's / down-sync mailbox whose marker names it);
* an Exchange item: observed in this meeting, in the mailbox the write names;
* an Exchange create: only in the mailbox this meeting down-syncs that Event to.
"""

from __future__ import annotations

from typing import Any

from ledger.identity import item_key
from ledger.meeting_state import MeetingState
from ledger.settings import OrgSettings


def _claimed_by_stranger(m: MeetingState, sf_id: str, event: dict[str, Any],
                         settings: OrgSettings) -> str | None:
    """An Outlook item whose marker names this Event although the sync did not make it.

    The sync stamps its marker on the copies it creates (in the mailbox it
    down-syncs to, normally the Event owner's); an item elsewhere carrying the
    Event's Id, and not the same meeting (its iCalUId differs from the Event's
    marker), is someone else's claim: no write may follow from it."""
    allowed = {m.down_syncs.get(sf_id)}
    if event.get("owner_id"):
        allowed.add(settings.mailbox_of(event["owner_id"]))
    marker = event.get("ical_marker")
    for item in m.items.values():
        if item.get("salesforce_marker") == sf_id and item["mailbox"] not in allowed \
                and (not marker or item.get("ical_uid") != marker):
            return str(item["mailbox"])
    return None


def _ours(m: MeetingState, sf_id: str, settings: OrgSettings, depth: int = 0) -> str | None:
    """Why the Event ``sf_id`` is not this meeting's own (None: it is)."""
    event = m.sf.get(sf_id)
    if event is None:
        return "the ledger never observed that Event in this meeting"
    stranger = _claimed_by_stranger(m, sf_id, event, settings)
    if stranger is not None:
        return (f"an Outlook item in {stranger[:80]!r} claims it by marker, and the sync "
                "made no such copy")
    marker = event.get("ical_marker")
    if marker:
        return None if m.ical_uid is None or marker == m.ical_uid else \
            "its iCalUId marker names another meeting"
    series = event.get("series_id")
    if series and depth == 0 and series in m.sf:
        return _ours(m, series, settings, 1)
    if sf_id in m.down_syncs or sf_id in m.links.values():
        return None
    return "this meeting did not create or link that Event"


def target_refusal(m: MeetingState, write: dict[str, Any], settings: OrgSettings
                   ) -> str | None:
    """Why ``write`` may not go out (its target is not this meeting's own); None: it may."""
    target, op, target_id = write["target"], write["op"], write.get("id")
    if target == "salesforce":
        if op == "create":
            return None
        why = _ours(m, target_id, settings) if isinstance(target_id, str) else "no Event Id"
        return None if why is None else f"Salesforce {op} of {str(target_id)[:40]!r} refused: {why}"
    mailbox = write.get("mailbox")
    if op == "create":
        if mailbox is None or mailbox not in m.down_syncs.values():
            return (f"Exchange create in {str(mailbox)[:80]!r} refused: this meeting "
                    "down-syncs to no such mailbox")
        return None
    if not isinstance(target_id, str) or not isinstance(mailbox, str) \
            or item_key(mailbox, target_id) not in m.items:
        return (f"Exchange {op} of {str(target_id)[:40]!r} refused: the ledger never observed "
                f"that item in {str(mailbox)[:80]!r} in this meeting")
    return None
