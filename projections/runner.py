"""Running the projections: catch up, rebuild, follow, with exactly-once tracking.

One pass over the ledger's log feeds every projection: a batch of events
(10,000 by default) is read with plain SQL and routed by topic, the
projections load what the batch's meetings need in bulk, each wanted event
is decoded once and handed to the handlers of its topic, then every
projection writes its rows and its ``projection_tracking`` position in the
same transaction. A crash loses the whole batch or nothing, so no event is
ever counted twice; a restart resumes from the committed positions. Each
projection keeps its own position, so one can be rebuilt while the others
stay. The read models live in the ledger's own database (same SQLite file,
same PostgreSQL schema), written with SQLAlchemy Core.

A read model built from zero (its position is 0, or ``rebuild`` asks) is not
written batch by batch: upserting into ever larger indexed tables made each
batch's commit slower as the ledger grew (the rate at 1.8M events was half the
rate at 184k). Its projection folds the whole log in memory instead, reading
outside any write transaction, and one transaction at the end drops and
creates its tables, inserts every row once in primary-key order, creates the
secondary indexes, and sets its tracking position to the last event folded.
A crash before that commit leaves the read model as it was; the events after
the fold are the live tail, applied batch by batch like any later catch-up.

On PostgreSQL the runner's connections set ``search_path`` to the ledger's
schema, so the tables and every compiled statement need no schema name.
Concurrent runners are safe: a batch holds the write lock (SQLite ``BEGIN
IMMEDIATE``) or the tracking rows (PostgreSQL ``FOR UPDATE``) from reading the
positions to commit, so two runners never apply the same events.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from operator import itemgetter
from typing import Any, cast
from uuid import UUID

import orjson
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool, QueuePool

from ledger.gc_passes import fewer_gc_passes
from ledger.store import Store, StoreURL
from projections.analytics import AnalyticsProjection
from projections.base import Bulk, Handler, Projection, metadata, tracking
from projections.conflicts import ConflictsProjection
from projections.issues import IssuesProjection
from projections.mapping import MappingProjection
from projections.people import PeopleProjection
from projections.plan import PlanProjection

#: Every projection by name, in the order they are written in a batch.
PROJECTIONS: dict[str, type[Projection]] = {
    p.name: p for p in (MappingProjection, ConflictsProjection, IssuesProjection,
                        PlanProjection, AnalyticsProjection, PeopleProjection)
}
NAMES = tuple(PROJECTIONS)
#: Events per transaction: larger batches fold more of a meeting's events into one
#: row write and commit less often (10,000 events are ~10 MB in memory). 50,000 were
#: measured too: ~2 % faster on SQLite, ~70 MB more peak memory, so not worth it.
BATCH_SIZE = 10_000
#: Events one one-pass build folds at most: the fold holds every read model's final
#: rows in memory (about 0.8 KB an event: 1.5 GB at 1.8M events), so a longer log is
#: built in one pass up to here and batch by batch after it, in bounded memory.
BULK_MAX_EVENTS = 2_000_000

#: ``progress(events_read, events_to_read)``: called after each committed batch.
Progress = Callable[[int, int], None]
#: ``on_batch({name: events applied})``: called after each committed batch.
OnBatch = Callable[[dict[str, int]], None]

_engines: weakref.WeakKeyDictionary[Store, Engine] = weakref.WeakKeyDictionary()
_engines_lock = threading.Lock()


_move = Bulk(lambda _: tracking.update().where(tracking.c.name == sa.bindparam("n"))
             .values(position=sa.bindparam("p")))


class UnknownProjection(KeyError):
    """A name that is not one of :data:`NAMES`."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


def selected(names: Iterable[str] | None) -> list[str]:
    """Projection names in their canonical order; all of them for None."""
    if names is None:
        return list(NAMES)
    wanted = set(names)
    unknown = sorted(wanted - set(NAMES))
    if unknown:
        raise UnknownProjection(f"unknown projection(s) {', '.join(unknown)}; "
                                f"known: {', '.join(NAMES)}")
    return [n for n in NAMES if n in wanted]


