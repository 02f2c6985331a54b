"""Properties of intake over generated feeds (hypothesis), on SQLite files.

- replaying the same feed into two fresh ledgers gives identical event streams;
- ingesting a feed twice appends nothing the second time;
- interleaving the observations of independent meetings changes no meeting's outcome.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.sandbox.org import SandboxOrg, build
from ledger.store import Store
from tests.scenarios import ingest

SANDBOX = build()
STORIES = sorted(set(SANDBOX.groups) - {"org"})


def feed_of(stories: list[str], order: list[int] | None = None) -> bytes:
    """The sandbox lines of the chosen stories; settings first, then ``order``."""
    lines = [(g, line) for g, line in zip(SANDBOX.groups, SANDBOX.feed, strict=True)
             if g == "org" or g in stories]
    head = [line for g, line in lines if g == "org"]
    body = [(g, line) for g, line in lines if g != "org"]
    if order is not None:
        body = interleave(body, order)
    return b"".join(orjson.dumps(x) + b"\n" for x in head + [line for _, line in body])


def interleave(lines: list[tuple[str, dict[str, Any]]], order: list[int]
               ) -> list[tuple[str, dict[str, Any]]]:
    """Merge per-story queues, picking the next story by ``order``; keeps each story's order."""
    queues: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for g, line in lines:
        queues.setdefault(g, []).append((g, line))
    out = []
    i = 0
    while queues:
        names = sorted(queues)
        pick = names[order[i % len(order)] % len(names)] if order else names[0]
        i += 1
        out.append(queues[pick].pop(0))
        if not queues[pick]:
            del queues[pick]
    return out


def log_of(store: Store) -> list[tuple[str, int, str, bytes]]:
    return [(oid, version, topic, state)
            for _, oid, version, topic, state in store.read_log(0, 10**6)]


def per_meeting(store: Store) -> dict[str, list[tuple[int, str, bytes]]]:
    out: dict[str, list[tuple[int, str, bytes]]] = {}
    for oid, version, topic, state in log_of(store):
        out.setdefault(oid, []).append((version, topic, state))
    return out


def fresh(tmp: str, name: str) -> Store:
    return Store.open(str(Path(tmp) / name))


stories = st.lists(st.sampled_from(STORIES), min_size=1, max_size=len(STORIES), unique=True)
quick = settings(max_examples=15, deadline=None,
                 suppress_health_check=[HealthCheck.too_slow])


@quick
@given(chosen=stories)
def test_replaying_a_feed_into_two_fresh_ledgers_gives_identical_streams(chosen: list[str]
                                                                         ) -> None:
    feed = feed_of(chosen)
    with tempfile.TemporaryDirectory() as tmp:
        a, b = fresh(tmp, "a.db"), fresh(tmp, "b.db")
        ingest(a, feed, Path(tmp), "a.jsonl")
        ingest(b, feed, Path(tmp), "b.jsonl")
        assert log_of(a) == log_of(b)
        assert log_of(a)  # something was recorded
        a.close()
        b.close()


@quick
@given(chosen=stories)
def test_ingesting_a_feed_twice_appends_nothing_the_second_time(chosen: list[str]) -> None:
    feed = feed_of(chosen)
    with tempfile.TemporaryDirectory() as tmp:
        store = fresh(tmp, "a.db")
        first = ingest(store, feed, Path(tmp))
        before = store.max_position()
        second = ingest(store, feed, Path(tmp))
        assert first.appended > 0
        assert second.appended == 0 and store.max_position() == before
        assert second.duplicates == second.read
        store.close()


@quick
@given(chosen=stories, order=st.lists(st.integers(0, 50), min_size=1, max_size=40))
def test_interleaving_independent_meetings_changes_no_outcome(chosen: list[str],
                                                              order: list[int]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        canonical, shuffled = fresh(tmp, "a.db"), fresh(tmp, "b.db")
        ingest(canonical, feed_of(chosen), Path(tmp), "a.jsonl")
        ingest(shuffled, feed_of(chosen, order), Path(tmp), "b.jsonl")
        assert per_meeting(canonical) == per_meeting(shuffled)
        canonical.close()
        shuffled.close()


def test_sandbox_groups_cover_every_line() -> None:
    org: SandboxOrg = build()
    assert len(org.groups) == len(org.feed)
    assert feed_of(STORIES).count(b"\n") == len(org.feed)
