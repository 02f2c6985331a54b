"""Opening the ledger's event store: SQLite file by default, PostgreSQL by URL.

The store is an ``eventsourcing`` application whose recorder also writes the
ledger's side tables in the same transaction as the events: the external-id
index (which meeting an Exchange or Salesforce id belongs to), the quarantine
of bad observations, and adapter checkpoints (Graph delta links, Salesforce
watermarks). One transaction means a crash never leaves an event without its
index row, or a checkpoint ahead of the observations it produced.
"""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, TypeVar, cast
from urllib.parse import parse_qs, quote, unquote, urlparse
from uuid import UUID

import orjson
from eventsourcing.application import Application
from eventsourcing.domain import CanMutateAggregate
from eventsourcing.persistence import IntegrityError, StoredEvent, Transcoder
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import (
    SQLiteApplicationRecorder,
    SQLiteConnection,
    SQLiteConnectionPool,
    SQLiteCursor,
    SQLiteFactory,
    SQLiteTransaction,
)
from eventsourcing.utils import get_topic
from psycopg import sql

from ledger.codec import OrjsonTranscoder, encode_state
from ledger.directory import Directory
from ledger.identity import DIRECTORY_ID, ORG_SETTINGS_ID
from ledger.meeting import Meeting
from ledger.org import Org
from ledger.parking import QUIET_KINDS, ParkedLine, drop_bound, newer
from ledger.safety import SAFETY_ID, Safety

DEFAULT_DB = "syncledger.db"
SNAPSHOT_INTERVAL = 100
#: Seconds a SQLite writer waits for another one's write lock before giving up.
SQLITE_BUSY_TIMEOUT = 120
#: Seconds a PostgreSQL writer's turn (``Store.writer_turn``) may sit idle while its batch
#: is decided again, before the server ends the session (and releases the lock).
TURN_IDLE_S = 600

SIDE_TABLES = (
    # SQLite: WITHOUT ROWID, so an index row is one B-tree entry, not a table row
    # plus its primary-key index (intake upserts hundreds per transaction).
    "CREATE TABLE IF NOT EXISTS {p}meeting_keys ("
    " key TEXT PRIMARY KEY, meeting_id TEXT NOT NULL){without_rowid}",
    "CREATE TABLE IF NOT EXISTS {p}quarantine ("
    " id {serial}, source TEXT NOT NULL, line_no INTEGER, item_id TEXT, field TEXT,"
    " error TEXT NOT NULL, raw {blob} NOT NULL, observed_at TEXT, digest TEXT)",
    "CREATE TABLE IF NOT EXISTS {p}checkpoints ("
    " name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    # Observations waiting for one not recorded yet (``ledger.parking``).
    "CREATE TABLE IF NOT EXISTS {p}parked ("
    " id {serial}, waits_for TEXT NOT NULL, source TEXT NOT NULL, line_no INTEGER,"
    " kind TEXT NOT NULL, item_id TEXT, mailbox TEXT, observed_at TEXT NOT NULL,"
    " record TEXT NOT NULL, raw {blob} NOT NULL, digest TEXT NOT NULL)",
)
#: Parked rows: one per source and observation, found by the key they wait for.
PARKED_INDEXES = ("CREATE UNIQUE INDEX IF NOT EXISTS parked_line ON {p}parked (source, digest)",
                  "CREATE INDEX IF NOT EXISTS parked_waits_for ON {p}parked (waits_for)",
                  # removals past their retention, found by age (``parking.drop_bound``)
                  "CREATE INDEX IF NOT EXISTS parked_since ON {p}parked (observed_at)")
#: The newest ``observed_at`` intake recorded: "now" for the parked lines' age.
NEWEST_OBSERVED = "ledger.newest_observed_at"


#: An event as stored: (originator id, version, topic, encoded state).
Row = tuple[UUID | str, int, str, bytes]


def rows_of(stored_events: Sequence[StoredEvent]) -> list[Row]:
    """The library's stored events as our rows (its own insert path, e.g. replay)."""
    return [(s.originator_id, s.originator_version, s.topic, s.state) for s in stored_events]


class _RowRecorder(Protocol):
    """What both our recorders add to the library's: insert rows already encoded."""

    side: _SideTables

    def insert_rows(self, rows: Sequence[Row], side: SideRows | None = None) -> None: ...

    def turn(self) -> AbstractContextManager[None]: ...


class StoreURLError(ValueError):
    """A ``--db`` value that names no store we can open."""


class NoLedgerError(LookupError):
    """A store opened for reading holds no ledger (no file, or no event table in the schema).

    Reading never creates one: a query against a mistyped path or schema must say so, not
    answer "no rows" from a ledger it just made."""


