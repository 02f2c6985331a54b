"""The HTTPS session both outside systems' clients use: one place that decides whom to
trust, and how long to wait for an answer."""

from __future__ import annotations

from collections.abc import Mapping

import requests
from requests.adapters import HTTPAdapter

#: (connect, read) seconds for a request that sets no timeout of its own. simple-salesforce
#: and msal send theirs without one, and requests then waits forever: a far end that
#: accepts a connection and never answers held the job, its mailbox's lock in the
#: workers' queue, and so every later pull of that mailbox. The read timeout is the
#: longest silence between two bytes of an answer, not the whole answer's time.
DEFAULT_TIMEOUT: tuple[float, float] = (10.0, 60.0)

Timeout = float | tuple[float, float] | tuple[float, None] | None


class _DefaultTimeout(HTTPAdapter):
    """Gives every request without a timeout this session's default."""

    def __init__(self, timeout: Timeout) -> None:
        super().__init__()
        self.default_timeout = timeout

    def send(self, request: requests.PreparedRequest, stream: bool = False,
             timeout: Timeout = None, verify: bool | str = True,
             cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
             proxies: Mapping[str, str] | None = None) -> requests.Response:
        return super().send(request, stream=stream,
                            timeout=self.default_timeout if timeout is None else timeout,
                            verify=verify, cert=cert, proxies=proxies)


def make_session(ca_file: str | None, timeout: Timeout = DEFAULT_TIMEOUT) -> requests.Session:
    """A session trusting ``ca_file`` only (never $REQUESTS_CA_BUNDLE when one is given),
    whose requests time out after ``timeout`` unless they set their own."""
    session = requests.Session()
    if ca_file:
        session.verify = ca_file
        session.trust_env = False
    adapter = _DefaultTimeout(timeout)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session