# --- the database -------------------------------------------------------------


def engine_for(store: Store) -> Engine:
    """A SQLAlchemy engine on the store's database (cached per store).

    On PostgreSQL it keeps a small pool of connections, closed with the store: a
    long-lived service process asks the read models something in every job, and
    opening a connection each time (authentication, ``search_path``) cost more
    than the job's own queries. SQLite connections are cheap and not pooled.
    """
    with _engines_lock:
        engine = _engines.get(store)
        if engine is None:
            engine = _engines[store] = _make_engine(store.url)
            if store.url.kind == "postgresql":
                store.on_close(engine.dispose)
        return engine


#: Connections the PostgreSQL pool keeps open between uses; more are opened when
#: more threads ask at once (no limit, as without a pool) and closed on return.
POOL_SIZE = 2


def _make_engine(url: StoreURL) -> Engine:
    if url.kind == "postgresql":
        sa_url = sa.URL.create("postgresql+psycopg", username=url.user,
                               password=url.password or None, host=url.host, port=url.port,
                               database=url.dbname)
        # QueuePool is thread-safe (the service's jobs and ticks run on threads); the
        # pre-ping replaces a connection PostgreSQL closed (a restart) before it is used.
        engine = sa.create_engine(sa_url, poolclass=QueuePool, pool_size=POOL_SIZE,
                                  max_overflow=-1, pool_pre_ping=True)
        schema = url.schema or "public"

        @event.listens_for(engine, "connect")
        def _schema(dbapi_conn: Any, _record: Any) -> None:
            # Unqualified names are the ledger's schema: tables, DDL, compiled SQL.
            with dbapi_conn.cursor() as cur:
                cur.execute(f'SET search_path TO "{schema}"')
            dbapi_conn.commit()

        return engine
    if url.path == ":memory:":
        raise ValueError("projections need the ledger in a file or in PostgreSQL: a private "
                         "in-memory SQLite database cannot be opened a second time")
    import sqlite3

    path = url.sqlite_name  # a ``mode=ro`` URI when the store is opened for reading only

    def connect() -> sqlite3.Connection:
        # Same flags as the event store's own connections (``uri`` names allowed).
        conn = sqlite3.connect(path, uri=path.startswith("file:"), timeout=30,
                               isolation_level=None, check_same_thread=False)
        # WAL (set by the event store) + NORMAL: a commit is atomic but not synced;
        # a power cut may undo the last batches, rows and tracking together, and
        # the next catch-up simply redoes them.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA cache_size=-65536")  # 64 MB: batches upsert all over the tables
        # Checkpoint the WAL every 256 MB instead of every 4 MB: a batch dirties
        # pages all over the read models, and at the default each commit copied
        # them into the database again (28 % of a catch-up of 900k events went to
        # commit). The WAL file is cut back to 64 MB after each checkpoint.
        conn.execute("PRAGMA wal_autocheckpoint=65536")
        conn.execute("PRAGMA journal_size_limit=67108864")
        return conn

    engine = sa.create_engine("sqlite+pysqlite://", creator=connect, poolclass=NullPool)

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        # pysqlite would only BEGIN before the first write; a batch must hold the
        # write lock from reading its positions to commit (a deferred transaction
        # that reads first cannot wait for the lock later: it fails at once).
        # Readers ask for DEFERRED, so they never wait for a writer.
        mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def _events_table(store: Store) -> str:
    """The event store's table, quoted (PostgreSQL names it after the application)."""
    name = str(getattr(store.recorder, "events_table_name", "stored_events"))
    if store.url.kind == "postgresql":
        return f'"{store.url.schema or "public"}"."{name}"'
    return f'"{name}"'