@dataclass(frozen=True)
class StoreURL:
    kind: str  # "sqlite" | "postgresql"
    path: str = ""  # SQLite file (":memory:" allowed)
    host: str = "127.0.0.1"
    port: int = 5432
    user: str = "postgres"
    password: str = ""
    dbname: str = "test"
    schema: str = ""
    #: Open for reading only: SQLite ``mode=ro``, no tables or schema created on either store.
    read_only: bool = False

    @classmethod
    def parse(cls, value: str | None) -> StoreURL:
        """A path, ``sqlite:///path``, or ``postgresql://user@host:port/db?schema=s``."""
        value = value or os.environ.get("SYNCLEDGER_DB") or DEFAULT_DB
        if value.startswith(("postgresql://", "postgres://")):
            u = urlparse(value)
            schema = parse_qs(u.query).get("schema", [""])[0]
            if schema and not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", schema):
                raise StoreURLError(f"schema {schema!r}: use lower-case letters, digits, _")
            return cls(kind="postgresql", host=u.hostname or "127.0.0.1", port=u.port or 5432,
                       user=unquote(u.username or "postgres"),
                       password=unquote(u.password or ""),
                       dbname=(u.path or "/").lstrip("/") or "postgres", schema=schema)
        if value.startswith("sqlite://"):
            path = value[len("sqlite://"):]
            path = path[1:] if path.startswith("/") and not path.startswith("//") else path
            path = path.lstrip("/") if path.startswith("/:memory:") else path
            if path.startswith("//"):
                path = path[1:]
            return cls(kind="sqlite", path=path or DEFAULT_DB)
        if "://" in value:
            raise StoreURLError(f"{value!r}: expected a file path, sqlite:///PATH or "
                                "postgresql://USER@HOST:PORT/DB[?schema=NAME]")
        return cls(kind="sqlite", path=value)

    def reading(self) -> StoreURL:
        """The same store, opened for reading only."""
        return replace(self, read_only=True)

    @property
    def sqlite_name(self) -> str:
        """What ``sqlite3.connect(..., uri=True)`` opens: the path, or a ``mode=ro`` URI."""
        if not self.read_only or self.path == ":memory:" or self.path.startswith("file:"):
            return self.path
        return f"file:{quote(os.path.abspath(self.path))}?mode=ro"

    def env(self) -> dict[str, str]:
        create = {"CREATE_TABLE": "n"} if self.read_only else {}
        if self.kind == "sqlite":
            return {"PERSISTENCE_MODULE": get_topic(LedgerSQLiteFactory),
                    "SQLITE_DBNAME": self.sqlite_name,
                    "SQLITE_LOCK_TIMEOUT": str(SQLITE_BUSY_TIMEOUT),
                    "APPLICATION_RECORDER_TOPIC": get_topic(LedgerSQLiteRecorder), **create}
        return {**create, "PERSISTENCE_MODULE": "eventsourcing.postgres",
                "POSTGRES_DBNAME": self.dbname,
                "POSTGRES_HOST": self.host, "POSTGRES_PORT": str(self.port),
                "POSTGRES_USER": self.user, "POSTGRES_PASSWORD": self.password,
                "POSTGRES_SCHEMA": self.schema or "public",
                "APPLICATION_RECORDER_TOPIC": get_topic(LedgerPostgresRecorder)}

    def __str__(self) -> str:
        if self.kind == "sqlite":
            return f"sqlite:///{self.path}"
        suffix = f"?schema={self.schema}" if self.schema else ""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.dbname}{suffix}"


@dataclass
class SideRows:
    """Rows written with a batch of events, atomically."""

    keys: dict[str, str]  # external key -> meeting id (hex)
    quarantine: list[tuple[str, int | None, str | None, str | None, str, bytes, str | None]]
    checkpoints: dict[str, str]
    #: observations parked by this batch, and (source, digest) of those it took again
    #: (written after ``park``: one parked and taken in the same batch leaves no row)
    park: list[ParkedLine] = field(default_factory=list)
    unpark: list[tuple[str, str]] = field(default_factory=list)
    #: the keys the lines in ``unpark`` waited for: those the batch did not park itself
    #: must still stand (``IndexChanged`` when another writer took or dropped one)
    unpark_keys: set[str] = field(default_factory=set)
    #: index rows to delete (key -> the meeting id it must still name): a meeting no
    #: longer waiting on an email (``who:`` rows), removed with the events that say so
    dropped: dict[str, str] = field(default_factory=dict)
    #: the index rows the batch's decisions hold under (key -> the meeting ids it may
    #: name, None: no row), checked under the write lock before anything is written:
    #: ``IndexChanged`` when another writer made any of them name another meanwhile
    expect: dict[str, tuple[str | None, ...]] = field(default_factory=dict)
    #: versions of the aggregates the decisions read (the org's settings, the directory
    #: of people; 0: none yet), and index rows read by prefix (prefix -> keys, sorted)
    expect_versions: dict[UUID, int] = field(default_factory=dict)
    expect_prefixes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: the newest ``observed_at`` of the batch: the ``NEWEST_OBSERVED`` checkpoint becomes
    #: the later of it and the stored one (read under the write lock: never moves back)
    newest: str | None = None
    #: ``parked_removal_max_age_hours`` in force: with ``newest``, parked removals older
    #: than that before the newest (as this write leaves it) are deleted in the
    #: transaction (``parking.drop_bound``; None: none are)
    removal_max_age_hours: int | None = None
    #: written by the store once the rows are: how many parked removals it dropped, and
    #: the bound it dropped them below (None: no bound this write)
    removals_dropped: int = 0
    dropped_below: str | None = None


class IndexChanged(IntegrityError):
    """Another writer changed what a batch was decided on (an index row it read, or parked
    a line waiting for a key the batch records): the batch is decided again."""


#: After the tables exist (also in a ledger made before the column did): a quarantine
#: row is keyed by its source and the SHA-256 of the line, so a re-ingest of the same
#: bad line does not add it again.
QUARANTINE_KEY = ("CREATE UNIQUE INDEX IF NOT EXISTS {i}quarantine_line"
                  " ON {p}quarantine (source, digest)")


def _storable(value: str | None) -> str | None:
    """Text as both stores hold it: a quarantine row describes input that may carry
    NUL or unpaired surrogates (PostgreSQL text refuses both), so those are escaped."""
    if value is None or value.isprintable():
        return value
    return value.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


def line_digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def _tuples(cursor: Any) -> list[tuple[Any, ...]]:
    """The cursor's rows as tuples (the PostgreSQL recorder's cursors give dicts)."""
    return [tuple(r.values()) if isinstance(r, dict) else tuple(r) for r in cursor.fetchall()]


