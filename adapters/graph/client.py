"""Microsoft Graph over HTTPS: msal client-credentials token, calendar delta, writes.

Wire facts (DOMAIN.md §7): ``Prefer: IdType="ImmutableId"`` so ids survive
moves; ``odata.maxpagesize`` for page size; follow ``@odata.nextLink`` (even
past empty pages) until ``@odata.deltaLink``; 410 / ``syncStateNotFound`` /
``resyncRequired`` mean "start a full sync"; 429 and 503 carry
``Retry-After`` seconds (a float). A 401 means the token expired early: drop
it from msal's cache and ask again, once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse, urlsplit

import msal
import requests

from adapters.graph.config import GraphConfig
from adapters.graph.odata import odata_string
from adapters.http_session import make_session
from adapters.wire import path_segment

SCOPES = ["https://graph.microsoft.com/.default"]
RESYNC_CODES = frozenset({"syncStateNotFound", "resyncRequired"})
MICROSOFT_HOSTS = ("login.microsoftonline.com", "login.microsoftonline.us",
                   "login.partner.microsoftonline.cn", "login.chinacloudapi.cn")


class GraphError(RuntimeError):
    """A Graph error response: HTTP status, error code, message."""

    def __init__(self, status: int, code: str, message: str, url: str = "") -> None:
        super().__init__(f"Graph {status} {code}: {message}" + (f" ({url})" if url else ""))
        self.status, self.code, self.message = status, code, message


class GraphAuthError(GraphError):
    """msal could not get a token (it reports errors as a dict, not an exception)."""


class DeltaExpired(GraphError):
    """The delta token is no longer valid: the caller restarts with a full sync."""


@dataclass(frozen=True)
class DeltaPage:
    events: list[dict[str, Any]]
    next_link: str | None
    delta_link: str | None



class GraphClient:
    def __init__(self, config: GraphConfig, session: requests.Session | None = None, *,
                 sleep: Callable[[float], None] = time.sleep, max_backoff: float = 30.0,
                 max_attempts: int = 6) -> None:
        self.config = config
        self.session = session or make_session(config.ca_file)
        self.sleep = sleep
        self.max_backoff = max_backoff
        self.max_attempts = max_attempts
        host = urlparse(config.authority_host).hostname or ""
        self.app = msal.ConfidentialClientApplication(
            config.client_id, client_credential=config.client_secret,
            authority=config.authority, http_client=self.session,
            instance_discovery=host in MICROSOFT_HOSTS,
            token_cache=msal.TokenCache())
        self.requests_made = 0
        self.throttled = 0

    # --- auth ---------------------------------------------------------

    def token(self) -> str:
        """An access token from msal's cache or the token endpoint.

        msal reports refusals as a dict but raises on a 5xx or a broken connection;
        both of those come out as a 503 ``GraphAuthError`` that ``request`` retries.
        """
        try:
            result = self.app.acquire_token_for_client(scopes=SCOPES)
        except (msal.exceptions.MsalServiceError, requests.RequestException) as exc:
            raise GraphAuthError(503, "tokenEndpointUnavailable", str(exc)) from exc
        if "access_token" not in result:
            raise GraphAuthError(401, str(result.get("error")),
                                 str(result.get("error_description", "")))
        return str(result["access_token"])

    # --- transport ----------------------------------------------------

    def request(self, method: str, url: str, *, json: Any = None,
                params: dict[str, str] | None = None, page_size: int | None = None
                ) -> requests.Response:
        """One Graph call with token refresh, throttling and transient-failure retries."""
        url = self._under_base(url)
        prefer = ['IdType="ImmutableId"']
        if page_size:
            prefer.append(f"odata.maxpagesize={page_size}")
        refreshed = False
        delay = 0.5
        for attempt in range(1, self.max_attempts + 1):
            try:
                token = self.token()
            except GraphAuthError as exc:
                if exc.status != 503 or attempt == self.max_attempts:
                    raise
                self.sleep(min(delay, self.max_backoff))
                delay *= 2
                continue
            headers = {"Authorization": f"Bearer {token}", "Prefer": ", ".join(prefer),
                       "Accept": "application/json"}
            try:
                self.requests_made += 1
                resp = self.session.request(method, url, headers=headers, json=json,
                                            params=params, timeout=60)
                if resp.status_code < 400:
                    resp.json() if resp.content else None  # a cut body fails here, retried
                    return resp
            except (requests.ConnectionError, requests.Timeout,
                    requests.exceptions.ChunkedEncodingError, ValueError):
                # A POST whose answer was lost may have created the event: never send
                # it twice; the outbox finds it by its marker on the next round.
                if attempt == self.max_attempts or method == "POST":
                    raise
                self.sleep(min(delay, self.max_backoff))
                delay *= 2
                continue
            if resp.status_code == 401 and not refreshed:
                refreshed = True
                self.app.remove_tokens_for_client()
                continue
            if resp.status_code in (429, 503) and attempt < self.max_attempts:
                self.throttled += 1
                self.sleep(min(_retry_after(resp, delay), self.max_backoff))
                delay *= 2
                continue
            raise _error(resp)
        raise GraphError(0, "retriesExhausted", f"{method} {url} failed {self.max_attempts} "
                                                "times", url)

    def _under_base(self, url: str) -> str:
        """The absolute URL of ``url``, which must lie under the configured base URL.

        Links come from the server's answers (``@odata.nextLink``, a saved
        ``deltaLink``); one that names another host, port or path would carry this
        client's bearer token there, so it is refused before any request is sent."""
        base = self.config.base_url.rstrip("/") + "/"
        if not url.startswith("https://"):
            return base + url.lstrip("/")
        want, got = urlsplit(base), urlsplit(url)
        if ((got.scheme, got.hostname, got.port) != (want.scheme, want.hostname, want.port)
                or not got.path.startswith(want.path)):
            raise GraphError(0, "foreignLink", f"a link to {got.scheme}://{got.netloc} "
                             f"is not under the Graph base URL {base}; no request was sent")
        return url

    # --- reads --------------------------------------------------------

    def delta_pages(self, mailbox: str, start: str, end: str, link: str | None = None
                    ) -> Iterator[DeltaPage]:
        """Pages of calendarView/delta from ``link`` (a saved next/delta link) or from the start."""
        url = link or (f"users/{path_segment(mailbox)}/calendarView/delta?"
                       f"startDateTime={start}&endDateTime={end}")
        while True:
            try:
                resp = self.request("GET", url, page_size=self.config.page_size)
            except GraphError as exc:
                if exc.status == 410 or exc.code in RESYNC_CODES:
                    raise DeltaExpired(exc.status, exc.code, exc.message, url) from exc
                raise
            body = resp.json()
            next_link = self._relative(_link(body, "nextlink"))
            delta_link = self._relative(_link(body, "deltalink"))
            yield DeltaPage(list(body.get("value", [])), next_link, delta_link)
            if next_link is None:
                return
            url = next_link

    def _relative(self, link: str | None) -> str | None:
        """A link under the base URL without it, so a saved checkpoint survives a move
        of the endpoint (another host or port); ``request`` puts the base back. A link
        elsewhere is refused here, before it could be saved as a checkpoint."""
        if link is None:
            return None
        absolute = self._under_base(link)
        base = self.config.base_url.rstrip("/") + "/"
        return absolute[len(base):] if absolute.startswith(base) else link

    def get_event(self, mailbox: str, event_id: str, *, property_id: str | None = None
                  ) -> dict[str, Any] | None:
        """One event; with ``property_id``, that extended property too (when set).

        Graph returns an extended property only when ``$expand``-ed by id, and
        delta cannot expand: this is how the sync sees its cross-reference marker.
        """
        try:
            body: dict[str, Any] = self.request(
                "GET", f"users/{path_segment(mailbox)}/events/{path_segment(event_id)}",
                params=_expand(property_id)).json()
        except GraphError as exc:
            if exc.status == 404:
                return None
            raise
        return body

    def find_by_property(self, mailbox: str, property_id: str, value: str
                         ) -> list[dict[str, Any]]:
        """Events whose single-value extended property equals ``value`` (outbox recovery)."""
        flt = (f"singleValueExtendedProperties/any(ep: ep/id eq {odata_string(property_id)} "
               f"and ep/value eq {odata_string(value)})")
        body = self.request("GET", f"users/{path_segment(mailbox)}/events",
                            params={"$filter": flt, **(_expand(property_id) or {})}).json()
        return list(body.get("value", []))

    def find_by_ical_uid(self, mailbox: str, ical_uid: str, *, property_id: str | None = None
                         ) -> list[dict[str, Any]]:
        """The mailbox's items with this iCalUId (``$filter=iCalUId eq ...``): a series
        master whose occurrences lie outside a view, found from a Salesforce marker."""
        flt = f"iCalUId eq {odata_string(ical_uid)}"
        body = self.request("GET", f"users/{path_segment(mailbox)}/events",
                            params={"$filter": flt, **(_expand(property_id) or {})}).json()
        return list(body.get("value", []))

    def calendar_view(self, mailbox: str, start: str, end: str, *,
                      property_id: str | None = None) -> list[dict[str, Any]]:
        """Every item of the window as it is now (``calendarView``, not delta), all pages.

        Singles, occurrences and exceptions; series masters are not in a view and
        are read with ``get_event``. Reconciliation reads this way.
        """
        return self._all_pages(f"users/{path_segment(mailbox)}/calendarView",
                               {"startDateTime": start, "endDateTime": end,
                                **(_expand(property_id) or {})})

    def instances(self, mailbox: str, master_id: str, start: str, end: str, *,
                  property_id: str | None = None) -> list[dict[str, Any]]:
        """A series' occurrences and exceptions in the window (``/instances``)."""
        return self._all_pages(
            f"users/{path_segment(mailbox)}/events/{path_segment(master_id)}/instances",
            {"startDateTime": start, "endDateTime": end, **(_expand(property_id) or {})})

    def _all_pages(self, url: str, params: dict[str, str]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        next_url: str | None = url
        first = True
        while next_url is not None:
            body = self.request("GET", next_url, params=params if first else None,
                                page_size=self.config.page_size).json()
            out.extend(body.get("value", []))
            next_url = self._relative(_link(body, "nextlink"))
            first = False
        return out

    # --- writes -------------------------------------------------------

    def delete_event(self, mailbox: str, event_id: str) -> bool:
        """True when deleted, False when it was already gone (a retried delete)."""
        try:
            self.request("DELETE", f"users/{path_segment(mailbox)}/events/{path_segment(event_id)}")
        except GraphError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def create_event(self, mailbox: str, body: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = self.request("POST", f"users/{path_segment(mailbox)}/events",
                                           json=body).json()
        return out

    def patch_event(self, mailbox: str, event_id: str, body: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = self.request(
            "PATCH", f"users/{path_segment(mailbox)}/events/{path_segment(event_id)}", json=body
        ).json()
        return out


def _expand(property_id: str | None) -> dict[str, str] | None:
    if property_id is None:
        return None
    return {"$expand":
            f"singleValueExtendedProperties($filter=id eq {odata_string(property_id)})"}


def _link(body: dict[str, Any], suffix: str) -> str | None:
    """``@odata.nextLink`` / ``@odata.deltaLink``, matched case-insensitively."""
    for key, value in body.items():
        if key.lower() == f"@odata.{suffix}" and isinstance(value, str):
            return value
    return None


def _retry_after(resp: requests.Response, default: float) -> float:
    try:
        return max(float(resp.headers.get("Retry-After", "")), 0.0)
    except ValueError:
        return default


def _error(resp: requests.Response) -> GraphError:
    try:
        err = resp.json().get("error", {})
        code, message = str(err.get("code", "")), str(err.get("message", ""))
    except ValueError:
        code, message = "", resp.text[:200]
    return GraphError(resp.status_code, code or str(resp.status_code), message, resp.url)
