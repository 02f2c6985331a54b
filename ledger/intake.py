"""Intake: domain observations into the ledger, many meetings per transaction.

Each observation is routed to its meeting (``route``), decided by the
aggregate, and saved in batches together with the external-id index rows and
any quarantined input, in one transaction per batch. Intake is idempotent:
an observation the ledger already holds appends nothing. Several writers may
ingest into one ledger at once: a batch whose decisions another writer made
stale meanwhile (it appended to one of the batch's meetings, or changed an
index row the batch was routed by) is refused at commit and decided again on
fresh state, so the ledger is what one writer taking the batches in commit
order makes.
Bad input never stops a batch: it is quarantined with the reason. An
observation that waits for one not recorded yet (an occurrence before its
series master, a save before its item, a removal before what it removes) is
parked (``ledger.parking``) and taken again right after the observation that
records what it waits for, in that observation's transaction; a parked removal
past its retention is dropped in the transaction of a later batch.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from itertools import islice
from typing import Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError

from ledger.directory import NO_PEOPLE, Directory, People
from ledger.gc_passes import fewer_gc_passes
from ledger.identity import (
    DIRECTORY_ID,
    ORG_SETTINGS_ID,
    exchange_index_key,
    ical_key,
    is_salesforce_id,
    meeting_id,
    salesforce_id18,
    salesforce_key,
    uuid_of,
    waiting_key,
)
from ledger.meeting import Meeting
from ledger.observations import (
    ORG_LEVEL,
    CalendarRead,
    ExchangeItemGone,
    ExchangeItemSeen,
    GuardNoted,
    Observation,
    PersonSeen,
    SalesforceEventGone,
    SalesforceEventSeen,
    SettingsChanged,
    SidebarSave,
    SuspensionNoted,
    WriteRefused,
    from_record,
    to_record,
)
from ledger.org import Org
from ledger.parking import ParkedLine, dropped, newer
from ledger.safety import Safety
from ledger.settings import OrgSettings
from ledger.store import SideRows, Store


class InputError(Exception):
    """Bad input that names where it was and which field is wrong."""

    def __init__(self, message: str, *, line_no: int | None = None, item_id: str | None = None,
                 field: str | None = None) -> None:
        super().__init__(message)
        self.line_no = line_no
        self.item_id = item_id
        self.field = field


@dataclass(frozen=True)
class Intake:
    """One unit of input: where it came from, its raw bytes, and what it says."""

    source: str
    line_no: int | None
    raw: bytes
    observation: Observation | InputError
    #: ``to_record(observation)`` when the reader already made it (a feed read in a
    #: child process hands records over); saves making it a second time.
    record: dict[str, Any] | None = None


@dataclass
class IntakeResult:
    read: int = 0
    appended: int = 0  # events
    duplicates: int = 0  # observations already recorded
    ignored: int = 0  # Outlook items with neither an iCalUId nor a series master
    parked: int = 0  # observations newly waiting for one not recorded yet
    unparked: int = 0  # parked observations taken again (their dependency arrived)
    #: parked removals dropped past ``parked_removal_max_age_hours`` (``ledger.parking``)
    parked_dropped: int = 0
    quarantined: int = 0
    opened: int = 0  # meetings new to the ledger
    meetings: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)

    def add(self, other: IntakeResult) -> None:
        """Fold another file's result into this one (``ingest`` of several files)."""
        self.read += other.read
        self.appended += other.appended
        self.duplicates += other.duplicates
        self.ignored += other.ignored
        self.parked += other.parked
        self.unparked += other.unparked
        self.parked_dropped += other.parked_dropped
        self.quarantined += other.quarantined
        self.opened += other.opened
        self.meetings |= other.meetings
        self.errors += other.errors

    def as_dict(self) -> dict[str, Any]:
        return {"lines_read": self.read, "events_appended": self.appended,
                "duplicates_skipped": self.duplicates, "ignored": self.ignored,
                "parked": self.parked, "unparked": self.unparked,
                "parked_dropped": self.parked_dropped,
                "quarantined": self.quarantined, "meetings_touched": len(self.meetings),
                "meetings_opened": self.opened,
                "errors": self.errors}


