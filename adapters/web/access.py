"""Who may open the dashboard: a bearer token from the environment, or loopback only.

With ``SYNCLEDGER_DASHBOARD_TOKEN`` set, every page and API route asks for it
(``Authorization: Bearer TOKEN``, or the cookie the login form sets); without
it the service only binds to a loopback address and only answers loopback
clients. The health check and Graph's notification endpoints need no token:
probes and Graph cannot carry one (notifications are checked by their
``clientState`` instead). Every answer carries headers that keep a page from
running anything but its own script.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

TOKEN_ENV = "SYNCLEDGER_DASHBOARD_TOKEN"
COOKIE = "syncledger_token"
#: Reachable without the token (each has its own check or shows nothing private).
OPEN_PATHS = ("/healthz", "/login", "/static/", "/graph/")
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
                               "img-src 'self' data:; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


class AccessError(ValueError):
    """The service would be reachable by anyone: refuse to start."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_binding(host: str, token: str | None) -> None:
    """A non-loopback address needs a token: say so before anything listens."""
    if token is not None and len(token) < 16:
        raise AccessError(f"{TOKEN_ENV} is too short (at least 16 characters)")
    if token is None and not is_loopback(host):
        raise AccessError(f"--host {host} is not a loopback address: set {TOKEN_ENV} "
                          "so the dashboard asks for a token, or bind to 127.0.0.1")


def same_token(given: str, token: str) -> bool:
    """Compared in constant time: how long a wrong guess takes says nothing."""
    return hmac.compare_digest(given.encode(), token.encode())


def token_matches(request: Request, token: str) -> bool:
    given = request.headers.get("authorization", "")
    if given.lower().startswith("bearer "):
        given = given[7:].strip()
    else:
        given = request.cookies.get(COOKIE, "")
    return same_token(given, token)


Next = Callable[[Request], Awaitable[Response]]


def guard(token: str | None) -> Callable[[Request, Next], Awaitable[Response]]:
    """The middleware: token or loopback, then the security headers on every answer."""

    async def middleware(request: Request, call_next: Next) -> Response:
        path = request.url.path
        open_path = path.startswith(OPEN_PATHS)
        client = request.client.host if request.client else ""
        refused: Response | None = None
        if token is None and not is_loopback(client):
            refused = JSONResponse({"error": "the dashboard answers loopback clients only"},
                                   status_code=403)
        elif token is not None and not open_path and not token_matches(request, token):
            if path.startswith(("/api", "/metrics", "/openapi.json")):
                refused = JSONResponse({"error": "a dashboard token is required "
                                        "(Authorization: Bearer TOKEN)"}, status_code=401,
                                       headers={"WWW-Authenticate": "Bearer"})
            else:
                target = path + (f"?{request.url.query}" if request.url.query else "")
                refused = RedirectResponse(f"/login?next={quote(target, safe='')}",
                                           status_code=303)
        response = refused or await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    return middleware
