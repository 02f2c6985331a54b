"""A throw-away certificate authority for the local emulators.

The emulators speak HTTPS because the production clients insist on it (msal
refuses an ``http://`` authority). Each ``TestCA`` makes a fresh CA with
``trustme`` and a server certificate for 127.0.0.1 / localhost; clients trust
it through ``ca_file`` (``requests.Session.verify``), never the system store.
"""

from __future__ import annotations

import ssl
import tempfile
from pathlib import Path

import trustme


class TestCA:
    """One CA, its PEM on disk, and server contexts signed by it."""

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, directory: str | Path | None = None) -> None:
        self._ca = trustme.CA(organization_name="syncledger emulators")
        self._cert = self._ca.issue_cert("127.0.0.1", "localhost")
        self._tmp = None if directory else tempfile.TemporaryDirectory(prefix="syncledger-ca-")
        folder = Path(directory) if directory else Path(self._tmp.name)  # type: ignore[union-attr]
        folder.mkdir(parents=True, exist_ok=True)
        self.ca_file = str(folder / "emulator-ca.pem")
        self._ca.cert_pem.write_to_path(self.ca_file)

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._cert.configure_cert(ctx)
        return ctx

    def server_pem(self) -> str:
        """The server certificate and its key in one PEM file (uvicorn's ``ssl_certfile``),
        for an HTTPS endpoint the emulators call (Graph's change notifications)."""
        path = str(Path(self.ca_file).with_name("server.pem"))
        self._cert.private_key_and_cert_chain_pem.write_to_path(path)
        return path

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