class _SideTables:
    """The SQL of the side tables, for one placeholder style and table prefix."""

    def __init__(self, prefix: str, mark: str, events: str) -> None:
        self.upsert_key = (
            f"INSERT INTO {prefix}meeting_keys (key, meeting_id) VALUES ({mark}, {mark}) "
            "ON CONFLICT (key) DO UPDATE SET meeting_id = excluded.meeting_id")
        self.insert_quarantine = (
            f"INSERT INTO {prefix}quarantine (source, line_no, item_id, field, error, raw, "
            f"observed_at, digest) VALUES ({', '.join([mark] * 8)}) "
            "ON CONFLICT (source, digest) DO NOTHING")
        self.upsert_checkpoint = (
            f"INSERT INTO {prefix}checkpoints (name, value) VALUES ({mark}, {mark}) "
            f"ON CONFLICT (name) DO UPDATE SET value = excluded.value")
        self.insert_parked = (
            f"INSERT INTO {prefix}parked (waits_for, source, line_no, kind, item_id, mailbox, "
            f"observed_at, record, raw, digest) VALUES ({', '.join([mark] * 10)}) "
            "ON CONFLICT (source, digest) DO NOTHING")
        self.delete_parked = (
            f"DELETE FROM {prefix}parked WHERE source = {mark} AND digest = {mark}")
        self.delete_key = (f"DELETE FROM {prefix}meeting_keys WHERE key = {mark} "
                           f"AND meeting_id = {mark}")
        self._prefix, self._mark, self._events = prefix, mark, events

    def _select(self, cursor: Any, sql: str, values: Sequence[str | UUID]
                ) -> list[tuple[Any, ...]]:
        """``sql`` (``... IN ({marks})``) for ``values``, rows as tuples: on PostgreSQL one
        query with an array (``= ANY``), on SQLite in chunks of 500 parameters."""
        if self._mark == "%s":
            text = sql.format(p=self._prefix, marks="%s").replace("IN (%s)", "= ANY(%s)")
            cursor.execute(text.encode(), (list(values),))
            return _tuples(cursor)
        out: list[tuple[Any, ...]] = []
        for i in range(0, len(values), 500):
            chunk = values[i:i + 500]
            cursor.execute(sql.format(p=self._prefix, marks=", ".join("?" * len(chunk))), chunk)
            out += _tuples(cursor)
        return out

    def check(self, cursor: Any, side: SideRows) -> None:
        """Raise ``IndexChanged`` when what the batch read is no longer so. Run under the
        write lock (SQLite ``BEGIN IMMEDIATE``, PostgreSQL's lock on the event table),
        so nothing can change between this check and the commit."""
        if side.expect:
            now = dict(self._select(cursor, "SELECT key, meeting_id FROM {p}meeting_keys "
                                    "WHERE key IN ({marks})", sorted(side.expect)))
            changed = [k for k, allowed in side.expect.items() if now.get(k) not in allowed]
            if changed:
                raise IndexChanged(f"index row {changed[0]} changed meanwhile")
        if side.expect_versions:
            sqlite = self._mark == "?"
            now_versions = {str(oid).replace("-", ""): int(version) for oid, version in
                            self._select(cursor, "SELECT originator_id, "
                                         f"MAX(originator_version) FROM {self._events} "
                                         "WHERE originator_id IN ({marks}) "
                                         "GROUP BY originator_id",
                                         [i.hex if sqlite else i
                                          for i in sorted(side.expect_versions)])}
            moved = [i for i, v in side.expect_versions.items() if now_versions.get(i.hex, 0) != v]
            if moved:
                raise IndexChanged(f"aggregate {moved[0]} changed meanwhile")
        for prefix, keys in side.expect_prefixes.items():
            # LIKE may match more than the prefix (an email may hold "_"): filtered here.
            text = (f"SELECT key FROM {self._prefix}meeting_keys WHERE key LIKE {self._mark}")
            cursor.execute(text.encode() if self._mark == "%s" else text,
                           (prefix.replace("%", "_") + "%",))
            now_keys = sorted(str(r[0]) for r in _tuples(cursor))
            if tuple(k for k in now_keys if k.startswith(prefix)) != keys:
                raise IndexChanged(f"index rows {prefix}... changed meanwhile")
        recorded = {k for k in side.keys if k.startswith(("ex:", "sf:"))}
        taken = set(side.unpark)
        # lines this batch takes that it did not park: read from the store, still there?
        stored = taken - {p.ident for p in side.park}
        asked = recorded | (side.unpark_keys if stored else set())
        if asked:
            rows = self._select(cursor, "SELECT waits_for, source, digest FROM {p}parked "
                                "WHERE waits_for IN ({marks})", sorted(asked))
            standing = {(str(src), str(digest)) for _, src, digest in rows}
            # A line parked meanwhile waiting for a key this batch records would wait for
            # ever (this batch did not know it to take it).
            if any(str(key) in recorded and (str(src), str(digest)) not in taken
                   for key, src, digest in rows):
                raise IndexChanged("a line was parked meanwhile for a key this batch records")
            # A line another writer took, or dropped past its retention, meanwhile: one
            # writer in commit order would not have found it to take.
            if stored - standing:
                raise IndexChanged("a parked line this batch takes was taken or dropped "
                                   "meanwhile")

    def write(self, cursor: Any, side: SideRows | None) -> None:
        if side is None:
            return
        self.check(cursor, side)
        if side.dropped:
            cursor.executemany(self.delete_key, sorted(side.dropped.items()))
        if side.keys:
            cursor.executemany(self.upsert_key, sorted(side.keys.items()))
        if side.quarantine:
            cursor.executemany(self.insert_quarantine, [
                (_storable(row[0]), row[1], _storable(row[2]), _storable(row[3]),
                 _storable(row[4]), row[5], _storable(row[6]), line_digest(row[5]))
                for row in side.quarantine])
        checkpoints = dict(side.checkpoints)
        if side.newest is not None:
            stored = self._select(cursor, "SELECT value FROM {p}checkpoints WHERE name IN "
                                  "({marks})", [NEWEST_OBSERVED])
            newest = newer(str(stored[0][0]) if stored else None, side.newest)
            if newest is not None:
                checkpoints[NEWEST_OBSERVED] = newest
        if checkpoints:
            cursor.executemany(self.upsert_checkpoint, sorted(checkpoints.items()))
        if side.park:
            cursor.executemany(self.insert_parked, [
                (p.waits_for, _storable(p.source), p.line_no, p.kind, _storable(p.item_id),
                 _storable(p.mailbox), p.observed_at, orjson.dumps(p.record).decode(), p.raw,
                 p.digest) for p in side.park])
        if side.unpark:
            cursor.executemany(self.delete_parked,
                               [(_storable(src), digest) for src, digest in side.unpark])
        if side.removal_max_age_hours is not None and side.newest is not None:
            self._drop_removals(cursor, side, checkpoints.get(NEWEST_OBSERVED))

    def _drop_removals(self, cursor: Any, side: SideRows, newest: str | None) -> None:
        """Parked removals older than their retention before ``newest`` (the checkpoint
        this write leaves), deleted and counted in ``side`` (``ledger.parking``)."""
        assert side.removal_max_age_hours is not None
        bound = drop_bound(newest, side.removal_max_age_hours)
        if bound is None:
            return
        # one statement that deletes and counts (the library's SQLite cursor has no
        # rowcount): RETURNING, on SQLite 3.35+ and PostgreSQL
        delete = (f"DELETE FROM {self._prefix}parked WHERE kind IN ({self._mark}, "
                  f"{self._mark}) AND observed_at < {self._mark} RETURNING 1")
        cursor.execute(delete.encode() if self._mark == "%s" else delete,
                       (*sorted(QUIET_KINDS), bound))
        side.removals_dropped, side.dropped_below = len(_tuples(cursor)), bound


