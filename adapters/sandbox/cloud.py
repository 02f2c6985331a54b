"""Both emulators as one sandbox "cloud", seeded from a scenario, with its config.

``syncledger sync --sandbox`` and the tests use this: one throw-away CA for
both servers, Graph mailboxes and Salesforce records taken from the sandbox
org's feed (the last payload seen per item), and the ``SyncConfig`` that
points the production clients at them. The state can be saved to a JSON file
and loaded again, so consecutive ``sync --sandbox`` runs see the same cloud
(including what the previous run wrote and its delta tokens). With ``persist_to``
the state is also written after every request that changed it (each write, each
delta page), atomically (a temporary file in the same folder, fsync, rename), so
a sync killed at any moment leaves a cloud file that holds every write a client
was answered for.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from adapters.graph.config import GraphConfig
from adapters.salesforce.config import SalesforceConfig
from adapters.sandbox import org as sandbox
from adapters.sandbox.emulator import Clock, utcnow
from adapters.sandbox.graph_emulator import GraphEmulator, sandbox_mailboxes
from adapters.sandbox.salesforce_emulator import SalesforceEmulator, sandbox_records
from adapters.sandbox.tls import TestCA
from adapters.sync.config import SyncConfig


def write_atomically(path: Path, data: bytes) -> None:
    """``data`` as the file ``path`` (mode 0600): written to a temporary file in the same
    folder, synced, then renamed over ``path``, and the folder synced."""
    folder = path.parent if str(path.parent) else Path(".")
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        os.unlink(temp)
        raise
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def sandbox_offset(now: datetime) -> float:
    """Seconds to add to the real clock so the demo org's dates are "now".

    The demo calendars sit around 2026-11-20; a real clock far from that would
    put them outside the sync window. Zero when the real date is close enough.
    """
    start = sandbox.START.replace(tzinfo=UTC)
    if start - timedelta(days=1) <= now <= start + timedelta(days=30):
        return 0.0
    return (start + timedelta(hours=4) - now).total_seconds()


class SandboxCloud:
    """A Graph and a Salesforce emulator sharing a CA, plus the config to reach them."""

    def __init__(self, feed: list[dict[str, Any]], *, mailboxes: list[str],
                 org: dict[str, Any], clock: Clock = utcnow, page_size: int = 50,
                 sf_page_size: int = 2000, marker_field: str = "SyncLedger_ICalUId__c",
                 marker_property: str = "SyncLedgerSalesforceId",
                 people: list[dict[str, Any]] | None = None) -> None:
        self.ca = TestCA()
        self.mailboxes = [m.lower() for m in mailboxes]
        self.org = org
        self.page_size = page_size
        self.marker_field, self.marker_property = marker_field, marker_property
        self.graph = GraphEmulator(sandbox_mailboxes(feed, self.mailboxes), ca=self.ca,
                                   clock=clock)
        events, relations = sandbox_records(feed)
        if people is None:  # the sandbox org's people, and a User for every product user
            people = sandbox.people_records()
            known = {p["Id"] for p in people}
            people += [{"attributes": {"type": "User"}, "Id": uid, "Name": email,
                        "Email": email}
                       for email, uid in sorted(org.get("product_users", {}).items())
                       if uid not in known]
        self.salesforce = SalesforceEmulator(events, relations, people=people, ca=self.ca,
                                             clock=clock, marker_field=marker_field,
                                             page_size=sf_page_size)
        #: Explicit saves users made in the Outlook add-in, not yet handed to a sync.
        self.pending_saves: list[tuple[str, dict[str, Any]]] = [
            (line["mailbox"].lower(), line["payload"]) for line in feed
            if line["kind"] == "sidebar.save"]
        #: Saves handed to a sync still running: a state saved meanwhile keeps them pending
        #: (a killed sync gets them again; the ledger records a repeated save once).
        self._saves_in_flight: list[tuple[str, dict[str, Any]]] = []
        self._persist: tuple[Path, dict[str, Any]] | None = None
        self._save_lock = threading.Lock()

    @classmethod
    def demo(cls, *, clock: Clock = utcnow, **options: Any) -> SandboxCloud:
        """The bundled sandbox org (``adapters.sandbox.org``): its people, calendars, settings."""
        org = {"org_domains": [sandbox.ORG_DOMAIN], "product_users": dict(sandbox.USER_IDS),
               "sync_private_items": False}
        return cls(sandbox.build().feed, mailboxes=list(sandbox.USER_IDS), org=org,
                   clock=clock, **options)

    def start(self) -> Self:
        self.graph.start()
        self.salesforce.start()
        return self

    def stop(self) -> None:
        self.graph.stop()
        self.salesforce.stop()
        self.ca.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def config(self) -> SyncConfig:
        """What a real deployment reads from its config file, pointed at the emulators."""
        graph = GraphConfig(
            tenant=self.graph.tenant, client_id=self.graph.client_id,
            client_secret=self.graph.client_secret, mailboxes=tuple(self.mailboxes),
            authority_host=self.graph.url, base_url=f"{self.graph.url}/v1.0",
            page_size=self.page_size, ca_file=self.ca.ca_file)
        sf = SalesforceConfig(
            instance_url=self.salesforce.url, login_url=self.salesforce.url,
            client_id=self.salesforce.client_id, client_secret=self.salesforce.client_secret,
            ca_file=self.ca.ca_file)
        return SyncConfig(graph=graph, salesforce=sf, org=dict(self.org),
                          salesforce_marker_field=self.marker_field,
                          exchange_marker_property=self.marker_property)

    def writes(self) -> list[dict[str, Any]]:
        """Both write logs, Graph first: what the sync changed in the cloud."""
        return ([{"api": "graph", **w} for w in self.graph.writes]
                + [{"api": "salesforce", **w} for w in self.salesforce.writes])

    def clear_log(self) -> None:
        self.graph.clear_log()
        self.salesforce.clear_log()

    def snapshot(self) -> dict[str, Any]:
        """Both calendars as a test compares them (no tokens, no counters)."""
        return {"graph": {m: sorted(self.graph.calendar(m), key=lambda e: e["id"])
                          for m in self.mailboxes},
                "salesforce": {s: self.salesforce.all(s) for s in ("Event", "EventRelation")}}

    def save(self, path: Path, **extra: Any) -> None:
        """The whole state to ``path`` atomically: readers (and a resume after a kill)
        see the previous file or this one, never a part."""
        state = {"graph": self.graph.state(), "salesforce": self.salesforce.state(),
                 "pending_saves": self._saves_in_flight + self.pending_saves, **extra}
        write_atomically(path, json.dumps(state).encode())

    def persist_to(self, path: Path, **extra: Any) -> None:
        """From now on, save to ``path`` after every request that changed the cloud."""
        self._persist = (path, extra)
        self.graph.on_change = self.salesforce.on_change = self._changed

    def _changed(self) -> None:
        if self._persist is not None:
            path, extra = self._persist
            with self._save_lock:  # snapshots reach the file in the order they were taken
                self.save(path, **extra)

    def saves_recorded(self) -> None:
        """The sync that took the saves finished: they are no longer pending."""
        self._saves_in_flight = []

    def load(self, path: Path) -> dict[str, Any]:
        """Resume a saved cloud; returns the whole saved state (extras included)."""
        state: dict[str, Any] = json.loads(path.read_text())
        self.graph.load_state(state["graph"])
        self.salesforce.load_state(state["salesforce"])
        self.pending_saves = [(m, p) for m, p in state["pending_saves"]]
        return state

    def take_saves(self) -> list[tuple[str, dict[str, Any]]]:
        """The add-in's queue of explicit saves, emptied (a sync consumes them once)."""
        saves, self.pending_saves = self.pending_saves, []
        self._saves_in_flight += saves
        return saves

    def write_config(self, path: Path) -> dict[str, str]:
        """The config as a TOML file at ``path`` plus the secrets as environment variables,
        for processes of their own (``syncledger worker``) pointed at these emulators."""
        config = self.config()
        users = ", ".join(f'"{k}" = "{v}"' for k, v in sorted(config.org["product_users"].items()))
        path.write_text("\n".join([
            "[graph]", f'tenant = "{self.graph.tenant}"',
            f'client_id = "{self.graph.client_id}"',
            f"mailboxes = {json.dumps(self.mailboxes)}",
            f'authority_host = "{self.graph.url}"', f'base_url = "{self.graph.url}/v1.0"',
            f"page_size = {self.page_size}",
            "[salesforce]", f'instance_url = "{self.salesforce.url}"',
            f'login_url = "{self.salesforce.url}"',
            f'client_id = "{self.salesforce.client_id}"',
            "[org]", f"domains = {json.dumps(config.org['org_domains'])}",
            f"product_users = {{ {users} }}",
            f"sync_private_items = {str(bool(config.org['sync_private_items'])).lower()}",
            "[markers]", f'salesforce_field = "{self.marker_field}"',
            f'exchange_property = "{self.marker_property}"',
            "[tls]", f'ca_file = "{self.ca.ca_file}"', ""]))
        return {"SYNCLEDGER_CONFIG": str(path),
                "SYNCLEDGER_GRAPH_CLIENT_SECRET": self.graph.client_secret,
                "SYNCLEDGER_SF_CLIENT_SECRET": self.salesforce.client_secret}
