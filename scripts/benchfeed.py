"""A synthetic org's raw-observation feed for ``scripts/bench.py``, streamed to disk.

The feed is what a long sync of a mid-sized org would record (DOMAIN.md §6
envelopes around raw Graph and SOQL payloads, built with the sandbox's own
builders): org settings first, then meetings told as small stories
(single and weekly meetings with attendee copies and exceptions, the
Salesforce copies the sync made, later updates on either side, sidebar
saves, deletions, meetings born in Salesforce, re-delivered changes).
A bounded pool of stories is advanced in random order, so observations of
different meetings interleave like real traffic while memory stays flat
however long the feed is. Everything follows from ``seed``.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from adapters.sandbox.org import (
    ALICE,
    SandboxOrg,
    _graph_id,
    _ical,
    _sf_id,
    graph_event,
    relation,
    sf_event,
    weekly,
)

ORG_DOMAIN = "contoso.com"
EXTERNAL_DOMAINS = ("fabrikam.com", "northwind.example", "adatum.example")
FEED_START = datetime(2027, 1, 4, 8, 0)
#: Stories in flight at once: how far observations of one meeting spread out.
POOL = 200
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday")
SUBJECTS = ("Pipeline review", "Customer QBR", "Pricing workshop", "1:1", "Design sync",
            "Renewal call", "Onboarding", "Forecast", "Security review", "Partner intro",
            "Roadmap", "Contract signing", "Support escalation", "Demo", "Hiring panel")
ROOMS = ("Room 1", "Room 2", "Room 4", "Board room", "Teams", "Fabrikam HQ", "")
ZONES = ("Pacific Standard Time", "Eastern Standard Time", "W. Europe Standard Time",
         "GMT Standard Time", "Tokyo Standard Time")

Line = dict[str, Any]


@dataclass
class FeedStats:
    """What was written: lines by kind and bytes."""

    observations: int = 0
    bytes: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    mailboxes: int = 0
    product_users: int = 0


class _Org:
    """People and id counters of the synthetic org."""

    def __init__(self, rng: random.Random, n_observations: int) -> None:
        self.rng = rng
        n_mailboxes = max(20, min(2000, n_observations // 500))
        self.mailboxes = [f"user{i:05d}@{ORG_DOMAIN}" for i in range(n_mailboxes)]
        cut = int(n_mailboxes * 0.7)
        self.users = {m: _sf_id("005", i + 1) for i, m in enumerate(self.mailboxes[:cut])}
        self.non_users = self.mailboxes[cut:]
        self.externals = [f"guest{i:04d}@{EXTERNAL_DOMAINS[i % 3]}"
                          for i in range(max(10, n_mailboxes // 4))]
        self.sf_n = 0
        self.rel_n = 0
        self.story_n = 0

    def sf_number(self) -> int:
        self.sf_n += 1
        return self.sf_n

    def relations(self, event_id: str, people: list[str]) -> list[dict[str, Any]]:
        out = []
        for p in people:
            if p in self.users:
                self.rel_n += 1
                out.append(relation(event_id, self.users[p], self.rel_n,
                                    self.rng.choice(("Accepted", "New", "Declined"))))
        return out


def _stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S")


def _modstamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def _modified(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.0000000Z")


class _Clock:
    """Feed time: every observation a few seconds after the previous one."""

    def __init__(self) -> None:
        self.now = FEED_START

    def tick(self, rng: random.Random) -> datetime:
        self.now += timedelta(seconds=rng.randint(1, 4))
        return self.now


def _sf_record(org: _Org, n: int, *, owner: str, subject: str, start: datetime,
               end: datetime, when: datetime, **kw: Any) -> dict[str, Any]:
    """A SOQL Event record (the sandbox builder) owned by any product user."""
    rec = sf_event(n, subject=subject, start=_stamp(start), end=_stamp(end), owner=ALICE,
                   modstamp=_modstamp(when), **kw)
    rec["OwnerId"] = org.users[owner]
    return rec


def _single(org: _Org, env: SandboxOrg, clock: _Clock) -> Iterator[None]:
    """One meeting: copies in every in-org mailbox, its Salesforce copy, later changes."""
    rng = org.rng
    org.story_n += 1
    name = f"single-{org.story_n}"
    roll = rng.random()
    if roll < 0.8:
        organizer = rng.choice(list(org.users))
    elif roll < 0.9:
        organizer = rng.choice(org.non_users)
    else:
        organizer = rng.choice(org.externals)
    others = rng.sample(org.mailboxes, rng.randint(1, 4)) + \
        rng.sample(org.externals, rng.randint(0, 2))
    attendees = tuple(dict.fromkeys([organizer, *others]))
    copies = [a for a in attendees if a.endswith("@" + ORG_DOMAIN)]
    start = clock.now.replace(minute=0, second=0) + timedelta(days=rng.randint(1, 20),
                                                              hours=rng.randint(0, 8))
    end = start + timedelta(minutes=rng.choice((30, 45, 60, 90)))
    fields: dict[str, Any] = dict(
        subject=f"{rng.choice(SUBJECTS)} #{org.story_n}", organizer=organizer,
        attendees=attendees, body=f"Agenda for {name}: " + "notes " * rng.randint(2, 30),
        location=rng.choice(ROOMS), zone=rng.choice(ZONES),
        sensitivity="private" if rng.random() < 0.04 else "normal")
    revision = 0

    def copies_now(when: datetime) -> Iterator[None]:
        for mailbox in copies:
            env.graph(0, mailbox, graph_event(
                mailbox, name, start=_stamp(start), end=_stamp(end), revision=revision,
                modified=_modified(when), **fields))
            yield

    yield from copies_now(clock.now)
    sf_id = None
    if organizer in org.users and fields["sensitivity"] == "normal":
        n = org.sf_number()
        sf_id = _sf_id("00U", n)
        record = _sf_record(org, n, owner=organizer, subject=fields["subject"], start=start,
                            end=end, when=clock.now, ical=_ical(name),
                            description=fields["body"], location=fields["location"])
        env.salesforce(0, record, org.relations(sf_id, list(attendees[1:])))
        yield
        if rng.random() < 0.5:  # the sync stamps the Outlook item with the marker
            env.graph(0, organizer, graph_event(
                organizer, name, start=_stamp(start), end=_stamp(end), revision=revision,
                modified=_modified(clock.now), marker=sf_id, **fields))
            yield
        if rng.random() < 0.15:  # edited in Salesforce
            record = {**record, "Description": "Edited in Salesforce",
                      "Location": rng.choice(ROOMS) or None,
                      "SystemModstamp": _modstamp(clock.now),
                      "LastModifiedDate": _modstamp(clock.now)}
            env.salesforce(0, record)
            yield
    elif organizer not in org.users:
        savers = [c for c in copies if c in org.users]
        if savers and rng.random() < 0.6:  # a user saves a meeting someone else runs
            env.save(0, savers[0], _graph_id(savers[0], name),
                     what_id=_sf_id("006", org.story_n) if rng.random() < 0.5 else None)
            yield
    if rng.random() < 0.05:  # the same change delivered twice
        yield from copies_now(clock.now)
    if rng.random() < 0.3:  # the organizer moves or renames it
        revision += 1
        start += timedelta(hours=rng.choice((-2, -1, 1, 24)))
        end = start + timedelta(minutes=rng.choice((30, 60)))
        fields["subject"] += " (moved)"
        yield from copies_now(clock.now)
    if rng.random() < 0.08:  # deleted by its organizer
        for mailbox in copies:
            env.removed(0, mailbox, _graph_id(mailbox, name))
            yield
        if sf_id is not None:
            env._add({"kind": "salesforce.deleted", "observed_at": "",
                      "payload": {"id": sf_id, "deletedDate": _modstamp(clock.now)}})
            yield


def _series(org: _Org, env: SandboxOrg, clock: _Clock) -> Iterator[None]:
    """A weekly series: master, occurrences, one exception, the Classic copy in Salesforce."""
    rng = org.rng
    org.story_n += 1
    name = f"series-{org.story_n}"
    organizer = rng.choice(list(org.users))
    attendees = tuple(dict.fromkeys([organizer, *rng.sample(org.mailboxes, rng.randint(1, 3))]))
    count = rng.randint(3, 6)
    first = clock.now.replace(hour=16, minute=0, second=0) + timedelta(days=rng.randint(1, 7))
    days = [first + timedelta(weeks=i) for i in range(count)]
    minutes = rng.choice((30, 60))
    all_day = rng.random() < 0.03
    base: dict[str, Any] = dict(subject=f"Weekly {rng.choice(SUBJECTS)} #{org.story_n}",
                                organizer=organizer, attendees=attendees,
                                location=rng.choice(ROOMS), body="Standing agenda",
                                all_day=all_day)
    rec = weekly(days[0].strftime("%Y-%m-%d"), [WEEKDAYS[days[0].weekday() % 5]], count)

    def master(revision: int, **changes: Any) -> dict[str, Any]:
        return graph_event(organizer, name, **{**base, **changes}, kind="seriesMaster",
                           start=_stamp(days[0]), end=_stamp(days[0] + timedelta(minutes=minutes)),
                           recurrence=rec, revision=revision, modified=_modified(clock.now))

    env.graph(0, organizer, master(0))
    yield
    exception = rng.randrange(count)
    for i, d in enumerate(days):
        kind = "exception" if i == exception else "occurrence"
        start = d + timedelta(hours=1) if kind == "exception" else d
        env.graph(0, organizer, graph_event(
            organizer, name, **base, kind=kind, master=name, start=_stamp(start),
            end=_stamp(start + timedelta(minutes=minutes)), original_start=_stamp(d),
            modified=_modified(clock.now)))
        yield
    for mailbox in attendees[1:]:  # attendees' copies of the master
        env.graph(0, mailbox, graph_event(
            mailbox, name, **base, kind="seriesMaster", start=_stamp(days[0]),
            end=_stamp(days[0] + timedelta(minutes=minutes)), recurrence=rec,
            modified=_modified(clock.now)))
        yield
    if all_day:
        return
    n = org.sf_number()
    master_id = _sf_id("00U", n)
    sf_master = _sf_record(org, n, owner=organizer, subject=base["subject"], start=days[0],
                           end=days[0] + timedelta(minutes=minutes), when=clock.now,
                           master=True, ical=_ical(name), location=base["location"],
                           description=base["body"])
    env.salesforce(0, sf_master)
    yield
    for d in days:
        env.salesforce(0, _sf_record(
            org, org.sf_number(), owner=organizer, subject=base["subject"], start=d,
            end=d + timedelta(minutes=minutes), when=clock.now, series=master_id,
            ical=_ical(name), location=base["location"], description=base["body"]))
        yield
    if rng.random() < 0.3:  # the organizer moves the whole series
        env.graph(0, organizer, master(1, location="Room 9"))
        yield
    if rng.random() < 0.15:  # the Salesforce master is edited: overwrite occurrences
        env.salesforce(0, {**sf_master, "Description": "New agenda", "Location": "Room 7",
                           "SystemModstamp": _modstamp(clock.now),
                           "LastModifiedDate": _modstamp(clock.now)})
        yield


def _from_salesforce(org: _Org, env: SandboxOrg, clock: _Clock) -> Iterator[None]:
    """Created in Salesforce by a user: goes down to Outlook, comes back with the marker."""
    rng = org.rng
    org.story_n += 1
    owner = rng.choice(list(org.users))
    n = org.sf_number()
    sf_id = _sf_id("00U", n)
    start = clock.now.replace(minute=30, second=0) + timedelta(days=rng.randint(1, 15))
    end = start + timedelta(minutes=60)
    subject = f"{rng.choice(SUBJECTS)} (from Salesforce) #{org.story_n}"
    lightning = "RRULE:FREQ=WEEKLY;INTERVAL=1;BYDAY=MO" if rng.random() < 0.05 else None
    env.salesforce(0, _sf_record(org, n, owner=owner, subject=subject, start=start, end=end,
                                 when=clock.now, lightning=lightning,
                                 location=rng.choice(ROOMS), what_id=_sf_id("001", n)))
    yield
    if lightning is None and rng.random() < 0.8:
        name = f"down-{org.story_n}"
        env.graph(0, owner, graph_event(owner, name, subject=subject, start=_stamp(start),
                                        end=_stamp(end), organizer=owner, attendees=(owner,),
                                        marker=sf_id, modified=_modified(clock.now)))
        yield


STORIES = ((_single, 0.62), (_series, 0.23), (_from_salesforce, 0.15))


def observations(n: int, seed: int) -> Iterator[Line]:
    """``n`` feed lines (settings first), deterministic in ``seed``, generated lazily."""
    rng = random.Random(seed)
    org = _Org(rng, n)
    clock = _Clock()
    yield {"kind": "org.settings", "observed_at": _modified(clock.now)[:19] + "Z",
           "payload": {"org_domains": [ORG_DOMAIN], "product_users": org.users,
                       "sync_private_items": False}}
    env = SandboxOrg()
    kinds = [k for k, _ in STORIES]
    weights = [w for _, w in STORIES]
    pool: list[Iterator[None]] = []
    written = 1
    while written < n:
        while len(pool) < POOL:
            pool.append(rng.choices(kinds, weights)[0](org, env, clock))
        i = rng.randrange(len(pool))
        try:
            next(pool[i])
        except StopIteration:
            pool[i] = pool[-1]
            pool.pop()
            continue
        for line in env.feed:
            line["observed_at"] = clock.tick(rng).strftime("%Y-%m-%dT%H:%M:%SZ")
            yield line
            written += 1
        env.feed.clear()
        env.groups.clear()


def write_feed(path: Path, n: int, seed: int) -> FeedStats:
    """Write ``n`` observations to ``path`` (JSON Lines); returns what was written."""
    stats = FeedStats()
    with path.open("wb", buffering=1 << 20) as out:
        for i, line in enumerate(observations(n, seed)):
            if i >= n:
                break
            data = orjson.dumps(line) + b"\n"
            out.write(data)
            stats.observations += 1
            stats.bytes += len(data)
            stats.kinds[str(line["kind"])] += 1
            if i == 0:
                payload = line["payload"]
                stats.product_users = len(payload["product_users"])
    stats.mailboxes = max(20, min(2000, n // 500))
    return stats


def main(argv: list[str] | None = None) -> int:
    """``python scripts/benchfeed.py --observations N --seed S OUT.jsonl``: write the feed
    alone (``scripts/bench.py`` makes it itself; this is for ingesting it by hand)."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="benchfeed.py", description=__doc__.splitlines()[0] if __doc__ else None,
        epilog="Then: syncledger ingest OUT.jsonl --db bench.db")
    parser.add_argument("out", type=Path, metavar="OUT.jsonl", help="the feed file to write")
    parser.add_argument("--observations", type=int, default=10_000, metavar="N",
                        help="lines to write (default 10,000)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    args = parser.parse_args(argv)
    if args.observations < 1:
        parser.error("--observations must be 1 or more")
    if not args.out.parent.is_dir():
        parser.error(f"the folder {args.out.parent} does not exist")
    stats = write_feed(args.out, args.observations, args.seed)
    print(f"{stats.observations:,} observations, {stats.bytes:,} bytes, "
          f"{stats.mailboxes:,} mailboxes ({stats.product_users:,} product users) -> "
          f"{args.out}")
    for kind, count in sorted(stats.kinds.items()):
        print(f"  {kind:<20} {count:>10,}")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
