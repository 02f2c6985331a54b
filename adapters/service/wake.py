"""Ask for one mailbox's pull now (a Graph change notification arrived for it).

For the web app (``syncledger serve``) and anything else outside the service::

    from adapters.service.wake import request_pull
    how = request_pull(store, "bob@contoso.com")   # "queued" | "already-queued" | "noted"

The request is always noted in the status read model, which ``syncledger run``'s
scheduler reads at every tick (about once a second), so a running ``run`` pulls
that mailbox next, whichever process asked. When the ledger is on PostgreSQL
and ``syncledger worker`` has set up its queue there, the mailbox's job is also
queued in procrastinate at once (its queueing lock keeps it from being queued
twice). Nothing is pulled in the caller's process, so a web request never waits
for Graph.
"""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime

import procrastinate

from adapters.service import worker
from adapters.sync import jobs
from ledger.store import Store, StoreURL
from projections import status

_ADDRESS = re.compile(r"^[^@\s/?#]+@[^@\s/?#]+\.[^@\s/?#]+$")
_apps: dict[str, procrastinate.App] = {}
_lock = threading.Lock()


def request_pull(store: Store, mailbox: str) -> str:
    """Note (and on a worker queue, queue) a pull of ``mailbox``; says which it did."""
    address = mailbox.strip().lower()
    if not _ADDRESS.match(address):
        raise ValueError(f"mailbox: not an e-mail address: {mailbox[:80]!r}")
    status.request(store, address, datetime.now(UTC).isoformat())
    if store.url.kind != "postgresql" or not _has_queue(store.url):
        return "noted"
    app = _app(store.url)
    queued = worker.defer(app, jobs.MAILBOX, address, priority=worker.MAILBOX_PRIORITY)
    return "queued" if queued else "already-queued"


def _has_queue(url: StoreURL) -> bool:
    import psycopg

    with psycopg.connect(worker.conninfo(url)) as conn:
        row = conn.execute(b"SELECT to_regclass('procrastinate_jobs') IS NOT NULL").fetchone()
        return bool(row and row[0])


def _app(url: StoreURL) -> procrastinate.App:
    with _lock:
        app = _apps.get(str(url))
        if app is None:
            app = _apps[str(url)] = worker.make_app(url).open()
        return app
