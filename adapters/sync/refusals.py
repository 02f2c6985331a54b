"""Which failed writes are refusals: the API answered "no" with an error code.

A 4xx with an error code (Salesforce ``STRING_TOO_LONG``, ``REQUIRED_FIELD_MISSING``,
``FIELD_INTEGRITY_EXCEPTION``, ...; Graph ``ErrorInvalidRequest``, ...) will be
refused again, so retrying it only spends API calls: the sync records it on the
meeting (``write.refused``, rule ``write-refused``) and does not send that write
again until it changes (DOMAIN.md §11). Throttling (429), an expired session (401),
Salesforce's request limit, timeouts and 5xx are transient: they keep their
back-off and are not refusals.

"Refused writes" are not the "parked" observations of relation resolution, which
wait for a dependency; these wait for a person to change the item.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from simple_salesforce.exceptions import SalesforceMalformedRequest, SalesforceRefusedRequest

from adapters.graph.client import GraphError

#: Statuses that say something about the moment, not the write.
TRANSIENT = frozenset({401, 408, 409, 412, 423, 429})


@dataclass(frozen=True)
class Refusal:
    status: int
    code: str
    message: str
    fields: list[str]


def refusal(exc: BaseException) -> Refusal | None:
    """The API's refusal carried by ``exc``, or None when the failure is not one."""
    if isinstance(exc, GraphError):
        if 400 <= exc.status < 500 and exc.status not in TRANSIENT and exc.status != 404 \
                and exc.code:
            return Refusal(exc.status, exc.code, exc.message, [])
        return None
    if isinstance(exc, SalesforceMalformedRequest | SalesforceRefusedRequest):
        errors: Any = exc.content
        first = errors[0] if isinstance(errors, list) and errors and \
            isinstance(errors[0], dict) else {}
        code = str(first.get("errorCode") or "")
        if not code or code == "REQUEST_LIMIT_EXCEEDED":
            return None
        named = first.get("fields")
        fields = [str(f) for f in named] if isinstance(named, list) else []
        return Refusal(int(exc.status), code, str(first.get("message") or ""), fields)
    return None