class _WriterTransaction(SQLiteTransaction):
    """A transaction that takes SQLite's write lock up front when it will commit.

    The library begins every transaction with a plain (deferred) ``BEGIN``: a
    writer then reads (``MAX(rowid)``, the index) under a shared lock and asks
    for the write lock at its first insert. When another process committed in
    between, SQLite cannot wait for it (the snapshot is stale) and fails at
    once with "database is locked", whatever the busy timeout. ``BEGIN
    IMMEDIATE`` waits (up to the busy timeout) before reading anything."""

    def __enter__(self) -> SQLiteCursor:
        cursor = self.connection.cursor()
        cursor.execute("BEGIN IMMEDIATE" if self.commit else "BEGIN")
        return cursor


class _WriterConnection(SQLiteConnection):
    @contextmanager
    def transaction(self, *, commit: bool) -> Iterator[SQLiteCursor]:
        with _WriterTransaction(self, commit=commit) as curs, curs:
            yield curs


class _WriterPool(SQLiteConnectionPool):
    def _create_connection(self) -> SQLiteConnection:
        plain = locked_retry(super()._create_connection)
        return _WriterConnection(plain._sqlite_conn, max_age=self.max_age)


#: Tries of a new connection while another process holds the lock its switch to WAL
#: needs (``locked_retry``): 50 ms apart, 10 s in all.
WAL_TRIES = 200

T = TypeVar("T")


def locked_retry(connect: Callable[[], T], tries: int = WAL_TRIES) -> T:
    """``connect()``, tried again while SQLite says "database is locked".

    The library switches a new database to WAL in its first connection; when several
    processes open one new ledger at once (``ingest`` writers, a worker and a ``run``),
    ``PRAGMA journal_mode=WAL`` can fail at once whatever the busy timeout (SQLite
    returns BUSY there instead of waiting, to avoid a deadlock), and that process could
    not open the ledger. Any other error is the library's to report, at once."""
    for attempt in range(tries):
        try:
            return connect()
        except sqlite3.OperationalError as exc:
            if ("locked" not in str(exc) and "busy" not in str(exc)) or attempt == tries - 1:
                raise
            time.sleep(0.05)
    raise ValueError("tries must be at least 1")


class LedgerSQLiteFactory(SQLiteFactory):
    """The library's SQLite persistence; writers lock up front (``_WriterTransaction``)."""

    def __init__(self, env: Any) -> None:
        super().__init__(env)
        old = self.datastore.pool
        self.datastore.pool = _WriterPool(db_name=old.db_name, lock_timeout=old.lock_timeout)
        old.close()


class _TurnHolder:
    """The write transaction a writer's turn holds open (``Store.writer_turn``), per thread:
    a store may be shared by threads (the web server's jobs), and only the thread that
    took the turn writes through it."""

    _turns: threading.local | None = None

    @property
    def _turn(self) -> Any:
        return getattr(self._turns, "cursor", None)

    @_turn.setter
    def _turn(self, cursor: Any) -> None:
        if self._turns is None:
            self._turns = threading.local()
        self._turns.cursor = cursor