def _log_sql(store: Store) -> str:
    table = _events_table(store)
    if store.url.kind == "postgresql":
        # The meeting id as text: PostgreSQL prints a uuid in the canonical form the read
        # models key by, where psycopg would build a ``UUID`` object per row (hashed in
        # Python, and turned back into text for every new meeting): the log read 38 %
        # faster at 1.8M events (20.9 -> 12.9 s), a rebuild from zero 12 % (38.1 -> 33.5 s).
        return (f"SELECT notification_id, originator_id::text, topic, state FROM {table} "
                "WHERE notification_id > %s ORDER BY notification_id LIMIT %s")
    return (f"SELECT rowid, originator_id, topic, state FROM {table} "
            "WHERE rowid > ? ORDER BY rowid LIMIT ?")


def _head_sql(store: Store) -> str:
    column = "notification_id" if store.url.kind == "postgresql" else "rowid"
    return f"SELECT MAX({column}) FROM {_events_table(store)}"


@contextmanager
def reading(store: Store) -> Iterator[Connection]:
    """A connection for queries: on SQLite it never takes the write lock."""
    with engine_for(store).connect() as conn:
        yield conn.execution_options(sqlite_begin="DEFERRED")


def _has_table(conn: Connection, name: str) -> bool:
    return bool(sa.inspect(conn).has_table(name))


def _serialize_ddl(conn: Connection) -> None:
    """PostgreSQL: one runner at a time creates or drops tables in a schema.

    (Concurrent ``CREATE TABLE IF NOT EXISTS`` can still collide in the
    catalog; SQLite needs nothing, its ``BEGIN IMMEDIATE`` already serializes.)
    """
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(
            sa.func.hashtext("syncledger projections " + sa.func.current_schema()))))


def tables_of(names: Sequence[str]) -> list[sa.Table]:
    return [t for n in names for t in PROJECTIONS[n].tables]


#: (database, schema, projection) whose tables were checked against their columns in this
#: process: the check reads the catalog, so it is made once, not at every catch-up.
_shape_checked: set[tuple[str, str, str]] = set()


def _reshape(conn: Connection, names: Sequence[str]) -> None:
    """A read model whose stored table has other columns than this version defines (a
    column was added) is dropped with its tracking row, so it is built again from the
    log: read models are derived, the events are the truth."""
    where = (str(conn.engine.url), str(conn.execute(sa.text(
        "SELECT current_schema()" if conn.dialect.name == "postgresql" else "SELECT 'main'"
    )).scalar()))
    todo = [n for n in names if (*where, n) not in _shape_checked]
    if not todo:
        return
    inspector = sa.inspect(conn)
    stale = [n for n in todo if any(
        inspector.has_table(t.name)
        and {c["name"] for c in inspector.get_columns(t.name)} != set(t.c.keys())
        for t in PROJECTIONS[n].tables)]
    if stale:
        metadata.drop_all(conn, tables=tables_of(stale), checkfirst=True)
        if inspector.has_table(tracking.name):
            conn.execute(tracking.delete().where(tracking.c.name.in_(stale)))
    _shape_checked.update((*where, n) for n in todo)


def ensure(conn: Connection, names: Sequence[str]) -> None:
    """Create missing tables and tracking rows (position 0) for these projections; a
    read model stored in an older shape is rebuilt (``_reshape``)."""
    with conn.begin():
        _serialize_ddl(conn)
        _reshape(conn, names)
        metadata.create_all(conn, tables=[tracking, *tables_of(names)], checkfirst=True)
        existing = set(conn.execute(sa.select(tracking.c.name)).scalars())
        missing = [{"name": n, "position": 0} for n in names if n not in existing]
        if missing:  # ``_serialize_ddl`` / ``BEGIN IMMEDIATE``: no one else inserts now
            conn.execute(tracking.insert(), missing)


# --- running ------------------------------------------------------------------


#: Projections whose tables ``ensure`` made or found, by engine: asked once, not at
#: every catch-up (the check reads the catalog; a service asks in every job).
_ensured: weakref.WeakKeyDictionary[Engine, set[str]] = weakref.WeakKeyDictionary()


#: The projections (by index) that want a topic, and their handlers.
_Route = tuple[tuple[int, ...], tuple[Handler, ...]]


