"""A ``syncledger sync --sandbox`` killed with SIGKILL while it writes, then resumed.

The sandbox's emulated cloud is saved after every write it answers (atomically),
so what the killed run wrote is in the cloud file the resumed run starts from:
the resumed sync sees its own writes and converges on the cloud a clean run
makes, with no Event or Outlook item created twice.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from adapters.sandbox.cloud import SandboxCloud
from tests.fingerprints import cloud, compare

SYNCLEDGER = [sys.executable, "-m", "adapters.cli.main"]
ROOT = Path(__file__).resolve().parents[1]


def _sync(db: str, state: Path, *more: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SYNCLEDGER, "sync", "--sandbox", "--db", db, "--cloud-state",
                           str(state), "--json", *more], capture_output=True, text=True,
                          cwd=ROOT, timeout=120, check=False)


def _killed_while_writing(db: str, state: Path, delay: float) -> bool:
    """Start a sync and SIGKILL it ``delay`` seconds into its writes (after the pulls);
    False when it finished first."""
    proc = subprocess.Popen([*SYNCLEDGER, "sync", "--sandbox", "--db", db, "--cloud-state",
                             str(state)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT)
    assert proc.stderr is not None
    for line in proc.stderr:
        if "plan round 1" in line:  # pulls done: the writes begin
            break
    time.sleep(delay)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return proc.returncode == -signal.SIGKILL


def _meetings(saved: dict[str, Any]) -> Counter[str]:
    """Each mailbox's Outlook items and the Salesforce Events, by what they show."""
    out: Counter[str] = Counter()
    for mailbox, items in saved["graph"]["events"].items():
        out.update(f"{mailbox}|{item.get('subject')}|{json.dumps(item.get('start'))}|"
                   f"{item.get('type')}" for item in items.values())
    out.update(f"Event|{r.get('Subject')}|{r.get('StartDateTime')}|{r.get('IsRecurrence')}"
               for r in saved["salesforce"]["records"]["Event"].values())
    return out


def _duplicates(clean: dict[str, Any], saved: dict[str, Any]) -> list[str]:
    """Meetings the cloud holds more often than a clean run's cloud does."""
    return sorted((_meetings(saved) - _meetings(clean)).elements())


def test_a_sync_killed_mid_write_resumes_without_duplicates(store_url: str,
                                                            tmp_path: Path) -> None:
    sqlite = store_url.startswith("sqlite")
    clean_db = f"sqlite:///{tmp_path / 'clean.db'}" if sqlite else store_url
    clean_state, state = tmp_path / "clean.cloud.json", tmp_path / "killed.cloud.json"
    assert _sync(clean_db, clean_state).returncode == 0
    clean = json.loads(clean_state.read_text())

    killed_db = f"sqlite:///{tmp_path / 'killed.db'}" if sqlite else \
        store_url.replace("?schema=", "?schema=k")
    # A kill as the writes begin, then one during the resumed run's writes.
    assert _killed_while_writing(killed_db, state, 0.05), "the sync ended before the kill"
    _killed_while_writing(killed_db, state, 0.02)
    partial = json.loads(state.read_text())  # the file is whole: written atomically
    assert _duplicates(clean, partial) == []
    resumed = _sync(killed_db, state)
    assert resumed.returncode == 0, resumed.stderr
    after = json.loads(state.read_text())
    assert _duplicates(clean, after) == []
    assert not compare(cloud(clean), cloud(after)), "the resumed cloud differs from a clean one"
    again = _sync(killed_db, state)  # converged: nothing left to write
    assert again.returncode == 0
    assert json.loads(again.stdout)["emulator_writes"] == []
    if not sqlite:
        from tests.conftest import drop_schema
        drop_schema(killed_db.rsplit("schema=", 1)[1])


def test_the_saved_cloud_loads_back_as_it_was(tmp_path: Path) -> None:
    """Every emulator state field survives save and load (people records included)."""
    state = tmp_path / "cloud.json"
    assert _sync(f"sqlite:///{tmp_path / 'l.db'}", state).returncode == 0
    saved = json.loads(state.read_text())
    again = SandboxCloud.demo()
    again.load(state)
    again.save(tmp_path / "copy.json", clock_offset=saved["clock_offset"])
    assert json.loads((tmp_path / "copy.json").read_text()) == saved
    assert {"Contact", "Lead", "User"} <= set(saved["salesforce"]["records"])
