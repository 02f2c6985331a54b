"""Concurrent ``syncledger ingest`` processes on one ledger, against one process.

Shared by ``tests/test_writers.py`` (asserts) and ``scripts/writers.py`` (prints
figures). A feed (``scripts/benchfeed.py``) is split into N files two ways:

- ``organizer``: each mailbox's Outlook lines (and sidebar saves) with the
  Salesforce Events that mailbox's user owns (and their deletions), mailboxes
  spread over the N files: one meeting's attendee copies land with different
  writers, which then open, link and index the same meeting at the same time;
- ``whole``: every writer ingests the whole feed (a redelivery racing itself:
  two processes started on one file), so every meeting is raced by all N;
- ``meeting``: each meeting's lines (the meeting one process put them in) in one
  file, in the feed's order, meetings spread over the N files: the writers race
  only on what meetings share (the index, settings, checkpoints), and the ledger
  must be one process's exactly, decisions included.

The N writers are real ``syncledger ingest`` subprocesses started together on
one ledger; then ``syncledger project`` runs and the ledger's fingerprint
(``tests/fingerprints.py``) is compared with one process ingesting the whole
feed. Org settings (the feed's first line) open every file.
"""

from __future__ import annotations

import hashlib
import importlib.util
import subprocess
import sys
import time
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import orjson

from adapters.feed.envelopes import parse_line
from adapters.feed.ingest import ingest_files
from adapters.sandbox.org import _sf_id
from ledger.intake import route_keys
from ledger.observations import Observation
from ledger.store import Store, StoreURL
from projections import runner
from tests import fingerprints
from tests.fingerprints import Fingerprint

SYNCLEDGER = [sys.executable, "-m", "adapters.cli.main"]
ROOT = Path(__file__).resolve().parents[1]
SPLITS = ("organizer", "whole", "meeting")


def _owner_mailboxes() -> dict[str, str]:
    """Salesforce User Id -> mailbox, as ``scripts/benchfeed.py`` numbers its users."""
    return {_sf_id("005", i + 1): f"user{i:05d}@contoso.com" for i in range(2000)}


def benchfeed_lines(path: Path, observations: int, seed: int) -> list[bytes]:
    """A synthetic org's feed (``scripts/benchfeed.py``, loaded from its file: scripts are
    not a package) written to ``path``, less ``distinct_meetings``; ``path`` is rewritten
    with what is kept."""
    spec = importlib.util.spec_from_file_location("benchfeed", ROOT / "scripts" / "benchfeed.py")
    assert spec is not None and spec.loader is not None
    module = sys.modules.setdefault("benchfeed", importlib.util.module_from_spec(spec))
    spec.loader.exec_module(module)
    module.write_feed(path, observations, seed)
    lines = distinct_meetings(path.read_bytes().splitlines(keepends=True))
    path.write_bytes(b"".join(lines))
    return lines


def distinct_meetings(lines: list[bytes]) -> list[bytes]:
    """The feed without the Outlook copies that give a second Salesforce-born meeting an
    iCalUId another one's copy has: ``scripts/benchfeed.py`` names such a copy after its
    story counter read after a ``yield``, so two stories may share one name at times.
    Two meetings never share an iCalUId in a real org; in the feed, whichever copy the
    ledger sees first claims it, so the split would differ from the whole feed by order
    alone."""
    marker_of: dict[str, str] = {}
    out = []
    for raw in lines:
        line = orjson.loads(raw)
        payload = line.get("payload") or {}
        markers = [p.get("value") for p in payload.get("singleValueExtendedProperties") or []]
        ical = payload.get("iCalUId")
        if line.get("kind") == "graph.event" and ical and markers and \
                marker_of.setdefault(ical, str(markers[0])) != markers[0]:
            continue
        out.append(raw)
    return out


def split(lines: list[bytes], n: int, how: str, reference: str | None = None
          ) -> list[list[bytes]]:
    """The feed's lines as ``n`` files' lines (``how``: one of ``SPLITS``; ``meeting``
    needs the one-process ledger ``reference``); each file keeps the feed's order and
    opens with its settings lines."""
    if how == "whole":
        return [list(lines) for _ in range(n)]
    if how == "meeting":
        if reference is None:
            raise ValueError("split 'meeting' needs the one-process ledger")
        return _by_meeting(lines, n, reference)
    if how != "organizer":
        raise ValueError(f"split {how!r}: one of {', '.join(SPLITS)}")
    users = _owner_mailboxes()
    owner_of: dict[str, str] = {}  # Salesforce Event Id -> its owner's mailbox
    head: list[bytes] = []
    parts: list[list[bytes]] = [[] for _ in range(n)]
    for raw in lines:
        line = orjson.loads(raw)
        kind, payload = line["kind"], line["payload"]
        if kind == "salesforce.event":
            who = owner_of[payload["Id"]] = users.get(payload["OwnerId"], payload["OwnerId"])
        elif kind == "salesforce.deleted":
            who = owner_of.get(payload["id"], payload["id"])
        elif "mailbox" in line:
            who = line["mailbox"]
        else:
            head.append(raw)
            continue
        parts[zlib.crc32(who.encode()) % n].append(raw)
    return [head + part for part in parts]