#: Times a batch is decided again in a writer's turn before intake gives up (once is
#: enough when every writer takes turns).
REDO_LIMIT = 3

#: Index keys the first meeting to claim keeps: an iCalUId, and a Salesforce Id named
#: by an Exchange copy's marker (the Event's own observation claims it otherwise).
_FIRST_CLAIM = ("ical:", "sf:")


class _Waiting(Exception):
    """An observation whose dependency (the index key ``key``) is not recorded yet."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def waits_for(obs: Observation) -> str | None:
    """The index key an observation cannot be routed without (None: it never waits)."""
    if isinstance(obs, ExchangeItemSeen):
        return exchange_index_key(obs.mailbox, obs.series_master_id) \
            if obs.series_master_id else None
    if isinstance(obs, (ExchangeItemGone, SidebarSave)):
        return exchange_index_key(obs.mailbox, obs.item_id)
    if isinstance(obs, SalesforceEventGone):
        return salesforce_key(obs.event_id)
    return None


def route_keys(obs: Observation) -> tuple[list[str], str | None]:
    """Index keys that may already name this observation's meeting, most specific
    first, and the key a new meeting would be derived from (None: must be known)."""
    if isinstance(obs, ExchangeItemSeen):
        keys = [exchange_index_key(obs.mailbox, obs.item_id)]
        if obs.salesforce_marker:
            keys.append(salesforce_key(obs.salesforce_marker))
        if obs.series_master_id:
            keys.append(exchange_index_key(obs.mailbox, obs.series_master_id))
            return keys, None
        if obs.ical_uid:
            keys.append(ical_key(obs.ical_uid))
            return keys, ical_key(obs.ical_uid)
        return keys, None
    if isinstance(obs, (ExchangeItemGone, SidebarSave)):
        return [exchange_index_key(obs.mailbox, obs.item_id)], None
    if isinstance(obs, SalesforceEventSeen):
        keys = [salesforce_key(obs.event_id)]
        if obs.ical_marker:
            keys.append(ical_key(obs.ical_marker))
        if obs.series_id:
            keys.append(salesforce_key(obs.series_id))
        if obs.ical_marker:
            return keys, ical_key(obs.ical_marker)
        return keys, salesforce_key(obs.series_id or obs.event_id)
    if isinstance(obs, SalesforceEventGone):
        return [salesforce_key(obs.event_id)], None
    if isinstance(obs, WriteRefused):
        return [], None  # names its meeting by id (``Ledger._route``)
    raise TypeError(type(obs).__name__)


def index_keys(obs: Observation) -> list[str]:
    """Keys under which later observations must find this meeting."""
    if isinstance(obs, ExchangeItemSeen):
        keys = [exchange_index_key(obs.mailbox, obs.item_id), "exid:" + obs.item_id]
        if obs.ical_uid:
            keys.append(ical_key(obs.ical_uid))
        if obs.salesforce_marker and is_salesforce_id(obs.salesforce_marker):
            # Adoption: the Salesforce Event this copy names must join this meeting,
            # even when a fresh ledger sees the Exchange copy first (issue 14).
            keys.append(salesforce_key(obs.salesforce_marker))
        return keys
    if isinstance(obs, SalesforceEventSeen):
        return [salesforce_key(obs.event_id)]
    return []


class Ledger:
    """Writes observations into a store; keeps recently used meetings in memory."""

    def __init__(self, store: Store, *, batch_size: int = 2000, cache_size: int = 2000,
                 field_names: Mapping[str, str] | None = None,
                 redact_raw: Callable[[bytes], bytes | None] | None = None) -> None:
        self.store = store
        #: blanks a private item's content in a raw line before it is quarantined (the
        #: adapters know the wire); applied while the org does not sync private items
        self.redact_raw = redact_raw
        #: how the input names a domain field, for quarantine rows (the adapters know)
        self.field_names = dict(field_names or {})
        self.batch_size = batch_size
        self.cache_size = cache_size
        self._cache: OrderedDict[UUID, Meeting] = OrderedDict()
        self._org: Org | None = None
        self._directory: Directory | None = None
        self._directory_loaded = False
        self._settings: tuple[Org | None, int, OrgSettings] | None = None
        # Read ahead once per window of input (one query instead of one per
        # observation): index rows of the window's keys (None: no row), and
        # whether the window's meetings have any event yet. Flushes keep both
        # current, so they answer as the store would.
        self._keys: dict[str, str | None] = {}
        self._exists: dict[UUID, bool] = {}
        #: route_keys / index_keys of the window's observations, by ``id`` (each is
        #: asked twice: by the read-ahead and when the observation is taken)
        self._routes: dict[int, tuple[list[str], str | None]] = {}
        self._indexes: dict[int, list[str]] = {}
        #: parked observations known to this ledger object, by the key they wait for:
        #: read ahead from the store for each window, plus those parked since
        self._parked: dict[str, dict[tuple[str, str], ParkedLine]] = {}
        #: (source, digest) of parked observations taken again by this object
        self._unparked: set[tuple[str, str]] = set()
        #: whether the store held parked rows when intake started (None: not asked)
        self._stored_parked: bool | None = None
        #: index keys whose parked rows were read from the store
        self._parked_read: set[str] = set()

    def _forget_read_ahead(self) -> None:
        """Drop what the last window read ahead (a new window, or it went stale)."""
        self._keys = {}
        self._exists = {}
        self._routes = {}
        self._indexes = {}

    # --- settings -----------------------------------------------------

    def org(self) -> Org | None:
        if self._org is None:
            self._org = self.store.org()
        return self._org

    def settings(self) -> OrgSettings:
        """Settings in force; folded once per org version, not once per observation."""
        org = self.org()
        version = org.version if org is not None else 0
        cached = self._settings
        if cached is not None and cached[0] is org and cached[1] == version:
            return cached[2]
        settings = org.settings() if org is not None else OrgSettings()
        self._settings = (org, version, settings)
        return settings

    def directory(self) -> Directory | None:
        if not self._directory_loaded:
            self._directory = self.store.directory()
            self._directory_loaded = True
        return self._directory

    def people(self) -> People:
        """The directory in force, for the meetings' decisions."""
        return self.directory() or NO_PEOPLE

    def _lookup(self, keys: list[str]) -> dict[str, str]:
        """Index rows of ``keys``: from the window's read-ahead, else from the store."""
        known = self._keys
        missing = [k for k in keys if k not in known]
        if missing:
            found = self.store.lookup_keys(missing)
            for k in missing:
                known[k] = found.get(k)
        out: dict[str, str] = {}
        for k in keys:
            hit = known[k]
            if hit is not None:
                out[k] = hit
        return out

    def _read_ahead(self, window: list[Intake]) -> None:
        """One look-up of every index key and new meeting id the window may need."""
        self._forget_read_ahead()
        routes, indexes = self._routes, self._indexes
        keys: set[str] = set()
        derived: set[str] = set()
        for item in window:
            obs = item.observation
            if isinstance(obs, (InputError, SettingsChanged, PersonSeen, *ORG_LEVEL)):
                continue
            try:
                route = routes[id(obs)] = route_keys(obs)
                index = indexes[id(obs)] = index_keys(obs)
            except Exception:  # let _take meet (and quarantine) it as before
                continue
            keys.update(route[0])
            keys.update(index)
            if route[1] is not None:
                derived.add(route[1])
        if keys:
            found = self.store.lookup_keys(keys)
            self._keys = {k: found.get(k) for k in keys}
            self._read_parked(keys)
        cache = self._cache
        ids = {mid for mid in map(meeting_id, derived) if mid not in cache}
        if ids:
            present = self.store.existing(ids)
            self._exists = {mid: mid in present for mid in ids}

    def _read_parked(self, keys: Iterable[str]) -> None:
        """Parked lines in the store waiting for any of ``keys`` (Exchange items and
        Salesforce Events), once per key, when the store holds any."""
        if self._stored_parked is None:
            self._stored_parked = self.store.parked_count() > 0
        if not self._stored_parked:
            return
        wanted = {k for k in keys if k.startswith(("ex:", "sf:"))} - self._parked_read
        if not wanted:
            return
        self._parked_read |= wanted
        for line in self.store.parked_waiting(wanted):
            if line.ident not in self._unparked:
                self._parked.setdefault(line.waits_for, {}).setdefault(line.ident, line)

    # --- intake -------------------------------------------------------

    def ingest(
        self,
        items: Iterable[Intake],
        progress: Callable[[IntakeResult], None] | None = None,
        checkpoints: dict[str, str] | None = None,
    ) -> IntakeResult:
        with fewer_gc_passes():
            return self._ingest(items, progress, checkpoints)

    def _ingest(
        self,
        items: Iterable[Intake],
        progress: Callable[[IntakeResult], None] | None,
        checkpoints: dict[str, str] | None,
    ) -> IntakeResult:
        result = IntakeResult()
        batch = self._batch()
        for item in _windows(items, max(self.batch_size, 1), self._read_ahead):
            result.read += 1
            if isinstance(item.observation, (SettingsChanged, PersonSeen, *ORG_LEVEL)):
                # Settings, people, full reads and guard notes get a transaction of their
                # own, so the log shows them exactly between the decisions made around them.
                self._flush(batch, result)
                batch = self._batch()
                batch.items.append(item)
                self._take(item, batch, batch.result)
                self._flush(batch, result)
                batch = self._batch()
                continue
            batch.items.append(item)
            self._take(item, batch, batch.result)
            if batch.size >= self.batch_size:
                self._flush(batch, result)
                batch = self._batch()
                if progress:
                    progress(result)
        self._forget_read_ahead()
        batch.checkpoints.update(checkpoints or {})
        self._flush(batch, result)
        if progress:
            progress(result)
        return result

    def _take(self, item: Intake, batch: _Batch, result: IntakeResult) -> None:
        obs = item.observation
        if isinstance(obs, InputError):
            self._quarantine(item, obs, batch, result)
            return
        try:
            if isinstance(obs, SettingsChanged):
                org = self.org() or Org.start(obs.observed_at)
                self._org = org
                before = len(org.pending_events)
                if org.change(obs.changes, obs.observed_at):
                    batch.org = org
                    result.appended += len(org.pending_events) - before
                else:
                    result.duplicates += 1
                return
            if isinstance(obs, PersonSeen):
                self._take_person(item, obs, batch, result)
                return
            if isinstance(obs, ORG_LEVEL):
                safety = batch.safety or self.store.safety() or Safety.start(obs.observed_at)
                before = len(safety.pending_events)
                if safety.observe(obs):
                    batch.safety = safety
                    batch.safety_observations.append(obs)
                    result.appended += len(safety.pending_events) - before
                else:
                    result.duplicates += 1
                return
            mid = self._route(obs, batch)
        except _Waiting as exc:
            self._park(item, obs, exc.key, batch, result)
            return
        except InputError as exc:
            self._quarantine(item, exc, batch, result)
            return
        except Exception as exc:  # poison: quarantine this observation, go on with the rest
            self._quarantine(item, InputError(f"could not be routed: {type(exc).__name__}: "
                                              f"{exc}", line_no=item.line_no,
                                              item_id=_item_id(obs)), batch, result)
            return
        if mid is None:
            result.ignored += 1
            return
        batch.newest = newer(batch.newest, obs.observed_at)
        try:
            meeting = self._load(mid, batch, obs)
        except Exception as exc:  # poison: quarantine this observation, go on with the rest
            self._quarantine(item, InputError(f"could not be loaded: {type(exc).__name__}: "
                                              f"{exc}", line_no=item.line_no,
                                              item_id=_item_id(obs)), batch, result)
            return
        before = len(meeting.pending_events)
        self._expect_context(batch, people=True)
        waiting = self._waiting(meeting)
        try:
            recorded = meeting.observe(obs, self.settings(), item.record, self.people())
        except Exception as exc:  # a payload the rules cannot read: keep it, go on
            self._forget(meeting, batch)
            self._quarantine(item, InputError(f"could not be decided: {type(exc).__name__}: "
                                              f"{exc}",
                                              line_no=item.line_no, item_id=_item_id(obs)),
                             batch, result)
            return
        if not recorded:
            result.duplicates += 1
            return
        batch.observations.setdefault(meeting.id, []).append(obs)
        batch.count += 1
        result.appended += len(meeting.pending_events) - before
        hex_id = meeting.id.hex
        result.meetings.add(hex_id)
        index = self._indexes.get(id(obs))
        if index is None:
            index = index_keys(obs)
        for key in index:
            known = batch.keys.get(key)
            if known is None:
                known = self._lookup([key]).get(key)
                if key.startswith(_FIRST_CLAIM):  # claimed by this meeting, or kept
                    _expect(batch, key, (None, hex_id) if known is None else (known,))
                elif known == hex_id:  # not written: must still name this meeting
                    _expect(batch, key, (hex_id,))
            if known is None or (not key.startswith(_FIRST_CLAIM) and known != hex_id):
                batch.keys[key] = hex_id
        self._index_waiting(meeting, batch, waiting)
        self._read_parked(index)  # keys no window read ahead (a line taken from parked)
        for key in index:
            if key in self._parked:
                self._take_parked(key, batch, result)

    # --- parking (``ledger.parking``) ---------------------------------

    def _park(self, item: Intake, obs: Observation, key: str, batch: _Batch,
              result: IntakeResult) -> None:
        """Keep an observation that waits for ``key`` until an observation records it."""
        raw = item.raw
        if self.redact_raw is not None and not self.settings().sync_private_items:
            raw = self.redact_raw(raw) or raw
        record = item.record or to_record(obs)
        line = ParkedLine(waits_for=key, source=item.source, line_no=item.line_no,
                          kind=obs.kind, item_id=_item_id(obs),
                          mailbox=getattr(obs, "mailbox", None),
                          observed_at=obs.observed_at, record=record, raw=raw)
        waiting = self._parked.setdefault(key, {})
        batch.newest = newer(batch.newest, obs.observed_at)
        if line.ident in waiting:
            result.duplicates += 1  # parked before (this run or an earlier one)
            return
        waiting[line.ident] = line
        self._unparked.discard(line.ident)
        batch.park.append(line)
        batch.count += 1
        result.parked += 1

    def _take_parked(self, key: str, batch: _Batch, result: IntakeResult) -> None:
        """The observations waiting for ``key``, just recorded: take them now, oldest
        first, and drop their parked rows in this batch's transaction."""
        waiting = self._parked.pop(key, {})
        if waiting:
            batch.unpark_keys.add(key)
        for line in sorted(waiting.values(), key=lambda p: (p.observed_at, p.source,
                                                             p.line_no or 0)):
            self._unparked.add(line.ident)
            batch.unpark.append(line.ident)
            result.unparked += 1
            self._take(Intake(line.source, line.line_no, line.raw, from_record(line.record),
                              line.record), batch, result)

    def _waiting(self, meeting: Meeting) -> set[str]:
        """The emails the meeting waits on (``Meeting.waiting_for``), none when it cannot
        wait on any (no unresolved attendee, no ``with_contacts`` auto-save)."""
        settings = self.settings()
        if not (meeting.unresolved or settings.auto_save == "with_contacts"):
            return set()
        return set(meeting.waiting_for(settings))

    def _index_waiting(self, meeting: Meeting, batch: _Batch, before: set[str]) -> None:
        """Index rows for the emails this meeting waits on (a later person finds it),
        and the rows of those it waited on ``before`` and no longer does (the email
        was resolved, or the attendee left the meeting) deleted, in the transaction of
        the events that say so."""
        hex_id = meeting.id.hex
        now = self._waiting(meeting)
        for email in sorted(before - now):
            key = waiting_key(email, hex_id)
            batch.keys.pop(key, None)
            batch.dropped[key] = hex_id
        for email in sorted(now):
            key = waiting_key(email, hex_id)
            batch.dropped.pop(key, None)
            batch.keys[key] = hex_id

    def _take_person(self, item: Intake, obs: PersonSeen, batch: _Batch,
                     result: IntakeResult) -> None:
        """Record a person in the directory, then bring back every meeting waiting on
        that email: an unresolved attendee becomes a relation (DOMAIN.md §12)."""
        directory = self.directory() or Directory.start(obs.observed_at)
        self._directory = directory
        before = len(directory.pending_events)
        if not directory.observe(obs):
            result.duplicates += 1
            return
        batch.directory = directory
        result.appended += len(directory.pending_events) - before
        prefix = waiting_key(obs.email, "")
        waiting = self.store.keys_with_prefix(prefix)
        # Holds while no other writer adds (or drops) a meeting waiting on this email.
        batch.expect_prefixes[prefix] = tuple(sorted(waiting))
        self._expect_context(batch, people=False)
        for mid in sorted({uuid_of(h) for h in waiting.values()}):
            meeting = batch.meetings.get(mid) or self._cache.get(mid) or self._from_store(mid)
            if meeting is None:
                continue
            batch.meetings[mid] = meeting
            before = len(meeting.pending_events)
            waited = self._waiting(meeting)
            try:
                recorded = meeting.observe(obs, self.settings(), None, directory)
            except Exception as exc:  # keep the person; report the meeting, go on
                self._forget(meeting, batch)
                result.errors.append(f"meeting {mid.hex}: could not relate {obs.email}: "
                                     f"{exc!r}")
                continue
            if recorded:
                batch.observations.setdefault(mid, []).append(obs)
                result.appended += len(meeting.pending_events) - before
                result.meetings.add(mid.hex)
                self._index_waiting(meeting, batch, waited)

    def _expect_context(self, batch: _Batch, *, people: bool) -> None:
        """The batch holds while the settings (and ``people``: the directory) it decided
        with are the latest: this ledger object reads them once, not per batch."""
        if ORG_SETTINGS_ID not in batch.expect_versions:
            org = self.org()
            batch.expect_versions[ORG_SETTINGS_ID] = org.version if org is not None else 0
        if people and DIRECTORY_ID not in batch.expect_versions:
            directory = self.directory()
            batch.expect_versions[DIRECTORY_ID] = \
                directory.version if directory is not None else 0

    def _route(self, obs: Observation, batch: _Batch) -> UUID | None:
        if isinstance(obs, WriteRefused):
            try:
                named = UUID(obs.meeting_id)
            except ValueError:
                raise InputError(f"{obs.meeting_id!r} is not a meeting id",
                                 item_id=obs.write_key, field="payload.meetingId") from None
            if named in batch.meetings or named in self._cache or self._from_store(named):
                return named
            raise InputError(f"refused write {obs.write_key}: no meeting {named} in the ledger",
                             item_id=obs.write_key, field="payload.meetingId")
        keys, derived = self._routes.get(id(obs)) or route_keys(obs)
        pending = [k for k in keys if k not in batch.keys]
        found = self._lookup(pending) if pending else {}
        # The route holds while the keys read before the one it took still name no
        # meeting (or this one), and that one still names this one.
        absent: list[str] = []
        mid: UUID | None
        for key in keys:
            own = batch.keys.get(key)
            if own:
                mid = uuid_of(own)
                break
            hit = found.get(key)
            if hit:
                _expect(batch, key, (hit,))
                mid = uuid_of(hit)
                break
            absent.append(key)
        else:
            mid = meeting_id(derived) if derived is not None else None
        for key in absent:
            _expect(batch, key, (None,) if mid is None else (None, mid.hex))
        if mid is not None:
            return mid
        wanted = waits_for(obs)
        if wanted is not None:
            raise _Waiting(wanted)
        return None

    def _load(self, mid: UUID, batch: _Batch, obs: Observation) -> Meeting:
        meeting = batch.meetings.get(mid) or self._cache.get(mid)
        if meeting is None:
            meeting = self._from_store(mid)
        if meeting is None:
            _, derived = route_keys(obs)
            assert derived is not None and meeting_id(derived) == mid
            meeting = Meeting.open(derived, obs.observed_at)
        batch.meetings[mid] = meeting
        return meeting

    def _from_store(self, mid: UUID) -> Meeting | None:
        if self._exists.get(mid) is False:  # read ahead: no event yet, nothing to load
            return None
        try:
            return self.store.meeting(mid)
        except Exception as exc:
            if type(exc).__name__ == "AggregateNotFoundError":
                return None
            raise

    def _forget(self, meeting: Meeting, batch: _Batch) -> None:
        """Rebuild a meeting from the store plus this batch's earlier observations."""
        self._cache.pop(meeting.id, None)
        fresh = self._from_store(meeting.id)
        earlier = batch.observations.get(meeting.id, [])
        if fresh is None and earlier:
            _, derived = route_keys(earlier[0])
            assert derived is not None
            fresh = Meeting.open(derived, earlier[0].observed_at)
        if fresh is None:
            batch.meetings.pop(meeting.id, None)
            return
        for obs in earlier:
            fresh.observe(obs, self.settings(), None, self.people())
        batch.meetings[meeting.id] = fresh

    def _field(self, name: str) -> str:
        return self.field_names.get(name, name)

    def _quarantine(self, item: Intake, err: InputError, batch: _Batch,
                    result: IntakeResult) -> None:
        line = err.line_no if err.line_no is not None else item.line_no
        observed_at = getattr(item.observation, "observed_at", None)
        raw, message = item.raw, str(err)
        if self.redact_raw is not None and not self.settings().sync_private_items:
            blanked = self.redact_raw(raw)
            if blanked is not None:
                raw, message = blanked, f"{message} (private item: subject, body, location " \
                    "and attendees blanked in the kept line)"
        batch.quarantine.append((item.source, line, err.item_id, err.field, message,
                                 raw, observed_at))
        batch.count += 1
        result.quarantined += 1
        where = f"{item.source} line {line}" if line is not None else item.source
        result.errors.append(f"{where}: {err}")

    # --- saving -------------------------------------------------------

    def _batch(self) -> _Batch:
        """A new batch, with what it needs to be decided again (``_redo``)."""
        return _Batch(unparked_before=set(self._unparked))

    def _flush(self, batch: _Batch, result: IntakeResult) -> None:
        """Save the batch; when another writer made its decisions stale meanwhile (it
        appended to one of its meetings, or changed an index row it was routed by),
        decide it again in this writer's turn, when no other writer can commit."""
        try:
            self._save(batch)
        except IntegrityError:
            for attempt in range(REDO_LIMIT):
                try:
                    with self.store.writer_turn():
                        batch = self._redo(batch)
                        self._save(batch)
                    break
                except IntegrityError:  # only a writer that does not take turns
                    if attempt == REDO_LIMIT - 1:
                        raise
        result.add(batch.result)

    def _save(self, batch: _Batch) -> None:
        retention: int | None = None
        if batch.newest is not None:
            # parked removals past their retention go with this batch: the retention it
            # reads must be the one in force when it commits
            self._expect_context(batch, people=False)
            retention = self.settings().parked_removal_max_age_hours
        side = SideRows(keys=batch.keys, quarantine=batch.quarantine,
                        checkpoints=batch.checkpoints, park=batch.park, unpark=batch.unpark,
                        unpark_keys=batch.unpark_keys,
                        dropped=batch.dropped, expect=batch.expect, newest=batch.newest,
                        expect_versions=batch.expect_versions,
                        expect_prefixes=batch.expect_prefixes,
                        removal_max_age_hours=retention)
        aggregates: list[Meeting | Org | Directory | Safety] = [
            m for m in batch.meetings.values() if m.pending_events]
        if batch.org is not None:
            aggregates.append(batch.org)
        if batch.directory is not None and batch.directory.pending_events:
            aggregates.append(batch.directory)
        if batch.safety is not None:
            aggregates.append(batch.safety)
        # An aggregate whose events are all pending is new: its opening event was made
        # before the observation that opened it was counted, so it is counted here.
        new = [a for a in aggregates if a.version == len(a.pending_events)]
        self.store.save(*aggregates, side=side)
        if side.removals_dropped:
            batch.result.parked_dropped += side.removals_dropped
            self._forget_dropped(side.dropped_below)
        batch.result.appended += len(new)
        batch.result.opened += sum(1 for a in new if isinstance(a, Meeting))
        self._keys.update(batch.keys)  # what the store's index now says
        for key in batch.dropped:
            self._keys.pop(key, None)
        for mid, meeting in batch.meetings.items():
            self._exists[mid] = True
            self._cache[mid] = meeting
            self._cache.move_to_end(mid)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    def _forget_dropped(self, bound: str | None) -> None:
        """Parked lines the store just dropped (``parking.dropped`` at ``bound``), out of
        what this object knows, as a later run would not find them."""
        for key in list(self._parked):
            waiting = self._parked[key]
            for ident in [i for i, line in waiting.items()
                          if dropped(line.kind, line.observed_at, bound)]:
                del waiting[ident]
            if not waiting:
                del self._parked[key]

    def _redo(self, batch: _Batch) -> _Batch:
        """The batch's input decided again on what the store holds now (another writer
        committed meanwhile): everything read before is forgotten, parked lines too
        (read again from the store: another writer may have taken or dropped some), and
        its own checkpoints are kept."""
        self._cache.clear()
        self._forget_read_ahead()
        self._org = None
        self._settings = None
        self._directory, self._directory_loaded = None, False
        self._parked, self._unparked = {}, batch.unparked_before
        self._stored_parked = None  # another writer may have parked lines
        self._parked_read = set()
        fresh = self._batch()
        fresh.items = batch.items
        fresh.checkpoints = dict(batch.checkpoints)
        self._read_ahead(batch.items)
        for item in batch.items:
            self._take(item, fresh, fresh.result)
        return fresh