class LedgerSQLiteRecorder(_TurnHolder, SQLiteApplicationRecorder):
    """SQLite recorder that writes side tables in the events' transaction.

    It also inserts events with one ``executemany`` instead of one statement
    per event: notification ids are read back as the rowid range, which is
    exact because the write lock is held from the first insert to commit.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.side = _SideTables("", "?", self.events_table_name)

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Hold the write lock (``BEGIN IMMEDIATE``) until the block ends: no other writer
        commits meanwhile, and this process's inserts go into this transaction, committed
        when the block ends (rolled back if it raises)."""
        with self.datastore.transaction(commit=True) as c:
            self._turn = c
            try:
                yield
            finally:
                self._turn = None

    def construct_create_table_statements(self) -> list[str]:
        return [*super().construct_create_table_statements(),
                *(s.format(p="", serial="INTEGER PRIMARY KEY AUTOINCREMENT", blob="BLOB",
                           without_rowid=" WITHOUT ROWID") for s in SIDE_TABLES)]

    def create_table(self) -> None:
        super().create_table()
        with self.datastore.transaction(commit=True) as c:
            c.execute("PRAGMA table_info(quarantine)")
            if "digest" not in {row[1] for row in c.fetchall()}:  # a ledger from before
                c.execute("ALTER TABLE quarantine ADD COLUMN digest TEXT")
            c.execute(QUARANTINE_KEY.format(i="", p=""))
            for statement in PARKED_INDEXES:
                c.execute(statement.format(p=""))

    def insert_rows(self, rows: Sequence[Row], side: SideRows | None = None) -> None:
        """Events already encoded (``Store.to_rows``) plus side rows, in one transaction
        (the turn's, when one is held)."""
        if self._turn is not None:
            self._insert_rows(self._turn, rows, side)
            return
        with self.datastore.transaction(commit=True) as c:
            self._insert_rows(c, rows, side)

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any
                      ) -> Sequence[int] | None:
        """The library's insert (``Application.save``: a compressor or cipher is set), into
        the turn's transaction when one is held."""
        if self._turn is not None:
            return self._insert_rows(self._turn, rows_of(stored_events), kwargs.get("side"))
        return super().insert_events(stored_events, **kwargs)

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        return self._insert_rows(c, rows_of(stored_events), kwargs.get("side"))

    def _insert_rows(self, c: SQLiteCursor, rows: Sequence[Row], side: SideRows | None
                     ) -> list[int]:
        self.side.write(c, side)
        if not rows:
            return []
        # Per-connection settings (a pooled connection may be new): checkpoint the
        # WAL into the database every 64 MB instead of every 4 MB. An intake batch
        # writes ~3 MB, so at the default nearly every commit also copied its pages
        # into the database file and synced it (about half the commit's time).
        # Durability is unchanged: commits still sync the WAL (synchronous=FULL).
        c.execute("PRAGMA wal_autocheckpoint=16384")
        c.execute("PRAGMA journal_size_limit=67108864")
        c.execute(f"SELECT COALESCE(MAX(rowid), 0) FROM {self.events_table_name}")
        first = int(c.fetchone()[0]) + 1
        c.executemany(self.insert_events_statement, [
            (oid.hex if isinstance(oid, UUID) else oid, version, topic, state)
            for oid, version, topic, state in rows])
        return list(range(first, first + len(rows)))


class LedgerPostgresRecorder(_TurnHolder, PostgresApplicationRecorder):
    """PostgreSQL recorder that writes side tables in the events' transaction."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        prefix = f'"{self.datastore.schema}".' if self.datastore.schema else ""
        self.side = _SideTables(prefix, "%s", prefix + f'"{self.events_table_name}"')
        self._side_ddl = [s.format(p=prefix, serial="BIGSERIAL PRIMARY KEY", blob="BYTEA",
                                   without_rowid="") for s in SIDE_TABLES]

    def create_table(self) -> None:
        """The library's tables, then ours (``Store`` holds ``creation_lock`` meanwhile:
        several processes may open one new ledger at once)."""
        super().create_table()
        with self.datastore.transaction(commit=True) as curs:
            for statement in self._side_ddl:
                curs.execute(statement.encode())
            prefix = f'"{self.datastore.schema}".' if self.datastore.schema else ""
            curs.execute(f"ALTER TABLE {prefix}quarantine ADD COLUMN IF NOT EXISTS digest TEXT"
                         .encode())
            curs.execute(QUARANTINE_KEY.format(i="", p=prefix).encode())
            for statement in PARKED_INDEXES:
                curs.execute(statement.format(p=prefix).encode())

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any
                      ) -> Sequence[int] | None:
        self.insert_rows(rows_of(stored_events), kwargs.get("side"))
        return None

    def insert_rows(self, rows: Sequence[Row], side: SideRows | None = None) -> None:
        """Side rows, then the events with ``COPY`` instead of ``INSERT ... unnest``.

        Same transaction and same guarantees as the library's insert: the table
        is locked in EXCLUSIVE mode before the first id is drawn (commit order =
        id order) and the channel is notified; a duplicate (id, version) still
        raises ``IntegrityError`` and rolls everything back. Notification ids are
        not read back (intake does not use them).
        """
        if self._turn is not None:
            self._write_rows(self._turn, rows, side)
            return
        with self.datastore.transaction(commit=True) as curs:
            if rows or side is not None:
                # Locked before the side rows are checked and written, so writers take
                # turns from the check to the commit (``_SideTables.check``).
                self._lock_table(curs)
            self._write_rows(curs, rows, side)

    def _write_rows(self, curs: Any, rows: Sequence[Row], side: SideRows | None) -> None:
        self.side.write(curs, side)
        if rows:
            self._notify_channel(curs)
            with curs.copy(self._copy_statement) as copy:
                for row in rows:
                    copy.write_row(row)

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Hold the event table's lock until the block ends (see the SQLite recorder's).

        The transaction is idle while the batch is decided again (reads go through other
        connections): the library's 5 s idle-in-transaction timeout would end the session,
        and the lock with it, under a slow re-decision; this one transaction gets
        ``TURN_IDLE_S``."""
        with self.datastore.transaction(commit=True) as curs:
            self._lock_table(curs)
            curs.execute(f"SET LOCAL idle_in_transaction_session_timeout = '{TURN_IDLE_S}s'"
                         .encode())
            self._turn = curs
            try:
                yield
            finally:
                self._turn = None

    @property
    def _copy_statement(self) -> sql.Composed:
        return sql.SQL("COPY {}.{} (originator_id, originator_version, topic, state) "
                       "FROM STDIN").format(sql.Identifier(self.datastore.schema),
                                            sql.Identifier(self.events_table_name))


class LedgerApp(Application[UUID]):
    """The event store. Snapshots keep long series quick to load."""

    name = "syncledger"
    snapshotting_intervals = {Meeting: SNAPSHOT_INTERVAL}

    def construct_transcoder(self) -> Transcoder:
        return OrjsonTranscoder()


