"""A far end that accepts a request and never answers does not hold a sync job forever.

simple-salesforce and msal send their requests without a timeout, and requests then
waits for ever: the job, and in the workers' queue its mailbox's lock, with it. Every
session the clients use has a default (``adapters.http_session.DEFAULT_TIMEOUT``);
these tests shorten it and make the emulators stall, through the production clients.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import requests

from adapters.graph.client import GraphAuthError, GraphClient
from adapters.graph.config import GraphConfig
from adapters.http_session import make_session
from adapters.salesforce.client import SalesforceClient
from adapters.salesforce.config import SalesforceConfig
from adapters.sandbox.graph_emulator import GraphEmulator
from adapters.sandbox.org import ALICE, ICAL_FIELD, people_records
from adapters.sandbox.salesforce_emulator import SalesforceEmulator

NOW = datetime(2026, 11, 20, 13, 0, tzinfo=UTC)
STALL = 6.0  # how long the emulator keeps quiet; the clients here wait 1 s
TIMEOUT = (2.0, 1.0)


def clock() -> datetime:
    return NOW


@pytest.fixture
def sf_em() -> Iterator[SalesforceEmulator]:
    with SalesforceEmulator([], people=people_records(), clock=clock) as em:
        yield em


@pytest.fixture
def graph_em() -> Iterator[GraphEmulator]:
    with GraphEmulator({ALICE: []}, clock=clock) as em:
        yield em


def test_a_salesforce_query_that_gets_no_answer_times_out(sf_em: SalesforceEmulator) -> None:
    config = SalesforceConfig(instance_url=sf_em.url, login_url=sf_em.url,
                              client_id=sf_em.client_id, client_secret=sf_em.client_secret,
                              ca_file=sf_em.ca_file)
    client = SalesforceClient(config, ICAL_FIELD, make_session(sf_em.ca_file, TIMEOUT),
                              sleep=lambda _: None, max_attempts=2)
    client.login()
    sf_em.slow(STALL, path="/query", times=2)  # both tries of the (idempotent) read
    began = time.monotonic()
    with pytest.raises(requests.Timeout):
        client.call(lambda sf: sf.query("SELECT Id FROM Event"))
    assert time.monotonic() - began < STALL  # two tries of 1 s, not the stall
    sf_em.faults.clear()
    assert client.call(lambda sf: sf.query("SELECT Id FROM Event"))["totalSize"] == 0


def test_a_graph_token_request_that_gets_no_answer_times_out(graph_em: GraphEmulator) -> None:
    config = GraphConfig(tenant=graph_em.tenant, client_id=graph_em.client_id,
                         client_secret=graph_em.client_secret, mailboxes=(ALICE,),
                         authority_host=graph_em.url, base_url=f"{graph_em.url}/v1.0",
                         ca_file=graph_em.ca_file)
    client = GraphClient(config, make_session(graph_em.ca_file, TIMEOUT),
                         sleep=lambda _: None)
    graph_em.slow(STALL, path="oauth2/v2.0/token", times=1)
    began = time.monotonic()
    with pytest.raises(GraphAuthError) as refused:
        client.token()  # msal's own request, sent with no timeout of its own
    # as a token endpoint that is down: a 503 the client's request loop retries
    assert refused.value.status == 503 and "timed out" in refused.value.message.lower()
    assert time.monotonic() - began < STALL
    assert client.token()  # the emulator answers again: so does the client
