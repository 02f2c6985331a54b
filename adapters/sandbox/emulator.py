"""Shared plumbing of the local HTTPS emulators: server, faults, tokens, write log.

An emulator is a stateful fake of one cloud API on 127.0.0.1 (ephemeral
port, TLS from a throw-away CA) so the production clients (msal,
simple-salesforce, requests) run unchanged in tests and in
``syncledger sync --sandbox``. Subclasses map a ``Request`` to a
``Response`` under one lock; this module serves them, applies the faults a
test programmed (errors, delays, a connection cut mid-body), checks bearer
tokens, and keeps the write log a test asserts on.
"""

from __future__ import annotations

import copy
import json
import re
import secrets
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

from adapters.sandbox.tls import TestCA

Clock = Callable[[], datetime]
T = TypeVar("T")
JSON_TYPE = "application/json; charset=utf-8"


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Request:
    method: str
    target: str  # path and query as sent
    path: str  # decoded path, no query
    query: dict[str, str]
    headers: Message
    body: bytes

    def segments(self) -> list[str]:
        """The path's segments, each decoded on its own (as a real router does): an
        escaped ``%2F`` stays inside its segment instead of splitting it."""
        return [unquote(p) for p in urlsplit(self.target).path.split("/") if p]

    def param(self, name: str) -> str | None:
        """A query parameter, its name matched case-insensitively (as Graph does)."""
        for key, value in self.query.items():
            if key.lower() == name.lower():
                return value
        return None

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode(), keep_blank_values=True))

    def bearer(self) -> str | None:
        auth = self.headers.get("Authorization") or ""
        return auth[7:].strip() if auth.lower().startswith("bearer ") else None


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    drop_after: int | None = None  # send only this many body bytes, then cut the connection
    delay: float = 0.0


