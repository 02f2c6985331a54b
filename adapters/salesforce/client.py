"""Salesforce over simple-salesforce: OAuth token, polling by SystemModstamp, writes.

simple-salesforce builds its login URLs as ``https://{domain}.salesforce.com``,
so we fetch the OAuth token ourselves from the configured login URL (My
Domain in production, the emulator in tests) and hand simple-salesforce the
instance URL and session id, with our ``requests.Session``. A 401 means the
session expired: fetch a new token, once. ``REQUEST_LIMIT_EXCEEDED`` means
the org's API allowance is spent: back off (capped) and, if it persists,
stop and report it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, TypeVar, cast

import requests
from simple_salesforce.api import Salesforce, SFType
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from adapters.http_session import make_session
from adapters.salesforce.config import SalesforceConfig
from adapters.salesforce.soql import soql_id_list, soql_string
from adapters.salesforce.wire import PERSON_FIELDS, PERSON_PREFIXES, soql_email_list
from adapters.wire import path_segment

T = TypeVar("T")

EVENT_FIELDS = (
    "Id, Subject, StartDateTime, EndDateTime, ActivityDate, DurationInMinutes, IsAllDayEvent, "
    "IsPrivate, ShowAs, Description, Location, WhatId, WhoId, OwnerId, IsChild, IsGroupEvent, "
    "IsRecurrence, RecurrenceActivityId, RecurrenceType, RecurrenceInterval, "
    "RecurrenceDayOfWeekMask, RecurrenceDayOfMonth, RecurrenceInstance, "
    "RecurrenceMonthOfYear, RecurrenceStartDateTime, RecurrenceEndDateOnly, "
    "RecurrenceTimeZoneSidKey, IsRecurrence2, Recurrence2PatternText, SystemModstamp, "
    "LastModifiedDate, IsDeleted")
RELATION_FIELDS = "Id, EventId, RelationId, IsInvitee, IsParent, IsWhat, Status"


class SalesforceAuthError(RuntimeError):
    """The OAuth token endpoint refused us; the message says why."""


class RequestLimitExceeded(RuntimeError):
    """The org's API request allowance is spent; the sync stops and says so."""


