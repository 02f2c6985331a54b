"""Convergence as a tested invariant: a hypothesis state machine over the emulators (issue 14).

Random outside changes on both sides (creates, edits, moves, deletions, exceptions
of a series, attendee copies, re-delivered deltas) interleaved with sync cycles,
with the production clients against the emulated cloud. After each cycle:

* no meeting has two copies on a side (two Events with one iCalUId marker, two
  items of a mailbox with one Salesforce marker);
* the mapping is one-to-one;
* a further cycle with no outside change writes nothing.

The default run is small (a few examples, a few steps). A long run:
``SYNCLEDGER_CONVERGENCE=long pytest tests/test_convergence.py -q -s`` (or
``--hypothesis-profile convergence-long``) prints examples, steps and invariant
failures. A failing example it finds is kept as an explicit test at the end of
this file (none found so far: 0 invariant failures in the last long run).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from adapters.cli.sync import run_cycle
from adapters.sandbox import org as sandbox
from adapters.sandbox.cloud import SandboxCloud
from ledger.store import Store
from projections import queries

START = datetime(2026, 11, 20, 13, 0, tzinfo=UTC)
MAILBOXES = (sandbox.ALICE, sandbox.BOB, sandbox.CAROL)
SUBJECTS = ("Roadmap sync", "Pricing call", "Onsite", "Budget review")

settings.register_profile("convergence-default", max_examples=3, stateful_step_count=5,
                          deadline=None, suppress_health_check=list(HealthCheck))
settings.register_profile("convergence-long", max_examples=60, stateful_step_count=14,
                          deadline=None, suppress_health_check=list(HealthCheck))
PROFILE = "convergence-long" if os.environ.get("SYNCLEDGER_CONVERGENCE") == "long" \
    else "convergence-default"

#: Figures of the run (printed at the end of the module with -s).
FIGURES: Counter[str] = Counter()


class Clock:
    """The cloud's and the sync's clock: moves a minute each step, never back."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def tick(self) -> None:
        self.now += timedelta(minutes=1)


@pytest.fixture(scope="module")
def shared() -> Iterator[tuple[SandboxCloud, Clock, dict[str, Any]]]:
    """One pair of emulators for the module (starting them is the slow part); each
    example starts again from the demo org's state."""
    clock = Clock()
    with SandboxCloud.demo(clock=clock) as cloud:
        initial = {"graph": cloud.graph.state(), "salesforce": cloud.salesforce.state(),
                   "saves": list(cloud.pending_saves)}
        yield cloud, clock, initial


