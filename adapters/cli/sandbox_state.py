"""The sandbox's emulated cloud, kept in a file beside its ledger: one way for every
command that runs against it (``sync --sandbox``, ``run --sandbox`` and the live
commands' ``--sandbox``).

They had each grown their own copy, and ``run --sandbox`` had drifted: it ignored
``$SYNCLEDGER_DB``, gave every PostgreSQL schema the same cloud file, saved the cloud
only at the end (a killed run lost the writes it had made, and the next run made them
again), and answered a damaged cloud file with a traceback.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from adapters.cli.common import EXIT_USAGE, CliError
from adapters.sandbox.cloud import SandboxCloud, sandbox_offset
from ledger.store import StoreURL

SANDBOX_DB = "syncledger-sandbox.db"


def cloud_state_beside(url: StoreURL) -> Path:
    """Where the sandbox keeps its emulated cloud: beside a SQLite ledger
    (``<db>.cloud.json``); for PostgreSQL, a file in the current folder named after the
    database and schema, so two schemas never share one cloud."""
    if url.kind == "sqlite" and url.path != ":memory:":
        return Path(url.path + ".cloud.json")
    if url.kind == "sqlite":
        return Path(SANDBOX_DB + ".cloud.json")
    return Path(f"syncledger-sandbox-{url.dbname}-{url.schema or 'public'}.cloud.json")


class SavedCloud:
    """The demo org's emulators, resumed from ``state_file`` (with the clock offset the
    cloud was made under) or started new; every answered write is saved to the file at
    once (atomically), so a killed command leaves the cloud as far as it got."""

    def __init__(self, state_file: Path) -> None:
        self.state_file = state_file
        self.offset = 0.0
        self.cloud = SandboxCloud.demo(clock=self.clock)
        self.resumed = state_file.exists()
        if self.resumed:
            try:
                self.offset = float(self.cloud.load(state_file).get("clock_offset", 0.0))
            # (OSError: also a folder where the file should be)
            except (ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
                raise CliError(f"{state_file} is not a saved sandbox cloud ({exc}); delete "
                               "it, or run 'syncledger sync --sandbox --fresh'",
                               EXIT_USAGE) from exc
        else:
            self.offset = sandbox_offset(datetime.now(UTC))
            self.cloud.save(state_file, clock_offset=self.offset)
        self.cloud.persist_to(state_file, clock_offset=self.offset)

    def clock(self) -> datetime:
        """The sandbox's now: the real clock moved to the demo org's dates."""
        return datetime.now(UTC) + timedelta(seconds=self.offset)

    def save(self) -> None:
        self.cloud.save(self.state_file, clock_offset=self.offset)