@dataclass
class _Batch:
    #: the input taken in this batch (a line taken from parked comes with its dependency)
    items: list[Intake] = field(default_factory=list)
    #: what taking it did, added to the run's result once the batch is saved
    result: IntakeResult = field(default_factory=IntakeResult)
    #: index rows the batch's routes and index rows were decided on (``SideRows.expect``)
    expect: dict[str, tuple[str | None, ...]] = field(default_factory=dict)
    #: versions of the settings and directory it was decided with, index rows read by
    #: prefix (``SideRows.expect_versions``, ``expect_prefixes``)
    expect_versions: dict[UUID, int] = field(default_factory=dict)
    expect_prefixes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: the parked lines taken before the batch began (``Ledger._redo`` starts from them)
    unparked_before: set[tuple[str, str]] = field(default_factory=set)
    meetings: dict[UUID, Meeting] = field(default_factory=dict)
    observations: dict[UUID, list[Observation]] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    dropped: dict[str, str] = field(default_factory=dict)  # index rows to delete
    quarantine: list[tuple[str, int | None, str | None, str | None, str, bytes, str | None]] = \
        field(default_factory=list)
    checkpoints: dict[str, str] = field(default_factory=dict)
    park: list[ParkedLine] = field(default_factory=list)
    unpark: list[tuple[str, str]] = field(default_factory=list)
    unpark_keys: set[str] = field(default_factory=set)  # the keys they waited for
    newest: str | None = None  # the newest observed_at recorded or parked
    org: Org | None = None
    directory: Directory | None = None
    #: full reads and guard notes get a transaction of their own, like settings
    safety: Safety | None = None
    safety_observations: list[CalendarRead | GuardNoted | SuspensionNoted] = field(
        default_factory=list)
    count: int = 0  # observations recorded + lines quarantined

    @property
    def size(self) -> int:
        return self.count


def _expect(batch: _Batch, key: str, allowed: tuple[str | None, ...]) -> None:
    """The batch holds while index row ``key`` names one of ``allowed`` (None: no row)."""
    before = batch.expect.get(key)
    batch.expect[key] = allowed if before is None else tuple(v for v in before if v in allowed)


def _windows(source: Iterable[Intake], size: int,
             read_ahead: Callable[[list[Intake]], None]) -> Iterable[Intake]:
    """The input in windows of ``size``, each announced to ``read_ahead`` first."""
    it = iter(source)
    while True:
        window = list(islice(it, size))
        if not window:
            return
        read_ahead(window)
        yield from window


def _item_id(obs: Observation) -> str | None:
    for name in ("item_id", "event_id"):
        value = getattr(obs, name, None)
        if isinstance(value, str):
            return value
    return None


__all__ = ["ORG_SETTINGS_ID", "Intake", "IntakeResult", "Ledger", "salesforce_id18"]