class SalesforceClient:
    def __init__(self, config: SalesforceConfig, marker_field: str,
                 session: requests.Session | None = None, *,
                 sleep: Callable[[float], None] = time.sleep, max_backoff: float = 30.0,
                 max_attempts: int = 4) -> None:
        self.config = config
        self.marker_field = marker_field
        self.session = session or make_session(config.ca_file)
        self.sleep = sleep
        self.max_backoff = max_backoff
        self.max_attempts = max_attempts
        self.logins = 0
        self.limited = 0
        self._sf: Salesforce | None = None

    # --- auth ---------------------------------------------------------

    def login(self) -> Salesforce:
        """OAuth 2.0: password flow when a username is configured, else client credentials."""
        form = {"client_id": self.config.client_id, "client_secret": self.config.client_secret}
        if self.config.username:
            form |= {"grant_type": "password", "username": self.config.username,
                     "password": self.config.password or ""}
        else:
            form["grant_type"] = "client_credentials"
        url = self.config.login_url.rstrip("/") + "/services/oauth2/token"
        resp = self.session.post(url, data=form, timeout=60)
        if resp.status_code != 200:
            try:
                detail = resp.json()
                reason = f"{detail.get('error')}: {detail.get('error_description')}"
            except ValueError:
                reason = resp.text[:200]
            raise SalesforceAuthError(f"Salesforce login at {url} failed "
                                      f"({resp.status_code}) {reason}")
        token = resp.json()
        self.logins += 1
        self._sf = Salesforce(instance_url=token.get("instance_url") or self.config.instance_url,
                              session_id=token["access_token"], session=self.session,
                              version=self.config.api_version)
        return self._sf

    def call(self, fn: Callable[[Salesforce], T], *, idempotent: bool = True) -> T:
        """Run one API call with re-login on 401 and capped back-off on request limits.

        Reads, updates and deletes are also retried after a dropped connection or a
        503; a create is not (it may have happened): the outbox recovers it by marker.
        """
        relogged = False
        delay = 1.0
        for attempt in range(1, self.max_attempts + 1):
            sf = self._sf or self.login()
            try:
                return fn(sf)
            except SalesforceExpiredSession:
                if relogged:
                    raise
                relogged = True
                self._sf = None
            except (requests.ConnectionError, requests.Timeout,
                    requests.exceptions.ChunkedEncodingError, SalesforceGeneralError) as exc:
                transient = not isinstance(exc, SalesforceGeneralError) or exc.status in (
                    500, 502, 503, 504)
                if not (idempotent and transient) or attempt == self.max_attempts:
                    raise
                self.sleep(min(delay, self.max_backoff))
                delay *= 2
            except SalesforceRefusedRequest as exc:
                if "REQUEST_LIMIT_EXCEEDED" not in str(exc.content):
                    raise
                self.limited += 1
                if attempt == self.max_attempts:
                    raise RequestLimitExceeded(
                        "Salesforce says the org's API request limit is exceeded "
                        f"(tried {attempt} times); sync stopped, try again later") from exc
                self.sleep(min(delay, self.max_backoff))
                delay *= 2
        raise RuntimeError("unreachable")

    # --- reads --------------------------------------------------------

    def changed_since(self, watermark: str | None) -> Iterator[list[dict[str, Any]]]:
        """Pages of Events with SystemModstamp at or after the watermark, oldest first."""
        where = f" WHERE SystemModstamp >= {_soql_datetime(watermark)}" if watermark else ""
        soql = (f"SELECT {EVENT_FIELDS}, {self.marker_field} FROM Event{where} "
                "ORDER BY SystemModstamp, Id")
        page = self.call(lambda sf: sf.query(soql))
        while True:
            yield [dict(r) for r in page.get("records", [])]
            if page.get("done", True) or not page.get("nextRecordsUrl"):
                return
            url = page["nextRecordsUrl"]
            page = self.call(_query_more(url))

    def relations(self, event_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {i: [] for i in event_ids}
        for i in range(0, len(event_ids), 200):
            ids = soql_id_list(event_ids[i:i + 200])
            soql = f"SELECT {RELATION_FIELDS} FROM EventRelation WHERE EventId IN {ids}"
            for rec in self.call(_query_all(soql)).get("records", []):
                out.setdefault(rec["EventId"], []).append(dict(rec))
        return out

    def people_by_email(self, emails: list[str]) -> list[dict[str, Any]]:
        """Users, Contacts and Leads with these emails (``Email IN (...)``, 100 a query)."""
        out: list[dict[str, Any]] = []
        for sobject in ("User", "Contact", "Lead"):
            for i in range(0, len(emails), 100):
                soql = (f"SELECT {PERSON_FIELDS} FROM {sobject} "
                        f"WHERE Email IN {soql_email_list(emails[i:i + 100])} ORDER BY Id")
                out += [dict(r) for r in self.call(_query_all(soql)).get("records", [])]
        return out

    def people_by_id(self, ids: list[str]) -> list[dict[str, Any]]:
        """The Users, Contacts and Leads these EventRelation RelationIds name."""
        out: list[dict[str, Any]] = []
        for prefix, sobject in PERSON_PREFIXES.items():
            mine = sorted({i for i in ids if i.startswith(prefix)})
            for i in range(0, len(mine), 200):
                soql = (f"SELECT {PERSON_FIELDS} FROM {sobject} "
                        f"WHERE Id IN {soql_id_list(mine[i:i + 200])}")
                out += [dict(r) for r in self.call(_query_all(soql)).get("records", [])]
        return out

    def deleted(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        body = self.call(lambda sf: _sobject(sf, "Event").deleted(start, end))
        return [dict(r) for r in body.get("deletedRecords", [])]

    def get_event(self, event_id: str) -> dict[str, Any] | None:
        ids = soql_id_list([event_id])
        soql = f"SELECT {EVENT_FIELDS}, {self.marker_field} FROM Event WHERE Id IN {ids}"
        records = self.call(lambda sf: sf.query(soql)).get("records", [])
        return dict(records[0]) if records else None

    def events_of(self, owner_id: str, start: str, end: str) -> list[dict[str, Any]]:
        """One owner's Events overlapping the window, as they are now (reconciliation)."""
        owner = soql_id_list([owner_id])[1:-1]
        soql = (f"SELECT {EVENT_FIELDS}, {self.marker_field} FROM Event WHERE OwnerId = {owner} "
                f"AND StartDateTime < {_soql_datetime(end)} AND EndDateTime > "
                f"{_soql_datetime(start)} ORDER BY StartDateTime, Id")
        return [dict(r) for r in self.call(lambda sf: sf.query_all(soql)).get("records", [])]

    def find_by_marker(self, ical_uid: str) -> list[dict[str, Any]]:
        """Events stamped with this iCalUId (outbox recovery after a crash)."""
        soql = (f"SELECT {EVENT_FIELDS}, {self.marker_field} FROM Event "
                f"WHERE {self.marker_field} = {soql_string(ical_uid)}")
        return [dict(r) for r in self.call(lambda sf: sf.query_all(soql)).get("records", [])]

    # --- writes -------------------------------------------------------

    def create(self, sobject: str, fields: dict[str, Any]) -> str:
        result = self.call(lambda sf: _sobject(sf, sobject).create(fields), idempotent=False)
        return str(result["id"])

    def update(self, sobject: str, record_id: str, fields: dict[str, Any]) -> None:
        segment = path_segment(record_id)
        self.call(lambda sf: _sobject(sf, sobject).update(segment, fields))

    def delete(self, sobject: str, record_id: str) -> bool:
        """True when deleted, False when it was already gone (a retried delete)."""
        try:
            segment = path_segment(record_id)
            self.call(lambda sf: _sobject(sf, sobject).delete(segment))
        except SalesforceResourceNotFound:
            return False
        return True


def _query_more(url: str) -> Callable[[Salesforce], dict[str, Any]]:
    return lambda sf: cast(dict[str, Any], sf.query_more(url, identifier_is_url=True))


def _query_all(soql: str) -> Callable[[Salesforce], dict[str, Any]]:
    return lambda sf: sf.query_all(soql)


def _sobject(sf: Salesforce, name: str) -> SFType:
    """``sf.Event`` without the dynamic attribute (typed, and explicit about the name)."""
    return cast(SFType, getattr(sf, name))


def _soql_datetime(value: str) -> str:
    """SOQL dateTime literal (``2024-01-01T00:00:00Z``) from a SystemModstamp."""
    text = value.replace("+0000", "Z")
    when = datetime.fromisoformat(text)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")