def _connect(url: StoreURL) -> Any:
    """A short-lived autocommit connection for set-up and checks, failing in seconds with
    the driver's reason when PostgreSQL does not answer (the library's pool would wait
    30 s and say only that it got no connection)."""
    import psycopg

    return psycopg.connect(host=url.host, port=url.port, user=url.user,
                           password=url.password, dbname=url.dbname, autocommit=True,
                           connect_timeout=5)


@contextmanager
def creation_lock(url: StoreURL) -> Iterator[None]:
    """One process at a time creates a PostgreSQL ledger's schema and tables.

    Several processes may open one new ledger at once (writers, workers), and
    PostgreSQL's ``IF NOT EXISTS`` does not make concurrent creation safe: two
    ``CREATE TABLE IF NOT EXISTS`` of one table fail with a duplicate key in the
    catalog (``pg_type_typname_nsp_index``), two ``CREATE OR REPLACE FUNCTION`` with
    "tuple concurrently updated". A session advisory lock keyed by the schema's name
    makes them take turns; the later ones find everything there. Its one connection
    is also the probe (a server that does not answer fails here, in seconds) and
    creates the schema, which the library does not."""
    if url.kind != "postgresql" or url.read_only:
        yield
        return
    name = f"syncledger.create:{url.dbname}:{url.schema or 'public'}".encode()
    key = int.from_bytes(hashlib.sha256(name).digest()[:8], "big", signed=True)
    with _connect(url) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (key,))
        try:
            if url.schema:
                conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{url.schema}"'.encode())
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (key,))


def ledger_exists(url: StoreURL) -> bool:
    """Whether the store holds a ledger, found without creating anything."""
    if url.kind == "sqlite":
        return url.path == ":memory:" or os.path.isfile(url.path)
    with _connect(url) as conn:
        row = conn.execute("SELECT to_regclass(%s)",
                           (f'"{url.schema or "public"}"."{LedgerApp.name.lower()}_events"',)
                           ).fetchone()
    return row is not None and row[0] is not None


#: Files the ledger creates: readable by their owner only (README, "Security").
FILE_MODE = 0o600


