"""Where intake and catch-up spend their time, by area, for ``scripts/bench.py --profile``.

A cProfile run is summed into areas a reader can act on (rules, write
planning, event objects, SQL insert, commit, ...). Every function's *own*
time goes to exactly one area, so the areas add up to the total; time spent
inside a C function (``orjson.loads``, ``dict.get``) goes to the area of the
Python function that called it, except for the calls that are an area of
their own (``executemany``, ``commit``, waiting on the feed reader).

cProfile slows Python calls more than C calls, so shares are approximate;
the throughput figures come from the unprofiled runs.
"""

from __future__ import annotations

import cProfile
import pstats
from collections import defaultdict
from collections.abc import Callable
from typing import Any

Func = tuple[str, int, str]  # (file, line, name), as pstats keys them

#: C calls that are an area of their own, whoever calls them.
C_AREAS = {
    "<method 'executemany' of 'sqlite3.Cursor' objects>": "SQL: insert (executemany)",
    "<method 'commit' of 'sqlite3.Connection' objects>": "SQL: commit (fsync)",
    "<method 'fetchall' of 'sqlite3.Cursor' objects>": "SQL: read",
    "<method 'fetchone' of 'sqlite3.Cursor' objects>": "SQL: read",
    "<method 'execute' of 'sqlite3.Cursor' objects>": "SQL: other statements",
    "<method 'execute' of 'sqlite3.Connection' objects>": "SQL: other statements",
    "<method 'acquire' of '_thread.lock' objects>": "waiting (feed reader, locks)",
    "<method 'read' of '_io.BufferedReader' objects>": "waiting (feed reader, locks)",
    "<built-in method time.sleep>": "waiting (feed reader, locks)",
    "<orjson.loads>": "decode (orjson.loads)",
}
#: (path fragment, function name or None for any, area): first match wins.
INTAKE_RULES: list[tuple[str, str | None, str]] = [
    ("adapters/feed/reader_process.py", None, "feed: records from the reader process"),
    ("ledger/observations.py", "from_record", "feed: records from the reader process"),
    ("ledger/observations.py", "build", "feed: records from the reader process"),
    ("adapters/feed/envelopes.py", None, "feed: parse + translate (in-process)"),
    ("adapters/graph/wire.py", None, "feed: parse + translate (in-process)"),
    ("adapters/salesforce/wire.py", None, "feed: parse + translate (in-process)"),
    ("adapters/wire.py", None, "feed: parse + translate (in-process)"),
    ("ledger/rules.py", None, "rules (decisions)"),
    ("ledger/timezones.py", None, "rules (decisions)"),
    ("ledger/writes.py", None, "write planning"),
    ("ledger/meeting.py", "_plan_writes", "write planning"),
    ("ledger/meeting.py", "_record_observation", "recording the observation"),
    ("ledger/meeting.py", "_changed", "recording the observation"),
    ("ledger/meeting.py", "redact", "recording the observation"),
    ("ledger/observations.py", None, "recording the observation"),
    ("ledger/meeting.py", "_link_decisions", "rules (decisions)"),
    ("ledger/meeting.py", "_exchange_copy_for", "rules (decisions)"),
    ("ledger/meeting.py", None, "events: create + apply to the meeting"),
    ("eventsourcing/domain.py", None, "events: create + apply to the meeting"),
    ("ledger/store.py", "save", "events: encode rows"),
    ("ledger/codec.py", None, "events: encode rows"),
    ("eventsourcing/persistence.py", None, "events: encode rows"),
    ("eventsourcing/application.py", None, "loading meetings + snapshots"),
    ("ledger/store.py", "meeting", "loading meetings + snapshots"),
    ("ledger/intake.py", "_read_ahead", "routing (index look-ups)"),
    ("ledger/intake.py", "_lookup", "routing (index look-ups)"),
    ("ledger/intake.py", "_route", "routing (index look-ups)"),
    ("ledger/intake.py", "route_keys", "routing (index look-ups)"),
    ("ledger/intake.py", "index_keys", "routing (index look-ups)"),
    ("ledger/identity.py", None, "routing (index look-ups)"),
    ("uuid.py", None, "routing (index look-ups)"),
    ("ledger/store.py", None, "SQL: statements (Python side)"),
    ("eventsourcing/sqlite.py", None, "SQL: statements (Python side)"),
    ("eventsourcing/postgres.py", None, "SQL: statements (Python side)"),
    ("psycopg", None, "SQL: statements (Python side)"),
    ("ledger/intake.py", None, "intake loop (batching, caching)"),
    ("adapters/feed/ingest.py", None, "intake loop (batching, caching)"),
]
CATCH_UP_RULES: list[tuple[str, str | None, str]] = [
    ("projections/runner.py", "batch", "runner: route + dispatch events"),
    ("projections/runner.py", "build", "runner: route + dispatch events"),
    ("projections/runner.py", "_write_all", "load: sort rows, create tables + indexes"),
    ("projections/analytics.py", "final_rows", "analytics: load facts + rows"),
    ("projections/analytics.py", "_meeting_rows", "analytics: load facts + rows"),
    ("projections/analytics.py", "flush", "analytics: load facts + rows"),
    ("projections/analytics.py", "_load", "analytics: load facts + rows"),
    ("projections/analytics.py", "derive", "analytics: load facts + rows"),
    ("projections/analytics.py", None, "analytics: handlers (count + fold)"),
    ("projections/mapping.py", None, "mapping"),
    ("projections/conflicts.py", None, "conflicts + issues + plan"),
    ("projections/issues.py", None, "conflicts + issues + plan"),
    ("projections/plan.py", None, "conflicts + issues + plan"),
    ("ledger/settings.py", None, "analytics: load facts + rows"),
    ("projections/base.py", None, "SQL: statements (Python side)"),
    ("sqlalchemy", None, "SQL: statements (Python side)"),
    ("psycopg", None, "SQL: statements (Python side)"),
    ("projections/people.py", None, "people"),
    ("projections/runner.py", None, "runner: route + dispatch events"),
]