class Convergence(RuleBasedStateMachine):
    cloud: SandboxCloud
    clock: Clock
    initial: dict[str, Any]
    folder: Path

    def __init__(self) -> None:
        super().__init__()
        cloud, clock = self.cloud, self.clock
        clock.now = START
        cloud.graph.load_state(self.initial["graph"])
        cloud.salesforce.load_state(self.initial["salesforce"])
        cloud.pending_saves = list(self.initial["saves"])
        cloud.clear_log()
        FIGURES["examples"] += 1
        self.path = self.folder / f"ledger-{FIGURES['examples']}.db"
        self.path.unlink(missing_ok=True)
        self.store = Store.open(f"sqlite:///{self.path}")
        self.n = 0
        self.synced = False

    def teardown(self) -> None:
        self.store.close()

    # --- helpers ---------------------------------------------------------------------

    def _items(self, mailbox: str, kinds: tuple[str, ...] = ("singleInstance",)
               ) -> list[dict[str, Any]]:
        return sorted((e for e in self.cloud.graph.calendar(mailbox) if e.get("type") in kinds),
                      key=lambda e: str(e["id"]))

    def _events(self) -> list[dict[str, Any]]:
        return self.cloud.salesforce.all("Event")

    def _bump(self, event: dict[str, Any]) -> dict[str, Any]:
        self.n += 1
        key = f"ck{self.n:06d}{event['id'][-8:]}"
        event["changeKey"] = key
        event["@odata.etag"] = f'W/"{key}"'
        event["lastModifiedDateTime"] = self.clock().strftime("%Y-%m-%dT%H:%M:%S.0000000Z")
        return event

    def _step(self) -> None:
        FIGURES["steps"] += 1
        self.clock.tick()

    # --- outside changes -------------------------------------------------------------

    @rule(mailbox=st.sampled_from(MAILBOXES), day=st.integers(1, 20), hour=st.integers(8, 16),
          subject=st.sampled_from(SUBJECTS), invite=st.sampled_from(MAILBOXES))
    def create_in_outlook(self, mailbox: str, day: int, hour: int, subject: str,
                          invite: str) -> None:
        """A product user organises a meeting; an invited colleague gets an attendee copy."""
        self.n += 1
        start = (START + timedelta(days=day)).replace(hour=hour)
        name = f"sm-{self.n}"
        attendees = (mailbox,) if invite == mailbox else (mailbox, invite)
        begin = start.strftime("%Y-%m-%dT%H:%M:%S")
        finish = (start + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%S")
        for box in attendees:  # the organizer's item, then the attendee's copy
            self.cloud.graph.put_event(box, sandbox.graph_event(
                box, name, subject=subject, organizer=mailbox, attendees=attendees,
                ical=sandbox._ical(name), start=begin, end=finish))
        self._step()

    @rule(owner=st.sampled_from(MAILBOXES), day=st.integers(1, 20), hour=st.integers(8, 16),
          subject=st.sampled_from(SUBJECTS))
    def create_in_salesforce(self, owner: str, day: int, hour: int, subject: str) -> None:
        self.n += 1
        start = (START + timedelta(days=day)).replace(hour=hour)
        event = sandbox.sf_event(500 + self.n, subject=subject,
                                 start=start.strftime("%Y-%m-%dT%H:%M:%S"),
                                 end=(start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S"),
                                 owner=owner, modstamp="2026-11-20T00:00:00.000+0000")
        self.cloud.salesforce.put("Event", event)
        self.cloud.salesforce.touch(event["Id"])
        self._step()

    @rule(data=st.data(), mailbox=st.sampled_from(MAILBOXES),
          subject=st.sampled_from(SUBJECTS), minutes=st.sampled_from([0, 30, -60, 1440]))
    def edit_or_move_in_outlook(self, data: st.DataObject, mailbox: str, subject: str,
                                minutes: int) -> None:
        items = self._items(mailbox)
        if not items:
            return
        item = data.draw(st.sampled_from(items))
        item["subject"] = subject
        for edge in ("start", "end"):
            when = datetime.fromisoformat(item[edge]["dateTime"][:19]) + timedelta(minutes=minutes)
            item[edge]["dateTime"] = when.strftime("%Y-%m-%dT%H:%M:%S.0000000")
        self.cloud.graph.put_event(mailbox, self._bump(item))
        self._step()

    @rule(data=st.data(), location=st.sampled_from(["Room 1", "Room 2", "Online"]),
          minutes=st.sampled_from([0, 60]))
    def edit_or_move_in_salesforce(self, data: st.DataObject, location: str,
                                   minutes: int) -> None:
        events = [e for e in self._events() if not e.get("IsRecurrence")
                  and not e.get("IsRecurrence2")]
        if not events:
            return
        event = data.draw(st.sampled_from(events))
        changes: dict[str, Any] = {"Location": location}
        if minutes and not event.get("RecurrenceActivityId"):
            for name in ("StartDateTime", "EndDateTime"):
                when = datetime.fromisoformat(event[name].replace("+0000", "+00:00"))
                changes[name] = (when + timedelta(minutes=minutes)).strftime(
                    "%Y-%m-%dT%H:%M:%S.000+0000")
        self.cloud.salesforce.touch(event["Id"], **changes)
        self._step()

    @rule(data=st.data(), mailbox=st.sampled_from(MAILBOXES))
    def delete_in_outlook(self, data: st.DataObject, mailbox: str) -> None:
        items = self._items(mailbox)
        if not items:
            return
        self.cloud.graph.remove_event(mailbox, data.draw(st.sampled_from(items))["id"])
        self._step()

    @rule(data=st.data())
    def delete_in_salesforce(self, data: st.DataObject) -> None:
        events = [e for e in self._events() if not e.get("RecurrenceActivityId")
                  or e.get("IsRecurrence")]
        if not events:
            return
        with self.cloud.salesforce.lock:
            self.cloud.salesforce._delete("Event", data.draw(st.sampled_from(events))["Id"])
        self._step()

    @rule(data=st.data(), subject=st.sampled_from(SUBJECTS))
    def exception_in_outlook(self, data: st.DataObject, subject: str) -> None:
        """One occurrence of Alice's weekly series edited on its own (an exception)."""
        occurrences = self._items(sandbox.ALICE, ("occurrence", "exception"))
        if not occurrences:
            return
        item = data.draw(st.sampled_from(occurrences))
        item["type"], item["subject"] = "exception", subject
        self.cloud.graph.put_event(sandbox.ALICE, self._bump(item))
        self._step()

    @rule(data=st.data(), location=st.sampled_from(["Room 7", "Online"]))
    def exception_in_salesforce(self, data: st.DataObject, location: str) -> None:
        children = [e for e in self._events() if e.get("RecurrenceActivityId")
                    and not e.get("IsRecurrence")]
        if not children:
            return
        self.cloud.salesforce.touch(data.draw(st.sampled_from(children))["Id"],
                                    Location=location)
        self._step()

    @rule(data=st.data(), mailbox=st.sampled_from(MAILBOXES))
    def redeliver_in_delta(self, data: st.DataObject, mailbox: str) -> None:
        """Graph delivers an item again, unchanged (same changeKey)."""
        items = self._items(mailbox, ("singleInstance", "occurrence", "exception"))
        if not items:
            return
        self.cloud.graph.put_event(mailbox, data.draw(st.sampled_from(items)))
        self._step()

    # --- the sync, and what must hold after it ---------------------------------------

    def _cycle(self) -> dict[str, Any]:
        outcome = run_cycle(self.store, self.cloud.config(), clock=self.clock,
                            saves=self.cloud.take_saves(), sleep=lambda s: None,
                            on_step=lambda s: None, allow_mass_change=True)
        assert outcome["error"] is None, outcome["error"]
        return outcome

    @rule()
    def sync(self) -> None:
        self.cloud.clear_log()
        self._cycle()
        FIGURES["cycles"] += 1
        self.clock.tick()
        self.cloud.clear_log()
        again = self._cycle()  # no outside change since: nothing to write
        FIGURES["cycles"] += 1
        self._check(again["writes"] == [] and self.cloud.writes() == [],
                    f"a cycle with no outside change wrote {again['writes']}")
        self.synced = True
        self.clock.tick()

    def _check(self, ok: bool, message: str) -> None:
        FIGURES["invariant checks"] += 1
        if not ok:
            FIGURES["invariant failures"] += 1
        assert ok, message

    @precondition(lambda self: self.synced)
    @invariant()
    def one_copy_per_side_and_one_to_one_mapping(self) -> None:
        if not self.synced:
            return
        self.synced = False
        marker = sandbox.ICAL_FIELD
        markers = Counter(e[marker] for e in self._events() if e.get(marker)
                          and (not e.get("RecurrenceActivityId") or e.get("IsRecurrence")))
        self._check(all(n == 1 for n in markers.values()),
                    f"two Salesforce copies of one meeting: {markers}")
        for mailbox in MAILBOXES:
            stamped = Counter(p["value"] for e in self._items(mailbox, ("singleInstance",
                                                                        "seriesMaster"))
                              for p in e.get("singleValueExtendedProperties") or [])
            self._check(all(n == 1 for n in stamped.values()),
                        f"two Outlook copies of one Event in {mailbox}: {stamped}")
        rows = queries.mapping(self.store)
        self._check(len({r["salesforce_id"] for r in rows}) == len(rows),
                    "a Salesforce Id mapped twice")
        self._check(len({(r["mailbox"], r["exchange_id"]) for r in rows}) == len(rows),
                    "an Exchange item mapped twice")


def test_sync_converges_under_random_changes_on_both_sides(
        shared: tuple[SandboxCloud, Clock, dict[str, Any]], tmp_path: Path) -> None:
    Convergence.cloud, Convergence.clock, Convergence.initial = shared
    Convergence.folder = tmp_path
    before = Counter(FIGURES)
    run = Convergence.TestCase
    run.settings = settings.get_profile(PROFILE)
    run("runTest").runTest()
    done = FIGURES - before
    print(f"\nconvergence ({PROFILE}): {done['examples']} examples, {done['steps']} outside "
          f"changes, {done['cycles']} sync cycles, {done['invariant checks']} invariant "
          f"checks, {done['invariant failures']} invariant failures")
    assert done["examples"] >= 1 and done["invariant failures"] == 0
