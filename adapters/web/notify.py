"""Graph change notifications for ``syncledger serve --notify-url URL``.

Two halves, one object (:class:`Notifications`, handed to the web app as
``WebConfig.notifications``):

* the endpoint ``POST /graph/notifications`` (no dashboard token: Graph
  cannot carry one). ``?validationToken=T`` is Graph's handshake: answered at
  once, 200 ``text/plain`` with T. Anything else is a notification body: each
  item's subscription must be one this service keeps and its ``clientState``
  must be that subscription's secret (compared by SHA-256 in constant time),
  else the item is refused and nothing is done for it. A change enqueues the
  mailbox's pull (``adapters.service.wake.request_pull``: ``syncledger run``'s
  scheduler or the workers pull it within a second or so); lifecycle events:
  ``reauthorizationRequired`` renews the subscription at once; ``missed`` and
  ``subscriptionRemoved`` enqueue a pull (the delta catches up what was
  missed) and re-subscribe: ``missed`` renews (and subscribes anew if the
  renewal finds it gone), ``subscriptionRemoved`` subscribes anew.
  Answers: 202 when at least one item was taken, 403 when every item was
  refused, 400 for a body that is not Graph's shape.
* the upkeep thread: subscribes each configured mailbox, renews a subscription
  ``renew_before`` its expiry (and at once after ``reauthorizationRequired``),
  subscribes again when Graph lost one, and keeps what it learns (ids, expiry,
  the secret's hash) in ``projections.subscriptions``, beside the status read
  model. A failing Graph call is retried at the next round (``retry`` seconds,
  doubling up to ``check_every``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from adapters.graph import subscriptions as graph_subs
from adapters.graph.client import GraphClient, GraphError
from adapters.service import metrics
from adapters.service.wake import request_pull
from ledger.store import Store
from projections import subscriptions

PATH = "/graph/notifications"
MAX_BODY = 1 << 20  # a notification POST is a few KB; more is not Graph
MAX_TOKEN = 1024


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def utcnow() -> datetime:
    return datetime.now(UTC)


class Notifications:
    """The notification endpoint and the subscription upkeep of one service."""

    def __init__(self, db: str, graph: GraphClient, mailboxes: tuple[str, ...] | list[str], *,
                 notify_url: str, lifetime: timedelta = timedelta(minutes=4320),
                 renew_before: timedelta = timedelta(hours=24), check_every: float = 60.0,
                 retry: float = 5.0, clock: Callable[[], datetime] = utcnow,
                 log: TextIO | None = None) -> None:
        if not notify_url.startswith("https://"):
            raise ValueError("--notify-url: Graph only calls HTTPS URLs (https://...)")
        if not timedelta(minutes=1) <= lifetime <= timedelta(minutes=graph_subs.MAX_MINUTES):
            raise ValueError(f"subscription lifetime: 1 to {graph_subs.MAX_MINUTES} minutes "
                             "(Graph's longest for Outlook events)")
        self.db = db
        self.graph = graph
        self.mailboxes = tuple(m.lower() for m in mailboxes)
        self.notify_url = notify_url
        self.lifetime, self.renew_before = lifetime, min(renew_before, lifetime / 2)
        self.check_every, self.retry = check_every, retry
        self.clock = clock
        self.log = log or sys.stderr
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.rounds = 0  # upkeep rounds finished (tests wait on it)

    # --- lifecycle (the web app's lifespan) -------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="graph-subscriptions",
                                            daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def wake(self) -> None:
        """Run an upkeep round now (a lifecycle event asked for one)."""
        self._wake.set()

    # --- the endpoint --------------------------------------------------------------------

    def router(self) -> APIRouter:
        router = APIRouter()

        @router.post(PATH, tags=["service"], status_code=202, response_class=Response)
        async def notifications(request: Request) -> Response:
            """Graph's change and lifecycle notifications (``?validationToken=``: Graph's
            handshake, answered with the token as text/plain). No dashboard token; each
            item must carry its subscription's clientState."""
            token = request.query_params.get(graph_subs.VALIDATION_PARAM)
            if token is not None:
                if not token or len(token) > MAX_TOKEN:
                    metrics.NOTIFICATIONS.labels(kind="validation", outcome="refused").inc()
                    return JSONResponse({"error": "validationToken: empty or too long"},
                                        status_code=400)
                metrics.NOTIFICATIONS.labels(kind="validation", outcome="ok").inc()
                return PlainTextResponse(token, status_code=200)
            body = await request.body()
            if len(body) > MAX_BODY:
                return JSONResponse({"error": "notification: body too large"}, status_code=413)
            try:
                notices = graph_subs.parse(orjson.loads(body) if body else None)
            except (orjson.JSONDecodeError, graph_subs.NotificationError) as exc:
                message = str(exc) if isinstance(exc, graph_subs.NotificationError) \
                    else "notification: the body is not JSON"
                return JSONResponse({"error": message}, status_code=400)
            store: Store = request.app.state.store
            taken = await run_in_threadpool(
                lambda: sum([self.take(store, n) for n in notices]))
            if notices and not taken:
                return JSONResponse({"error": "no notification matched a subscription and "
                                     "its clientState"}, status_code=403)
            return Response(status_code=202)

        return router

    def take(self, store: Store, notice: graph_subs.Notice) -> bool:
        """Act on one notification item; False when it is refused."""
        kind = notice.lifecycle or "change"
        row = subscriptions.by_id(store, notice.subscription_id)
        if row is None or not hmac.compare_digest(secret_hash(notice.secret),
                                                  str(row["secret_sha256"])):
            metrics.NOTIFICATIONS.labels(kind=kind, outcome="refused").inc()
            return False
        mailbox, at = str(row["mailbox"]), self.clock().isoformat()
        subscriptions.noticed(store, mailbox, notice.change or kind, at=at)
        if notice.lifecycle is not None:
            # reauthorizationRequired and missed: renew now (a renewal that finds the
            # subscription gone subscribes again); subscriptionRemoved: subscribe again.
            gone = notice.lifecycle == "subscriptionRemoved"
            subscriptions.mark(store, mailbox, "gone" if gone else "renew", at=at)
            self.wake()
        if notice.lifecycle != "reauthorizationRequired":
            request_pull(store, mailbox)  # a change, or a delta pull for what was missed
        metrics.NOTIFICATIONS.labels(kind=kind, outcome="queued").inc()
        return True

    # --- upkeep ----------------------------------------------------------------------------

    def _run(self) -> None:
        store = Store.open(self.db)
        delay = self.retry
        try:
            self._stop.wait(0.2)  # the server is listening once the lifespan has started
            while not self._stop.is_set():
                failed = self.upkeep(store)
                self.rounds += 1
                delay = min(delay * 2, self.check_every) if failed else self.retry
                self._wake.wait(delay if failed else self.check_every)
                self._wake.clear()
        finally:
            store.close()

    def upkeep(self, store: Store) -> int:
        """One round over every mailbox; returns how many Graph calls failed."""
        failed = 0
        kept = {str(r["mailbox"]): r for r in subscriptions.rows(store)}
        for mailbox in self.mailboxes:
            if self._stop.is_set():
                break
            try:
                self._keep(store, mailbox, kept.get(mailbox))
            except (GraphError, graph_subs.NotificationError, OSError) as exc:
                failed += 1
                self._note(f"subscription for {mailbox}: {exc}")
        metrics.SUBSCRIPTIONS.set(sum(1 for r in subscriptions.rows(store)
                                      if r["state"] != "gone"))
        return failed

    def _keep(self, store: Store, mailbox: str, row: dict[str, Any] | None) -> None:
        now = self.clock()
        if row is not None and row["endpoint"] != self.notify_url and row["state"] != "gone":
            graph_subs.delete(self.graph, str(row["subscription_id"]))  # moved: start over
            row = None
        if row is None or row["state"] == "gone":
            self._subscribe(store, mailbox, now)
            return
        expires = datetime.fromisoformat(str(row["expires_at"]))
        if row["state"] == "renew" or expires - now <= self.renew_before:
            answer = graph_subs.renew(self.graph, str(row["subscription_id"]),
                                      expires=now + self.lifetime)
            if answer is None:  # Graph lost it: a pull covers the gap, then subscribe again
                request_pull(store, mailbox)
                self._subscribe(store, mailbox, now)
            else:
                subscriptions.renewed(store, mailbox, expires_at=answer.expires_at,
                                      at=now.isoformat())

    def _subscribe(self, store: Store, mailbox: str, now: datetime) -> None:
        secret = secrets.token_urlsafe(32)
        answer = graph_subs.create(self.graph, mailbox, notification_url=self.notify_url,
                                   secret=secret, expires=now + self.lifetime)
        subscriptions.save(store, mailbox=mailbox, subscription_id=answer.subscription_id,
                           secret_sha256=secret_hash(secret), expires_at=answer.expires_at,
                           endpoint=self.notify_url, at=now.isoformat())

    def _note(self, text: str) -> None:
        self.log.write(f"syncledger serve: {text}\n")
        self.log.flush()