def json_response(status: int, value: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(status, json.dumps(value).encode(),
                    {"Content-Type": JSON_TYPE, **(headers or {})})


@dataclass
class Fault:
    """One programmed misbehaviour, used ``times`` times on matching requests.

    With ``status`` the request is answered with that error and never reaches
    the emulated API (nothing changes); without it the real answer is sent,
    late (``delay``) or cut after ``drop_after`` body bytes (the change, if
    any, has happened). ``action`` runs first: it can change the emulator's
    state at the exact moment of a request (a token expiring mid-sync).
    """

    status: int | None = None
    code: str = ""
    message: str = ""
    method: str | None = None
    path: str | None = None  # regular expression searched in the request target
    times: int = 1
    delay: float = 0.0
    drop_after: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    action: Callable[[], None] | None = None  # run when it fires, e.g. expire the tokens
    used: int = 0

    def matches(self, req: Request) -> bool:
        return (self.times > self.used
                and (self.method is None or self.method.upper() == req.method)
                and (self.path is None or re.search(self.path, unquote(req.target)) is not None))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    emulator: Emulator


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    timeout = 30
    wbufsize = 1 << 16  # headers and body leave in one write: no Nagle / delayed-ACK stall

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        req = Request(self.command, self.path, unquote(parts.path),
                      dict(parse_qsl(parts.query, keep_blank_values=True)), self.headers, body)
        emulator = self.server.emulator
        key = emulator.concurrency_key(req)
        emulator.calls_began(key)
        try:
            resp = emulator.dispatch(req)
            delay = max(resp.delay, emulator.latency)
            if delay:
                time.sleep(delay)
            self.send_response(resp.status)
            for name, value in resp.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(resp.body)))
            self.end_headers()
            if resp.drop_after is None:
                self.wfile.write(resp.body)
                return
            self.wfile.write(resp.body[:resp.drop_after])
            self.wfile.flush()
            self.close_connection = True
        finally:
            emulator.calls_ended(key)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the emulator keeps its own request log."""


class Emulator:
    """Serve ``handle`` over HTTPS with faults, bearer tokens and a write log."""

    name = "emulator"

    def __init__(self, *, ca: TestCA | None = None, clock: Clock = utcnow) -> None:
        self.ca = ca
        self.clock = clock
        self.lock = threading.RLock()
        self.faults: list[Fault] = []
        self.writes: list[dict[str, Any]] = []
        self.requests: list[tuple[str, str, int]] = []  # method, target, status
        self.tokens: set[str] = set()
        #: Seconds added to every answer (a real API's round trip, for the service bench).
        self.latency = 0.0
        #: Requests in flight per concurrency key (Graph: the mailbox), the most ever seen
        #: at once per key, and how many requests began while another of their key was
        #: in flight: two workers pulling one mailbox at once show here.
        self.in_flight: dict[str, int] = {}
        self.max_in_flight: dict[str, int] = {}
        self.overlapping = 0
        self._flight_lock = threading.Lock()
        #: Called after every answered request that changed the emulated cloud
        #: (``changes_state``), before the answer is sent (outside the lock, so two
        #: emulators may save one state together): the sandbox persists its state
        #: there, so a client never sees a write its saved cloud lacks.
        self.on_change: Callable[[], None] | None = None
        self._own_ca = False
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ----------------------------------------------------------

    def start(self) -> Self:
        if self.ca is None:
            self.ca, self._own_ca = TestCA(), True
        server = _Server(("127.0.0.1", 0), _Handler)
        server.emulator = self
        context: ssl.SSLContext = self.ca.server_context()
        server.socket = context.wrap_socket(server.socket, server_side=True)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name=self.name,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._own_ca and self.ca is not None:
            self.ca.close()
            self.ca, self._own_ca = None, False

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError(f"{self.name} emulator is not running")
        return f"https://127.0.0.1:{self._server.server_address[1]}"

    @property
    def ca_file(self) -> str:
        if self.ca is None:
            raise RuntimeError(f"{self.name} emulator has no CA before start()")
        return self.ca.ca_file

    # --- faults -------------------------------------------------------------

    def inject(self, fault: Fault) -> Fault:
        """Program a fault; the returned object's ``used`` counts how often it fired."""
        with self.lock:
            self.faults.append(fault)
        return fault

    def fail(self, status: int, code: str = "", message: str = "", *, path: str | None = None,
             method: str | None = None, times: int = 1, retry_after: float | None = None
             ) -> Fault:
        headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
        return self.inject(Fault(status, code, message, method, path, times, headers=headers))

    def at(self, action: Callable[[], None], *, path: str | None = None,
           method: str | None = None, times: int = 1) -> Fault:
        """Run ``action`` when a matching request arrives, then answer it normally."""
        return self.inject(Fault(method=method, path=path, times=times, action=action))

    def slow(self, delay: float, *, path: str | None = None, method: str | None = None,
             times: int = 1) -> Fault:
        return self.inject(Fault(method=method, path=path, times=times, delay=delay))

    def drop(self, after_bytes: int = 64, *, path: str | None = None,
             method: str | None = None, times: int = 1) -> Fault:
        """Answer for real but close the socket after ``after_bytes`` of the body."""
        return self.inject(Fault(method=method, path=path, times=times, drop_after=after_bytes))

    def _take_fault(self, req: Request) -> Fault | None:
        for fault in self.faults:
            if fault.matches(req):
                fault.used += 1
                return fault
        return None

    # --- tokens -------------------------------------------------------------

    def issue_token(self) -> str:
        token = f"{self.name}-{secrets.token_urlsafe(24)}"
        self.tokens.add(token)
        return token

    def expire_tokens(self) -> None:
        """Every access token issued so far stops being accepted (early expiry)."""
        with self.lock:
            self.tokens.clear()

    def authorized(self, req: Request) -> bool:
        return req.bearer() in self.tokens

    # --- serving ------------------------------------------------------------

    def dispatch(self, req: Request) -> Response:
        changed = False
        with self.lock:
            fault = self._take_fault(req)
            if fault is not None and fault.action is not None:
                fault.action()
            if fault is not None and fault.status is not None:
                resp = self.error(fault.status, fault.code or str(fault.status),
                                  fault.message or "injected fault")
                resp.headers.update(fault.headers)
            else:
                try:
                    resp = self.handle(req)
                except Exception as exc:  # a bug in the emulator shows as a 500, not a hang
                    resp = self.error(500, "EmulatorError", f"{type(exc).__name__}: {exc}")
                if resp.status < 400 and self.is_write(req):
                    self.writes.append({"method": req.method, "path": unquote(req.target),
                                        "body": req.json() if req.body else None})
                changed = resp.status < 400 and self.changes_state(req)
            self.decorate(resp)
            self.requests.append((req.method, req.target, resp.status))
        if changed and self.on_change is not None:
            self.on_change()
        if fault is not None:
            resp.delay = max(resp.delay, fault.delay)
            if fault.drop_after is not None:
                resp.drop_after = fault.drop_after
        return resp

    def handle(self, req: Request) -> Response:
        raise NotImplementedError

    def concurrency_key(self, req: Request) -> str | None:
        """What must never be called twice at once (None: no such rule)."""
        return None

    def calls_began(self, key: str | None) -> None:
        if key is None:
            return
        with self._flight_lock:
            now = self.in_flight.get(key, 0) + 1
            self.in_flight[key] = now
            if now > 1:
                self.overlapping += 1
            self.max_in_flight[key] = max(self.max_in_flight.get(key, 0), now)

    def calls_ended(self, key: str | None) -> None:
        if key is None:
            return
        with self._flight_lock:
            self.in_flight[key] -= 1

    def error(self, status: int, code: str, message: str) -> Response:
        raise NotImplementedError

    def is_write(self, req: Request) -> bool:
        return req.method in ("POST", "PATCH", "PUT", "DELETE")

    def changes_state(self, req: Request) -> bool:
        """Whether answering ``req`` changed what ``state()`` returns (writes; Graph adds
        the delta reads that hand out tokens)."""
        return self.is_write(req)

    def decorate(self, resp: Response) -> None:
        """Headers every response carries (Salesforce: its API usage)."""

    def clear_log(self) -> None:
        with self.lock:
            self.writes.clear()
            self.requests.clear()

    def new_token_id(self) -> str:
        return secrets.token_urlsafe(18)


def deep(value: T) -> T:
    """A private copy: callers never share mutable state with the emulator."""
    return copy.deepcopy(value)


WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