def private_file(url: StoreURL) -> None:
    """Create a new SQLite ledger file owner-only before SQLite opens it.

    SQLite gives its ``-wal`` and ``-shm`` files the database file's mode, so
    they are owner-only too, whatever the shell's umask."""
    if url.kind != "sqlite" or url.path in ("", ":memory:") or url.path.startswith("file:"):
        return
    try:
        fd = os.open(url.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return
    except OSError:
        return  # SQLite will report the problem in its own words
    os.close(fd)


def drop_postgres_schema(url: StoreURL) -> None:
    """``--fresh`` on PostgreSQL: drop the ledger's own schema (never ``public``)."""
    if url.kind != "postgresql" or not url.schema or url.schema == "public":
        raise ValueError("only a named schema other than public can be dropped")
    with _connect(url) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{url.schema}" CASCADE'.encode())


class Store:
    """The ledger's database: events, side tables, and the queries intake needs."""

    def __init__(self, url: StoreURL) -> None:
        self.url = url
        if url.read_only:
            if not ledger_exists(url):
                raise NoLedgerError(f"no ledger at {url}")
            self.app = LedgerApp(env=url.env())
        else:
            private_file(url)
            with creation_lock(url):
                self.app = LedgerApp(env=url.env())
        self.recorder = self.app.recorder
        self.rows = cast(_RowRecorder, self.recorder)
        self._q = "?" if url.kind == "sqlite" else "%s"
        self._prefix = f'"{url.schema}".' if url.kind == "postgresql" and url.schema else ""
        table: str = self.recorder.events_table_name  # type: ignore[attr-defined]
        self._events = self._prefix + table
        self._topics: dict[type, str] = {}
        #: per thread: snapshots to take once its writer's turn ends (None: not in one)
        self._turn_state = threading.local()
        #: called once by ``close`` (what other layers opened on this store: the read
        #: models' connection pool)
        self._on_close: list[Callable[[], None]] = []
        #: the statements ``create_once`` sent on this store
        self._created: set[str] = set()

    @classmethod
    def open(cls, value: str | None = None) -> Store:
        return cls(StoreURL.parse(value))

    def close(self) -> None:
        callbacks, self._on_close = self._on_close, []
        for callback in callbacks:
            callback()
        self.app.close()

    @contextmanager
    def writer_turn(self) -> Iterator[None]:
        """No other writer commits until the block ends, and what this store saves in it
        commits when it ends: a batch decided in a turn cannot be made stale. Intake
        takes one to decide a batch again after a conflict, so a writer that lost a race
        wins the next one (other writers wait, up to SQLite's busy timeout on SQLite)."""
        deferred: list[tuple[UUID, int]] = []
        self._turn_state.deferred = deferred
        try:
            with self.rows.turn():
                yield
        finally:
            self._turn_state.deferred = None
        for oid, version in deferred:
            self.app.take_snapshot(oid, version=version)

    def on_close(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` when the store closes (to release connections opened on it)."""
        self._on_close.append(callback)

    # --- raw SQL on the store's own connection --------------------------

    @contextmanager
    def cursor(self, commit: bool = False) -> Iterator[Any]:
        datastore: Any = self.recorder.datastore  # type: ignore[attr-defined]
        with datastore.transaction(commit=commit) as curs:
            yield curs

    def _sql(self, sql: str) -> Any:
        """``{p}`` is the schema prefix and ``?`` the placeholder, on either store."""
        text = sql.replace("{p}", self._prefix).replace("?", self._q)
        return text.encode() if self.url.kind == "postgresql" else text

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.cursor() as c:
            c.execute(self._sql(sql), params)
            return _tuples(c)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        """One statement in its own committed transaction (adapter tables: the outbox)."""
        with self.cursor(commit=True) as c:
            c.execute(self._sql(sql), params)

    def create_once(self, ddl: str) -> None:
        """A ``CREATE TABLE IF NOT EXISTS`` of another layer's table (outbox, status, ...),
        sent once per open store: the service opens those tables in every job, and the
        statement costs a round trip and a catalog lookup each time."""
        if ddl not in self._created:
            self.execute(ddl)
            self._created.add(ddl)

    # --- side tables --------------------------------------------------

    def existing(self, meeting_ids: Iterable[UUID]) -> set[UUID]:
        """Those of ``meeting_ids`` that have at least one event.

        Asked as "has version 1" (every aggregate starts there): one primary-key
        probe per id, which PostgreSQL plans as an index scan even on a table it
        has no statistics for. ``SELECT DISTINCT ... IN (...)`` read every version
        of each meeting, and with no statistics (autovacuum off, or a bulk load
        faster than its naptime) PostgreSQL planned it as a sequential scan of the
        whole event table: 110 ms a query at 184k events and growing with the
        ledger, which made PostgreSQL intake slower the larger the ledger."""
        wanted = sorted(set(meeting_ids))
        sqlite = self.url.kind == "sqlite"
        out: set[UUID] = set()
        for i in range(0, len(wanted), 500):
            chunk = wanted[i:i + 500]
            marks = ", ".join("?" * len(chunk))
            params = [m.hex if sqlite else m for m in chunk]
            for (oid,) in self.query(f"SELECT originator_id FROM {self._events} "
                                     f"WHERE originator_id IN ({marks}) "
                                     "AND originator_version = 1", params):
                out.add(oid if isinstance(oid, UUID) else UUID(str(oid)))
        return out

    def lookup_keys(self, keys: Iterable[str]) -> dict[str, str]:
        """Meeting ids (hex) of the external keys already indexed."""
        wanted = sorted(set(keys))
        out: dict[str, str] = {}
        for i in range(0, len(wanted), 500):
            chunk = wanted[i:i + 500]
            marks = ", ".join("?" * len(chunk))
            for key, mid in self.query(
                    f"SELECT key, meeting_id FROM {{p}}meeting_keys WHERE key IN ({marks})", chunk):
                out[key] = mid
        return out

    def stored_events(self, meeting_id: UUID, upto_version: int | None = None
                      ) -> list[tuple[int, int, str, bytes]]:
        """(position, version, topic, state) of one meeting's events, oldest first."""
        pos = "rowid" if self.url.kind == "sqlite" else "notification_id"
        sql = (f"SELECT {pos}, originator_version, topic, state FROM {self._events} "
               "WHERE originator_id = ?")
        params: list[Any] = [meeting_id.hex if self.url.kind == "sqlite" else meeting_id]
        if upto_version is not None:
            sql += " AND originator_version <= ?"
            params.append(upto_version)
        rows = self.query(sql + " ORDER BY originator_version", params)
        return [(int(r[0]), int(r[1]), str(r[2]), bytes(r[3])) for r in rows]

    def read_log(self, after: int = 0, limit: int = 2000
                 ) -> list[tuple[int, str, int, str, bytes]]:
        """(position, originator id, version, topic, state) after a position, in order."""
        pos = "rowid" if self.url.kind == "sqlite" else "notification_id"
        rows = self.query(f"SELECT {pos}, originator_id, originator_version, topic, state "
                          f"FROM {self._events} WHERE {pos} > ? ORDER BY {pos} LIMIT ?",
                          (after, limit))
        return [(int(r[0]), str(r[1]), int(r[2]), str(r[3]), bytes(r[4])) for r in rows]

    def keys_with_prefix(self, prefix: str, limit: int | None = None) -> dict[str, str]:
        """Index rows whose key starts with ``prefix`` (meetings waiting on an email; a
        cut id taken back), at most ``limit`` of them in key order."""
        # LIKE may match more than the prefix (an email may hold "_"): filtered below.
        rows = self.query("SELECT key, meeting_id FROM {p}meeting_keys WHERE key LIKE ? "
                          "ORDER BY key" + (f" LIMIT {int(limit)}" if limit else ""),
                          (prefix.replace("%", "_") + "%",))
        return {str(k): str(v) for k, v in rows if str(k).startswith(prefix)}

    def meeting_ids_with_prefix(self, prefix: str) -> list[str]:
        """Meeting ids (as text) that start with ``prefix`` (a cut id taken back)."""
        if not all(c in "0123456789abcdef-" for c in prefix):
            return []
        rows = self.query("SELECT DISTINCT meeting_id FROM {p}meeting_keys "
                          "WHERE meeting_id LIKE ? ORDER BY meeting_id LIMIT 2", (prefix + "%",))
        return [str(r[0]) for r in rows]

    def meeting_ids(self) -> list[UUID]:
        """Every meeting the ledger holds, in a stable order."""
        rows = self.query("SELECT DISTINCT meeting_id FROM {p}meeting_keys ORDER BY meeting_id")
        return [UUID(r[0]) for r in rows]

    def checkpoint(self, name: str) -> str | None:
        rows = self.query("SELECT value FROM {p}checkpoints WHERE name = ?", (name,))
        return str(rows[0][0]) if rows else None

    def checkpoints_with_prefix(self, prefix: str) -> dict[str, str]:
        """Checkpoints whose name starts with ``prefix`` (e.g. when each email was looked up)."""
        rows = self.query("SELECT name, value FROM {p}checkpoints WHERE name LIKE ?",
                          (prefix.replace("%", "_") + "%",))
        return {str(k): str(v) for k, v in rows if str(k).startswith(prefix)}

    def quarantined(self) -> list[dict[str, Any]]:
        rows = self.query("SELECT id, source, line_no, item_id, field, error, raw, observed_at "
                          "FROM {p}quarantine ORDER BY id")
        names = ("id", "source", "line_no", "item_id", "field", "error", "raw", "observed_at")
        out = []
        for row in rows:
            rec = dict(zip(names, row, strict=True))
            rec["raw"] = bytes(rec["raw"]).decode("utf-8", "replace")
            out.append(rec)
        return out

    # --- parked observations (``ledger.parking``) ------------------------

    _PARKED = ("waits_for, source, line_no, kind, item_id, mailbox, observed_at, record, raw")

    def _parked_lines(self, rows: list[tuple[Any, ...]]) -> list[ParkedLine]:
        return [ParkedLine(waits_for=str(r[0]), source=str(r[1]),
                           line_no=None if r[2] is None else int(r[2]), kind=str(r[3]),
                           item_id=r[4], mailbox=r[5], observed_at=str(r[6]),
                           record=orjson.loads(r[7]), raw=bytes(r[8])) for r in rows]

    def parked_waiting(self, keys: Iterable[str]) -> list[ParkedLine]:
        """Parked observations waiting for any of ``keys``, oldest row first."""
        wanted = sorted(set(keys))
        out: list[ParkedLine] = []
        for i in range(0, len(wanted), 500):
            chunk = wanted[i:i + 500]
            marks = ", ".join("?" * len(chunk))
            out += self._parked_lines(self.query(
                f"SELECT {self._PARKED} FROM {{p}}parked WHERE waits_for IN ({marks}) "
                "ORDER BY id", chunk))
        return out

    def _has_parked_table(self) -> bool:
        """A read-only ledger made before parking existed has no parked table (a
        writable one gets it when opened)."""
        if not self.url.read_only:
            return True
        if self.url.kind == "sqlite":
            return bool(self.query("SELECT name FROM sqlite_master WHERE type = 'table' "
                                   "AND name = 'parked'"))
        rows = self.query("SELECT to_regclass(?)", (f'"{self.url.schema or "public"}".parked',))
        return bool(rows and rows[0][0] is not None)

    def parked_count(self) -> int:
        return int(self.query("SELECT COUNT(*) FROM {p}parked")[0][0])

    def parked(self) -> list[ParkedLine]:
        """Every parked observation, in the order parked."""
        if not self._has_parked_table():
            return []
        return self._parked_lines(self.query(f"SELECT {self._PARKED} FROM {{p}}parked "
                                             "ORDER BY id"))

    # --- aggregates ---------------------------------------------------

    def save(self, *aggregates: Meeting | Org | Directory | Safety,
             side: SideRows | None = None) -> None:
        """All pending events of ``aggregates`` plus ``side`` rows, in one transaction.

        What ``Application.save`` does, minus its generic per-event work
        (runtime-protocol checks, recordings, notification objects): events are
        turned into rows by ``to_rows`` and handed to the recorder in one call,
        then snapshots are taken at the same versions the application would take them.
        """
        mapper = self.app.mapper
        if mapper.compressor is not None or mapper.cipher is not None:
            self.app.save(*aggregates, side=side)
            return
        events: list[CanMutateAggregate[UUID]] = []
        for agg in aggregates:
            events.extend(agg.collect_events())
        self.rows.insert_rows(self.to_rows(events), side=side)
        intervals = self.app.snapshotting_intervals
        kinds = {agg.id: type(agg) for agg in aggregates}
        for event in events:
            interval = intervals.get(kinds[event.originator_id])
            if interval and event.originator_version % interval == 0:
                deferred = getattr(self._turn_state, "deferred", None)
                if deferred is not None:  # read back once the turn has committed
                    deferred.append((event.originator_id, event.originator_version))
                else:
                    self.app.take_snapshot(event.originator_id,
                                           version=event.originator_version)

    def to_rows(self, events: Iterable[CanMutateAggregate[UUID]]) -> list[Row]:
        """Events as rows, byte for byte what the application's mapper would store
        (no compression or cipher: ``save`` leaves those to the library)."""
        topics = self._topics
        rows: list[Row] = []
        for event in events:
            cls = type(event)
            topic = topics.get(cls)
            if topic is None:
                topic = topics[cls] = get_topic(cls)
            state = dict(vars(event))
            oid = state.pop("originator_id")
            version = state.pop("originator_version")
            class_version = getattr(cls, "class_version", 1)
            if class_version > 1:
                state["class_version"] = class_version
            rows.append((oid, version, topic, encode_state(state)))
        return rows

    def write_side(self, side: SideRows) -> None:
        """Side rows alone (a quarantined line, a checkpoint with no new event), checked
        and written like a batch's (under the write lock)."""
        self.rows.insert_rows([], side=side)

    def meeting(self, meeting_id: UUID, version: int | None = None) -> Meeting:
        agg: Meeting = self.app.repository.get(meeting_id, version=version)
        return agg

    def org(self) -> Org | None:
        try:
            agg: Org = self.app.repository.get(ORG_SETTINGS_ID)
        except Exception as exc:  # AggregateNotFoundError
            if type(exc).__name__ == "AggregateNotFoundError":
                return None
            raise
        return agg

    def directory(self) -> Directory | None:
        """The directory of people (``ledger.directory``), None before any look-up."""
        try:
            agg: Directory = self.app.repository.get(DIRECTORY_ID)
        except Exception as exc:  # AggregateNotFoundError
            if type(exc).__name__ == "AggregateNotFoundError":
                return None
            raise
        return agg

    def safety(self) -> Safety | None:
        """Full reads and the mass-change guard's state (``ledger.safety``)."""
        try:
            agg: Safety = self.app.repository.get(SAFETY_ID)
        except Exception as exc:  # AggregateNotFoundError
            if type(exc).__name__ == "AggregateNotFoundError":
                return None
            raise
        return agg

    def max_position(self) -> int:
        return int(self.recorder.max_notification_id() or 0)
