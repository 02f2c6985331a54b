"""The HTTPS session both outside systems' clients use: one place that decides whom to trust."""

from __future__ import annotations

import requests


def make_session(ca_file: str | None) -> requests.Session:
    """A session trusting ``ca_file`` only (never $REQUESTS_CA_BUNDLE when one is given)."""
    session = requests.Session()
    if ca_file:
        session.verify = ca_file
        session.trust_env = False
    return session