def _by_meeting(lines: list[bytes], n: int, reference: str) -> list[list[bytes]]:
    """Each line with the meeting ``reference`` (one process's ledger) indexed it under,
    meetings spread over ``n`` files; a line no meeting holds (settings) goes to every
    file at its place."""
    store = Store(StoreURL.parse(reference).reading())
    try:
        routes = [_keys(parse_line(raw)) for raw in lines]
        found = store.lookup_keys(k for keys in routes for k in keys)
    finally:
        store.close()
    parts: list[list[bytes]] = [[] for _ in range(n)]
    for raw, keys in zip(lines, routes, strict=True):
        owner = next((found[k] for k in keys if k in found), None)
        if owner is None:
            for part in parts:
                part.append(raw)
        else:
            parts[zlib.crc32(owner.encode()) % n].append(raw)
    return parts


def _keys(obs: Observation) -> list[str]:
    """The index keys intake routes a meeting's observation by (none for settings)."""
    try:
        return route_keys(obs)[0]
    except TypeError:  # not a meeting's observation
        return []


@dataclass
class Run:
    """What N writers did: each one's exit status, and the wall time of all of them."""

    exits: list[int]
    seconds: float
    errors: list[str]


def syncledger(*argv: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SYNCLEDGER, *argv], capture_output=True, text=True, cwd=ROOT,
                          timeout=timeout, check=False)


def ingest_together(files: list[Path], db: str, *, batch_size: int, timeout: float = 600
                    ) -> Run:
    """One ``syncledger ingest`` process per file, all started before any is waited for."""
    began = time.monotonic()
    procs = [subprocess.Popen([*SYNCLEDGER, "ingest", str(f), "--db", db, "--json",
                               "--batch-size", str(batch_size)], cwd=ROOT, text=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for f in files]
    exits, errors = [], []
    for p in procs:
        _, err = p.communicate(timeout=timeout)
        exits.append(p.returncode)
        if p.returncode != 0:
            errors.append(err.strip().splitlines()[-1] if err.strip() else "")
    return Run(exits, time.monotonic() - began, errors)


def one_process(feed: Path, db: str, *, batch_size: int) -> Fingerprint:
    """What one writer makes of the whole feed, ingested and projected in this process
    (the same code the CLI runs, without starting an interpreter)."""
    store = Store.open(db)
    try:
        ingest_files(store, [feed], show_progress=False, batch_size=batch_size)
        runner.catch_up(store)
        return {**_events(store), **fingerprints.side_rows(store),
                **fingerprints.read_models(store)}
    finally:
        store.close()


def project_and_fingerprint(db: str) -> Fingerprint:
    done = syncledger("project", "--db", db)
    if done.returncode != 0:
        raise RuntimeError(f"project on {db}: {done.stderr.strip()}")
    store = Store.open(db)
    try:
        return {**_events(store), **fingerprints.side_rows(store),
                **fingerprints.read_models(store)}
    finally:
        store.close()


def _events(store: Store) -> Fingerprint:
    """The ledger's events as two parts: ``input`` (what was observed: observations,
    settings, people, full reads) and ``decision`` (what a meeting decided from the input
    seen so far: opening, plans, links, issues); each row is ``aggregate digest`` of the
    event's topic and state, the version left out (``fingerprints.events`` does the same
    per aggregate)."""
    out: Fingerprint = {"input": Counter(), "decision": Counter()}
    after = 0
    while rows := store.read_log(after, 5000):
        for position, oid, _version, topic, state in rows:
            data = orjson.loads(state)
            data.pop("originator_version", None)
            part = "input" if "observation" in data or "ledger.meeting:" not in topic \
                else "decision"
            digest = hashlib.sha256(orjson.dumps([topic, data], option=orjson.OPT_SORT_KEYS,
                                                 default=str)).hexdigest()[:24]
            out[part][f"{oid.replace('-', '')} {digest}"] += 1
            after = position
    return out


@dataclass
class Figures:
    """One store, split and writer count against the one-process ledger."""

    events: int  # events in the ledger
    #: input events (observations, settings) the reference has and this ledger lacks, and
    #: those this ledger holds more often (per aggregate: one in another meeting counts)
    lost: int
    duplicated: int
    #: decision events (opening, plans, links) in one ledger and not the other: the same
    #: observations decided in another order (``organizer``: copies from other files)
    decisions_differing: int
    index_differing: int  # index rows in one ledger and not the other
    read_models_differing: dict[str, int]  # read model -> rows in one and not the other

    @property
    def read_model_rows_differing(self) -> int:
        return sum(self.read_models_differing.values())


def _rows_differing(want: Counter[str], have: Counter[str]) -> int:
    return sum(((want - have) + (have - want)).values())


def figures(reference: Fingerprint, got: Fingerprint) -> Figures:
    want, have = reference["input"], got["input"]
    return Figures(
        events=sum(have.values()) + sum(got["decision"].values()),
        lost=sum((want - have).values()),
        duplicated=sum(n for row, n in (have - want).items() if row in want),
        decisions_differing=_rows_differing(reference["decision"], got["decision"]),
        index_differing=_rows_differing(reference["index"], got["index"]),
        read_models_differing={m: d for m in fingerprints.READ_MODELS
                               if (d := _rows_differing(reference[m], got[m]))})
