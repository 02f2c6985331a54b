"""A large feed is read in a child process: same result as reading it in-process.

What a user would notice: ingesting a big file gives exactly the ledger a small
one would (same events, same quarantine, same line numbers), a child that
dies is an error rather than a silently short ingest, and stopping early
leaves no process behind.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import orjson
import pytest

from adapters.cli.main import main
from adapters.feed.envelopes import envelope
from adapters.feed.ingest import feed_items, ingest_files
from adapters.feed.reader_process import FeedReaderDied, read_feed_in_child
from adapters.sandbox.org import demo_feed
from ledger.intake import InputError
from ledger.observations import to_record
from ledger.store import Store
from tests.conftest import FIXTURES

AT = "2026-11-20T09:00:00Z"
MAILBOX = "joni@contoso.onmicrosoft.com"


def awkward_feed(path: Path) -> Path:
    """The demo org, a series master and a stub filled from it, blank lines, a BOM,
    CRLF endings and each kind of bad line."""
    master = orjson.loads((FIXTURES / "graph/group_list_events_seriesmaster.json")
                          .read_bytes())["value"][0]
    stub = {"id": "OCC1", "type": "occurrence", "seriesMasterId": master["id"],
            "start": {"dateTime": "2017-08-16T21:00:00.0000000", "timeZone": "UTC"},
            "end": {"dateTime": "2017-08-16T22:00:00.0000000", "timeZone": "UTC"}}
    lines = [b"\xef\xbb\xbf" + envelope("graph.event", AT, master, mailbox=MAILBOX), b"",
             envelope("graph.event", AT, stub, mailbox=MAILBOX) + b"\r",
             *demo_feed().splitlines(),
             b"{this is not json",
             envelope("graph.event", AT, {**master, "id": "BAD", "start": {
                 "dateTime": "24/11/2026 5pm", "timeZone": "UTC"}}, mailbox=MAILBOX),
             envelope("graph.event", AT, master),  # no mailbox
             b'{"kind": "graph.event", "observed_at": "2026-11-20T09:0']  # truncated
    path.write_bytes(b"\n".join(lines))
    return path


def test_the_child_reads_exactly_what_the_parent_would(tmp_path: Path) -> None:
    feed = awkward_feed(tmp_path / "feed.jsonl")
    here = list(feed_items(feed, in_child=False))
    there = list(feed_items(feed, in_child=True))
    assert len(there) == len(here) > 40
    errors = 0
    for a, b in zip(here, there, strict=True):
        assert (b.source, b.line_no, b.raw) == (a.source, a.line_no, a.raw)
        if isinstance(a.observation, InputError):
            errors += 1
            assert isinstance(b.observation, InputError)
            assert (str(b.observation), b.observation.item_id, b.observation.field) == \
                (str(a.observation), a.observation.item_id, a.observation.field)
        else:
            assert b.observation == a.observation
            assert b.record == to_record(a.observation)
    assert errors == 4
    assert there[1].observation.subject == there[0].observation.subject  # type: ignore[union-attr]


def test_a_ledger_ingested_through_the_child_is_byte_identical(tmp_path: Path) -> None:
    feed = awkward_feed(tmp_path / "feed.jsonl")
    logs = []
    for in_child in (False, True):
        store = Store.open(str(tmp_path / f"ledger-{in_child}.db"))
        result = ingest_files(store, [feed], show_progress=False, in_child=in_child)
        assert result.quarantined == 4
        logs.append(store.query(
            "SELECT topic, state FROM stored_events ORDER BY originator_id, originator_version"))
        logs.append(store.query("SELECT line_no, item_id, field, error, raw FROM {p}quarantine "
                                "ORDER BY line_no"))
        store.close()
    assert logs[0] == logs[2] and logs[1] == logs[3]
    assert len(logs[0]) > 80


def _children(name: str) -> list[int]:
    """Live child processes of this one running ``adapters.feed.reader_process``."""
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == os.getpid() and name.encode() in cmd and fields[0] != "Z":
            out.append(int(pid))
    return out


def big_feed(path: Path, copies: int = 40) -> Path:
    path.write_bytes(b"\n".join(demo_feed().splitlines() * copies))
    return path


def test_stopping_early_leaves_no_child_behind(tmp_path: Path) -> None:
    lines = read_feed_in_child(big_feed(tmp_path / "big.jsonl"), chunk_lines=5)
    first = next(lines)
    assert first[0] == 1
    assert _children("adapters.feed.reader_process")
    lines.close()
    assert _children("adapters.feed.reader_process") == []


def test_a_child_that_dies_is_an_error_not_a_short_read(tmp_path: Path) -> None:
    feed = big_feed(tmp_path / "big.jsonl")
    lines = read_feed_in_child(feed, chunk_lines=5)
    next(lines)
    (pid,) = _children("adapters.feed.reader_process")
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.1)
    with pytest.raises(FeedReaderDied, match=r"big\.jsonl stopped before the end .*-9"):
        for _ in lines:
            pass


def test_no_interpreter_to_start_means_reading_in_process(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
        ) -> None:
    feed = awkward_feed(tmp_path / "feed.jsonl")
    expected = [(i.line_no, i.raw) for i in feed_items(feed, in_child=False)]
    monkeypatch.setattr("sys.executable", str(tmp_path / "no-such-python"))
    got = [(i.line_no, i.raw) for i in feed_items(feed, in_child=True)]
    assert got == expected
    assert "reading feed.jsonl in this process" in capsys.readouterr().err


def test_the_cli_reads_through_a_second_process_on_request(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    feed = awkward_feed(tmp_path / "feed.jsonl")
    summaries = []
    for reader in ("process", "inline"):
        db = tmp_path / f"{reader}.db"
        assert main(["ingest", str(feed), "--db", str(db), "--reader", reader, "--json"]) == 3
        summary = orjson.loads(capsys.readouterr().out)
        assert summary.pop("elapsed_s") >= 0  # the only figure that may differ
        summaries.append(summary)
    assert summaries[0] == summaries[1]
    assert summaries[0]["quarantined"] == 4 and summaries[0]["events_appended"] > 80


def test_a_file_the_child_cannot_read_names_it(tmp_path: Path) -> None:
    directory = tmp_path / "not-a-file"
    directory.mkdir()
    with pytest.raises(OSError, match=r"cannot read .*not-a-file"):
        list(read_feed_in_child(directory))


def test_an_observations_record_is_its_fields_as_json(tmp_path: Path) -> None:
    """``to_record`` has a fast path for the common kinds; for every kind in the demo
    org (series, invitees, redaction candidates, removals, saves, settings) it must
    give what the observation's fields are as JSON, keys in field order, and share
    no list or dict with the observation (a record becomes part of an event)."""
    import dataclasses

    feed = awkward_feed(tmp_path / "feed.jsonl")
    kinds = set()
    for item in feed_items(feed, in_child=False):
        obs = item.observation
        if isinstance(obs, InputError):
            continue
        kinds.add(type(obs).__name__)
        for nested in ("recurrence", "invitees"):
            if getattr(obs, nested, None):
                kinds.add(nested)
        record = to_record(obs)
        as_json = orjson.loads(orjson.dumps(dataclasses.asdict(obs)))
        assert record == as_json
        assert list(record) == list(as_json)
        for name, value in record.items():
            if isinstance(value, (list, dict)):
                assert value is not getattr(obs, name)
    assert {"ExchangeItemSeen", "SalesforceEventSeen", "SidebarSave", "recurrence",
            "invitees"} <= kinds