class _Runner:
    """One catch-up run over one connection: projection instances and routing."""

    def __init__(self, store: Store, names: Sequence[str]) -> None:
        self.names = list(names)
        self.projections = [PROJECTIONS[n]() for n in self.names]
        self.log_sql = _log_sql(store)
        self.head_sql = _head_sql(store)
        self.hex_ids = store.url.kind == "sqlite"
        self.routes = _Routes(self.projections)
        self.ids: dict[Any, str] = {}

    def meeting_id(self, raw: Any) -> str:
        """Canonical UUID text, whether the store keeps hex (SQLite, converted once per
        id and kept) or uuid (PostgreSQL, read as its own canonical text: nothing to do)."""
        if not self.hex_ids:
            return str(raw)
        mid = self.ids.get(raw)
        if mid is None:
            if len(self.ids) > 200_000:
                self.ids.clear()
            if len(raw) == 32:  # SQLite keeps uuid.hex
                mid = f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}".lower()
            else:
                mid = str(UUID(str(raw)))
            self.ids[raw] = mid
        return mid

    def positions(self, conn: Connection, *, lock: bool = True) -> list[int] | None:
        """Committed positions, locked for this batch; None if a row went missing."""
        q = sa.select(tracking.c.name, tracking.c.position).where(
            tracking.c.name.in_(self.names)).order_by(tracking.c.name)
        if lock and conn.dialect.name == "postgresql":
            q = q.with_for_update()
        found = {str(n): int(p) for n, p in conn.execute(q)}
        if len(found) != len(self.names):
            return None  # dropped by a rebuild meanwhile
        return [found[n] for n in self.names]

    def head(self, conn: Connection) -> int:
        return int(conn.exec_driver_sql(self.head_sql).scalar() or 0)

    def batch(self, conn: Connection, limit: int) -> dict[str, int] | None:
        """Apply the next events (at most ``limit``); None at the head of the log."""
        pos = self.positions(conn)
        if pos is None:
            raise _Missing
        start, caught_up = min(pos), max(pos)
        cursor = conn.connection.cursor()
        try:
            cursor.execute(self.log_sql, (start, limit))
            rows = cursor.fetchall()
        finally:
            cursor.close()
        if not rows:
            return None
        # Route first, so the projections can load what the batch's meetings need
        # in bulk; then decode each wanted event once and hand it over.
        work: list[tuple[int, str, Any, tuple[Handler, ...]]] = []
        routes, ids = self.routes, self.ids
        for position, oid, topic, state in rows:
            owners, fns = routes[topic]
            if not fns:
                continue
            if position <= caught_up:  # some projection already holds this event
                fns = tuple(fn for i, fn in zip(owners, fns, strict=True) if position > pos[i])
                if not fns:
                    continue
            work.append((position, ids.get(oid) or self.meeting_id(oid), state, fns))
        meetings = {w[1] for w in work}
        for p in self.projections:
            p.start_batch(conn, meetings)
        loads = orjson.loads
        for position, mid, state, fns in work:
            d = loads(state)
            for fn in fns:
                fn(mid, d, position)
        last = int(rows[-1][0])
        for p in self.projections:
            p.flush(conn)
        counts = {}
        moved = []
        for name, old in zip(self.names, pos, strict=True):
            counts[name] = sum(1 for r in rows if r[0] > old) if old > start else len(rows)
            if last > old:
                moved.append({"n": name, "p": last})
        _move(conn, moved)
        return counts

    def run(self, conn: Connection, progress: Progress | None, batch_size: int,
            max_events: int | None, on_batch: OnBatch | None, *, bulk: bool = True,
            rebuild: bool = False, bulk_max: int = BULK_MAX_EVENTS) -> dict[str, int]:
        """Catch up; with ``bulk``, first build the read models at position 0 (all of
        them with ``rebuild``) in one pass (``build``) over at most ``bulk_max`` events,
        then the tail batch by batch."""
        totals = dict.fromkeys(self.names, 0)
        # Once per engine (per open store): the tables and tracking rows exist from then
        # on, unless a rebuild drops them, which the batch finds (``_Missing``).
        made = _ensured.setdefault(conn.engine, set())
        if not made.issuperset(self.names):
            ensure(conn, self.names)
            made.update(self.names)
        # Where the read models stand and where the log ends, read without a lock: a
        # caught-up read model (the service asks in every job) then costs this one
        # transaction, not the batch's lock on the tracking rows (on PostgreSQL a
        # ``FOR UPDATE`` writes the rows, and its commit waits for the WAL's flush).
        with conn.begin():
            pos = self.positions(conn, lock=False)
            head = self.head(conn)
        if not rebuild and pos is not None and min(pos, default=0) >= head:
            return totals
        todo = max(head - (0 if rebuild else min(pos or [0])), 0)
        done = 0
        fresh = [n for n, p in zip(self.names, pos or [0] * len(self.names), strict=True)
                 if p == 0 or rebuild]
        if bulk and fresh and todo:  # (an empty log: nothing to build, no connection)
            limit = bulk_max if max_events is None else min(max_events, bulk_max)
            built = self.build(conn, fresh, replace=rebuild, limit=limit,
                               batch_size=batch_size, progress=progress, todo=todo)
            if built:
                for name in fresh:
                    totals[name] += built
                done = built
                if on_batch is not None:
                    on_batch({n: built if n in fresh else 0 for n in self.names})
        while max_events is None or done < max_events:
            limit = batch_size if max_events is None else min(batch_size, max_events - done)
            try:
                with conn.begin():
                    counts = self.batch(conn, limit)
            except _Missing:
                ensure(conn, self.names)
                continue
            if counts is None:
                break
            for name, n in counts.items():
                totals[name] += n
            done += max(counts.values())
            if progress is not None:
                progress(done, max(todo, done))
            if on_batch is not None:
                on_batch(counts)
        return totals

    def build(self, conn: Connection, names: list[str], *, replace: bool, limit: int | None,
              batch_size: int, progress: Progress | None, todo: int) -> int:
        """Build these read models from zero in one pass; returns the events folded (0 if
        another runner built them meanwhile: the batches then go on from theirs).

        The log up to its head now is read with a connection of its own (no write
        lock held while folding), every event decoded once and folded in memory by
        fresh projections; then one transaction replaces the tables (``_write_all``)
        and moves the tracking rows. ``replace``: build them even if they hold
        events (``rebuild``), else only if they still stand at position 0.
        """
        projections = [PROJECTIONS[n]() for n in names]
        routes = _Routes(projections)
        read = last = 0
        raw = conn.engine.raw_connection()
        try:
            if conn.dialect.name == "postgresql":  # no transaction held open while folding
                raw.driver_connection.autocommit = True  # type: ignore[union-attr]
            cursor = raw.cursor()
            cursor.execute(self.head_sql)
            head = int((cursor.fetchone() or (0,))[0] or 0)
            ids, meeting_id, loads = self.ids, self.meeting_id, orjson.loads
            while last < head and (limit is None or read < limit):
                size = batch_size if limit is None else min(batch_size, limit - read)
                cursor.execute(self.log_sql, (last, size))
                rows = cursor.fetchall()
                if rows and rows[-1][0] > head:  # appended since the fold began: the tail's
                    rows = [r for r in rows if r[0] <= head]
                if not rows:
                    break
                for position, oid, topic, state in rows:
                    fns = routes[topic][1]
                    if fns:
                        d = loads(state)
                        mid = ids.get(oid) or meeting_id(oid)
                        for fn in fns:
                            fn(mid, d, position)
                read += len(rows)
                last = int(rows[-1][0])
                if progress is not None:
                    progress(read, max(todo, read))
            cursor.close()
        finally:
            if conn.dialect.name == "postgresql":  # back to the pool as it was taken out:
                # a pooled connection left in autocommit would run the next transaction
                # (the tables' replacement) statement by statement, so a crash kept half
                try:
                    raw.driver_connection.autocommit = False  # type: ignore[union-attr]
                except Exception:  # a broken connection: never back to the pool
                    raw.invalidate()
            raw.close()
        if not read:
            return 0
        tables = [(t, list(rows)) for p in projections for t, rows in p.final_rows()]
        del projections, routes
        with conn.begin():
            _serialize_ddl(conn)
            q = sa.select(tracking.c.name, tracking.c.position).where(tracking.c.name.in_(names))
            if conn.dialect.name == "postgresql":
                q = q.with_for_update()
            if not replace and any(p != 0 for _, p in conn.execute(q)):
                return 0  # another runner built them while this one folded
            _write_all(conn, tables)
            conn.execute(tracking.delete().where(tracking.c.name.in_(names)))
            conn.execute(tracking.insert(), [{"name": n, "position": last} for n in names])
        if conn.dialect.name == "sqlite":
            # The new tables went to the WAL; copy them into the database now rather than
            # leave it to the next writer's commit (PASSIVE: no reader waits for it).
            conn.connection.dbapi_connection.execute(  # type: ignore[union-attr]
                "PRAGMA wal_checkpoint(PASSIVE)")
        return read