def profile(call: Callable[[], Any]) -> tuple[Any, pstats.Stats]:
    prof = cProfile.Profile()
    result = prof.runcall(call)
    return result, pstats.Stats(prof)


def areas(stats: pstats.Stats, rules: list[tuple[str, str | None, str]]) -> dict[str, float]:
    """Seconds of own time per area (the areas add up to the profiled total)."""
    table: dict[Func, Any] = stats.stats  # type: ignore[attr-defined]

    def area_of(func: Func) -> str | None:
        path, _, name = func
        path = path.replace("\\", "/")
        for fragment, wanted, area in rules:
            if fragment in path and (wanted is None or wanted == name):
                return area
        return None

    out: dict[str, float] = defaultdict(float)
    for func, (_cc, _nc, own, _cum, callers) in table.items():
        path, _, name = func
        if path == "~":  # a C function: its own area, or its callers'
            special = C_AREAS.get(name)
            if special is not None:
                out[special] += own
                continue
            for caller, (_c, _n, part, _cu) in callers.items():
                out[area_of(caller) or "other (library, C calls)"] += part
            continue
        out[area_of(func) or "other (library, C calls)"] += own
    return dict(out)


def report(title: str, found: dict[str, float], units: int, unit: str,
           baseline_us: float | None = None) -> list[str]:
    """Areas by share, with microseconds per ``unit`` (profiled time)."""
    total = sum(found.values()) or 1.0
    lines = [f"{title}: {total:.1f} s profiled, {total / units * 1e6:.0f} µs per {unit}"]
    if baseline_us is not None:
        lines[0] += f" (raw baseline: {baseline_us:.0f} µs per {unit}, unprofiled)"
    for area, seconds in sorted(found.items(), key=lambda kv: -kv[1]):
        lines.append(f"  {seconds / total:6.1%}  {seconds / units * 1e6:7.1f} µs  {area}")
    return lines
