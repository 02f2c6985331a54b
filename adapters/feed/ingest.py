"""The jobs behind the command line: ingest feed files, run the demo.

Kept apart from argument parsing so tests and scripts call the same code the
``syncledger`` command does.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from adapters.feed.envelopes import WIRE_FIELDS, FeedError, envelope, parse_line, read_feed
from adapters.feed.privacy import redact_line
from adapters.feed.reader_process import PARALLEL_MIN_BYTES, read_feed_in_child
from adapters.progress import Progress
from ledger.intake import InputError, Intake, IntakeResult, Ledger
from ledger.observations import Observation
from ledger.store import Store


def feed_items(path: Path, source: str | None = None, *,
               in_child: bool | None = None) -> Iterator[Intake]:
    """A feed file as intake units; bad lines carry their error instead.

    ``in_child``: read it in a second process (``adapters.feed.reader_process``); by
    default, when the file is large and the machine has a second core. If the
    process cannot be started, the file is read here instead.
    """
    name = source or path.name
    if in_child is None:
        in_child = (os.cpu_count() or 1) > 1 and path.stat().st_size >= PARALLEL_MIN_BYTES
    parsed_lines: Iterator[tuple[int, bytes, Observation | FeedError, dict[str, Any] | None]]
    parsed_lines = ((n, raw, parsed, None) for n, raw, parsed in read_feed(path))
    if in_child:
        try:
            parsed_lines = read_feed_in_child(path)
        except OSError as exc:  # no interpreter to start (embedded, frozen): read it here
            print(f"syncledger: reading {path.name} in this process ({exc})", file=sys.stderr)
    for line_no, raw, parsed, record in parsed_lines:
        if isinstance(parsed, FeedError):
            err = InputError(str(parsed), line_no=line_no, item_id=parsed.item_id,
                             field=parsed.field)
            yield Intake(name, line_no, raw, err)
        else:
            yield Intake(name, line_no, raw, parsed, record)


def ingest_files(store: Store, paths: list[Path], *, show_progress: bool | None = None,
                 batch_size: int = 2000, in_child: bool | None = None) -> IntakeResult:
    """Ingest feed files in order; one result over all of them (``in_child``: see
    ``feed_items``)."""
    ledger = Ledger(store, batch_size=batch_size, field_names=WIRE_FIELDS,
                    redact_raw=redact_line)
    total = IntakeResult()
    for path in paths:
        size = os.path.getsize(path)
        bar = Progress(f"ingest {path.name} ({size:,} bytes)", enabled=show_progress)
        result = ledger.ingest(feed_items(path, in_child=in_child), progress=bar.update_from)
        bar.close()
        total.add(result)
    return total


def summary_lines(result: IntakeResult, elapsed: float | None = None) -> list[str]:
    """What an ingest did, one figure a line; ``elapsed`` (seconds) adds time and rate."""
    d: dict[str, Any] = result.as_dict()
    lines = [f"lines read          {d['lines_read']:>8,}",
             f"events appended     {d['events_appended']:>8,}  (each new meeting's "
             "opening event included)",
             f"duplicates skipped  {d['duplicates_skipped']:>8,}",
             f"parked              {d['parked']:>8,}  (waiting for an item not seen yet: "
             "syncledger parked)",
             f"taken from parked   {d['unparked']:>8,}",
             f"dropped from parked {d['parked_dropped']:>8,}  (removals of items never seen, "
             "past parked_removal_max_age_hours)",
             f"quarantined         {d['quarantined']:>8,}",
             f"meetings touched    {d['meetings_touched']:>8,}",
             f"meetings opened     {d['meetings_opened']:>8,}  (new to the ledger)"]
    if elapsed is not None:
        rate = d["lines_read"] / elapsed if elapsed > 0 else 0.0
        lines.append(f"elapsed             {elapsed:>8.2f} s  ({rate:,.0f} lines/s)")
    return lines


def record_note(store: Store, kind: str, observed_at: str, payload: dict[str, Any], *,
                mailbox: str, source: str) -> IntakeResult:
    """Record one org-level note the sync itself makes (an approval, a suspension) as the
    feed line it would be in a file, so a replay and ``ingest`` read it the same way."""
    line = envelope(kind, observed_at, payload, mailbox=mailbox)
    return Ledger(store).ingest([Intake(source, None, line, parse_line(line))])
