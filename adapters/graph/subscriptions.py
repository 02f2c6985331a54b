"""Graph change notifications: subscriptions (create, renew, delete) and the payloads.

Wire facts (Microsoft Graph v1.0, "change notifications" and "lifecycle
notifications" in Graph's documentation):

* ``POST /subscriptions`` with ``changeType`` (``created,updated,deleted``),
  ``notificationUrl`` and ``lifecycleNotificationUrl`` (HTTPS only),
  ``resource`` (``users/{id}/events``), ``expirationDateTime`` (an Outlook
  event subscription lives at most 10,080 minutes, under 7 days) and
  ``clientState`` (at most 255 characters, sent back in every notification).
  Before answering, Graph POSTs ``?validationToken=...`` to each URL and wants
  the token back as ``text/plain`` with 200 within 10 seconds.
* ``PATCH /subscriptions/{id}`` with a new ``expirationDateTime`` renews;
  ``DELETE /subscriptions/{id}`` ends one; 404: it is gone already.
* A notification POST carries ``{"value": [...]}``; each item has
  ``subscriptionId``, ``clientState`` and either ``changeType`` (a change) or
  ``lifecycleEvent`` (``reauthorizationRequired``, ``missed``,
  ``subscriptionRemoved``). The receiver answers 202 within 3 seconds.

What the rest of the code sees are :class:`Notice` objects and plain values:
no Graph field name leaves this module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from adapters.graph.client import GraphClient, GraphError
from adapters.wire import path_segment

#: The query parameter of Graph's validation request.
VALIDATION_PARAM = "validationToken"
CHANGE_TYPES = ("created", "updated", "deleted")
LIFECYCLE_EVENTS = ("reauthorizationRequired", "missed", "subscriptionRemoved")
#: Longest life of a subscription to Outlook events (Graph: 10,080 minutes).
MAX_MINUTES = 10080
MAX_SECRET = 255
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,99}$")


class NotificationError(ValueError):
    """A notification body that is not Graph's shape (names what is wrong)."""


@dataclass(frozen=True)
class Notice:
    """One item of a notification POST."""

    subscription_id: str
    secret: str  # the clientState it carries ("" when none)
    change: str | None = None  # created | updated | deleted
    lifecycle: str | None = None  # reauthorizationRequired | missed | subscriptionRemoved


@dataclass(frozen=True)
class Created:
    """What Graph answered to a create or a renewal."""

    subscription_id: str
    expires_at: str  # ISO-8601 UTC


def resource_of(mailbox: str) -> str:
    """``users/{address}/events``: the address quoted as one path segment (``@`` kept, as
    Graph's own examples write it)."""
    return f"users/{path_segment(mailbox).replace('%40', '@')}/events"


def graph_time(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")


def subscription_id(value: Any) -> str:
    """A subscription id from Graph, checked before it goes into a URL."""
    if not isinstance(value, str) or not _ID.match(value):
        raise NotificationError(f"subscription id: not a Graph subscription id: "
                                f"{str(value)[:80]!r}")
    return value


def _created(body: Any) -> Created:
    if not isinstance(body, dict):
        raise GraphError(0, "badAnswer", "the subscription answer is not a JSON object")
    return Created(subscription_id(body.get("id")),
                   parse_time(body.get("expirationDateTime")).isoformat())


_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?$")


def parse_time(value: Any) -> datetime:
    """Graph's ``expirationDateTime`` (seven fractional digits, ``Z`` or an offset) in UTC."""
    match = _TIME.match(str(value or ""))
    if match is None:
        raise NotificationError(f"expirationDateTime: not a date-time: {str(value)[:40]!r}")
    base, fraction, zone = match.groups()
    when = datetime.fromisoformat(f"{base}.{(fraction or '0')[:6].ljust(6, '0')}"
                                  f"{'+00:00' if zone in (None, 'Z') else zone}")
    return when.astimezone(UTC)


def create(client: GraphClient, mailbox: str, *, notification_url: str, secret: str,
           expires: datetime) -> Created:
    """Subscribe to the mailbox's calendar: created, updated and deleted events."""
    if len(secret) > MAX_SECRET:
        raise ValueError(f"clientState: at most {MAX_SECRET} characters")
    body = {"changeType": ",".join(CHANGE_TYPES), "notificationUrl": notification_url,
            "lifecycleNotificationUrl": notification_url, "resource": resource_of(mailbox),
            "expirationDateTime": graph_time(expires), "clientState": secret,
            "latestSupportedTlsVersion": "v1_2"}
    return _created(client.request("POST", "subscriptions", json=body).json())


def renew(client: GraphClient, sub_id: str, *, expires: datetime) -> Created | None:
    """A new expiry; None when Graph no longer has the subscription (404)."""
    try:
        resp = client.request("PATCH", f"subscriptions/{path_segment(subscription_id(sub_id))}",
                              json={"expirationDateTime": graph_time(expires)})
    except GraphError as exc:
        if exc.status == 404:
            return None
        raise
    return _created(resp.json())


def delete(client: GraphClient, sub_id: str) -> bool:
    """True when deleted, False when it was gone already."""
    try:
        client.request("DELETE", f"subscriptions/{path_segment(subscription_id(sub_id))}")
    except GraphError as exc:
        if exc.status == 404:
            return False
        raise
    return True


def longest(now: datetime) -> datetime:
    """The latest expiry Graph accepts for an event subscription created at ``now``
    (a minute short of the maximum, for the clocks' difference)."""
    return now + timedelta(minutes=MAX_MINUTES - 1)


def parse(body: Any) -> list[Notice]:
    """The items of a notification POST; raises NotificationError naming the bad field."""
    if not isinstance(body, dict) or not isinstance(body.get("value"), list):
        raise NotificationError("notification: a JSON object with a 'value' array is required")
    out = []
    for n, item in enumerate(body["value"]):
        if not isinstance(item, dict):
            raise NotificationError(f"notification value[{n}]: not an object")
        try:
            sub = subscription_id(item.get("subscriptionId"))
        except NotificationError:
            raise NotificationError(f"notification value[{n}].subscriptionId: not a Graph "
                                    "subscription id") from None
        secret = item.get("clientState") or ""
        change, lifecycle = item.get("changeType"), item.get("lifecycleEvent")
        if not isinstance(secret, str):
            raise NotificationError(f"notification value[{n}].clientState: not a string")
        if lifecycle is not None:
            if lifecycle not in LIFECYCLE_EVENTS:
                raise NotificationError(f"notification value[{n}].lifecycleEvent: unknown "
                                        f"{str(lifecycle)[:40]!r}")
            out.append(Notice(sub, secret, lifecycle=str(lifecycle)))
        elif change in CHANGE_TYPES:
            out.append(Notice(sub, secret, change=str(change)))
        else:
            raise NotificationError(f"notification value[{n}].changeType: unknown "
                                    f"{str(change)[:40]!r}")
    return out