class _Routes(dict[str, _Route]):
    """Topic -> the projections (by index) that want its events and their handlers
    (``ledger.meeting:Meeting.Linked`` -> those of ``Meeting.Linked``), worked out at a
    topic's first event."""

    def __init__(self, projections: Sequence[Projection]) -> None:
        super().__init__()
        self.by_event: dict[str, list[tuple[int, Handler]]] = {}
        for i, p in enumerate(projections):
            for name, handler in p.handlers().items():
                self.by_event.setdefault(name, []).append((i, handler))

    def __missing__(self, topic: str) -> _Route:
        wanting = self.by_event.get(topic.partition(":")[2], [])
        found = self[topic] = (tuple(i for i, _ in wanting), tuple(fn for _, fn in wanting))
        return found


def _write_all(conn: Connection, tables: list[tuple[sa.Table, list[Sequence[Any]]]]) -> None:
    """Replace these tables by these rows: drop, create without secondary indexes, insert
    every row once in primary-key order (appends at the end of each B-tree: no page
    is written twice), then build the indexes over the loaded rows. In the caller's
    transaction (SQLite and PostgreSQL both roll DDL back)."""
    metadata.drop_all(conn, tables=[t for t, _ in tables], checkfirst=True)
    quote = conn.dialect.identifier_preparer.quote
    for table, rows in tables:
        conn.execute(sa.schema.CreateTable(table))
        key = [i for i, c in enumerate(table.columns) if c.primary_key]
        if key == list(range(len(key))):  # the key leads and is unique: compare whole rows
            cast(list[tuple[Any, ...]], rows).sort()  # no key tuple per row: a third faster
        else:
            rows.sort(key=itemgetter(*key))
        columns = ", ".join(quote(c.name) for c in table.columns)
        cursor = conn.connection.cursor()  # the driver's own, in this transaction
        try:
            if conn.dialect.name == "postgresql":
                with cursor.copy(f"COPY {quote(table.name)} ({columns}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            elif rows:
                marks = ", ".join("?" * len(table.columns))
                cursor.executemany(
                    f"INSERT INTO {quote(table.name)} ({columns}) VALUES ({marks})", rows)
        finally:
            cursor.close()
        rows.clear()  # let the memory go as the load goes on
        for index in sorted(table.indexes, key=lambda i: str(i.name)):
            index.create(conn)


class _Missing(Exception):
    """A tracking row vanished (a rebuild dropped it): create it again and go on."""


def catch_up(store: Store, names: Iterable[str] | None = None,
             progress: Progress | None = None, *, batch_size: int = BATCH_SIZE,
             max_events: int | None = None, on_batch: OnBatch | None = None,
             bulk: bool = True, bulk_max: int = BULK_MAX_EVENTS) -> dict[str, int]:
    """Apply every event not yet applied; returns events applied per projection.

    Read models at position 0 are built in one pass (``_Runner.build``); ``bulk=False``
    applies every event batch by batch instead, as the live tail is; ``bulk_max`` bounds
    the one pass (and so its memory). ``max_events`` stops early (after that many log
    events), as a crash would.
    """
    chosen = selected(names)
    with fewer_gc_passes(), engine_for(store).connect() as conn:
        return _Runner(store, chosen).run(conn, progress, batch_size, max_events, on_batch,
                                          bulk=bulk, bulk_max=bulk_max)


def rebuild(store: Store, name: str | None = None, progress: Progress | None = None, *,
            batch_size: int = BATCH_SIZE, bulk_max: int = BULK_MAX_EVENTS
            ) -> dict[str, int]:
    """Build one projection (or all) again from the log in one pass (over at most
    ``bulk_max`` events), then catch up its tail. The old tables answer queries until
    the new ones replace them in one commit."""
    chosen = selected(None if name is None else [name])
    with fewer_gc_passes(), engine_for(store).connect() as conn:
        return _Runner(store, chosen).run(conn, progress, batch_size, None, None,
                                          rebuild=True, bulk_max=bulk_max)


def drop(store: Store, names: Iterable[str] | None = None) -> None:
    """Remove projections' tables and tracking rows (their next catch-up starts at zero)."""
    chosen = selected(names)
    engine = engine_for(store)
    _ensured.get(engine, set()).difference_update(chosen)
    with engine.connect() as conn, conn.begin():
        _serialize_ddl(conn)
        metadata.drop_all(conn, tables=tables_of(chosen), checkfirst=True)
        if _has_table(conn, tracking.name):
            conn.execute(tracking.delete().where(tracking.c.name.in_(chosen)))


class NotBuilt(LookupError):
    """A read-only ledger whose read models were never built (nothing may be written)."""


def require_built(store: Store, names: Iterable[str]) -> int:
    """For a store opened read-only: the read models must exist as they stand; returns how
    many log events they are behind (they cannot be caught up without writing)."""
    chosen = selected(names)
    done = positions(store)
    missing = [n for n in chosen if n not in done]
    if missing:
        raise NotBuilt(f"the read model {', '.join(missing)} was never built in this "
                       "read-only ledger (run 'syncledger project' where it can be written)")
    return max(0, store.max_position() - min(done[n] for n in chosen))


def positions(store: Store) -> dict[str, int]:
    """Committed position of every projection that has one."""
    with reading(store) as conn:
        if not _has_table(conn, tracking.name):
            return {}
        return {str(n): int(p) for n, p in conn.execute(
            sa.select(tracking.c.name, tracking.c.position).order_by(tracking.c.name))}


def follow(store: Store, stop: threading.Event, on_batch: OnBatch | None = None, *,
           names: Iterable[str] | None = None, batch_size: int = BATCH_SIZE,
           poll_interval: float = 0.2) -> None:
    """Keep the projections caught up until ``stop`` is set.

    PostgreSQL wakes on the event store's NOTIFY (every insert notifies the
    recorder's channel); SQLite polls every ``poll_interval`` seconds. A
    missed notification costs at most one ``poll_interval``.
    """
    chosen = selected(names)
    runner = _Runner(store, chosen)
    listener = _listen(store) if store.url.kind == "postgresql" else None
    try:
        with engine_for(store).connect() as conn:
            while not stop.is_set():
                runner.run(conn, None, batch_size, None, on_batch)
                if listener is None:
                    stop.wait(poll_interval)
                else:
                    for _ in listener.notifies(timeout=poll_interval, stop_after=1):
                        pass
    finally:
        if listener is not None:
            listener.close()


def _listen(store: Store) -> Any:
    """A psycopg connection listening on the event store's notification channel."""
    import psycopg
    from psycopg import sql

    url = store.url
    channel = str(getattr(store.recorder, "channel_name", "stored_events"))
    conn = psycopg.connect(host=url.host, port=url.port, user=url.user,
                           password=url.password or None, dbname=url.dbname, autocommit=True)
    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
    return conn
