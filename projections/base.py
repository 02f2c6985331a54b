"""What every stored projection shares: the table registry, tracking, upserts.

A projection is a class with a ``name``, its ``tables``, and ``handlers``
keyed by event name (``"Meeting.Linked"``). The runner reads the ledger's log
once, hands each decoded event to the projections that want it, then asks
each to ``flush`` its batch with a few ``executemany`` statements, and
commits their rows together with their tracking positions. Handlers only
collect; ``flush`` writes. No handler reads the database: a projection that
needs earlier facts loads them in bulk once per batch.

Built from zero, a projection instead folds the whole log in memory and gives
its final rows once (``final_rows``); the runner writes each table in one pass
in key order, then its indexes (see ``projections.runner``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from operator import itemgetter
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql.dml import UpdateBase

#: Text compared and sorted byte by byte on both databases, so every query
#: returns rows in the same order on SQLite and on PostgreSQL.
Str = sa.String().with_variant(sa.String(collation="C"), "postgresql")

#: Every projection table (and the tracking table) lives in this MetaData,
#: without a schema: on PostgreSQL the runner's connections set ``search_path``
#: to the ledger's schema.
metadata = sa.MetaData()

#: One row per projection: the last log position whose effects it holds.
tracking = sa.Table(
    "projection_tracking", metadata,
    sa.Column("name", Str, primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
)

#: Handler arguments: meeting (aggregate) id, decoded event state, log position.
Handler = Callable[[str, dict[str, Any], int], None]

#: Rows are lists of dicts whose keys are column names.
Row = dict[str, Any]


class Projection:
    """One read model. Subclasses collect in handlers and write in ``flush``."""

    name: ClassVar[str]
    tables: ClassVar[tuple[sa.Table, ...]]

    def handlers(self) -> Mapping[str, Handler]:
        """Event name (``Class.Event``) -> handler, for the events this model reads."""
        raise NotImplementedError

    def start_batch(self, conn: Connection, meetings: Collection[str]) -> None:
        """Load the persistent state a batch needs (inside its transaction).

        ``meetings`` holds the ids of the meetings whose events the batch will
        hand over, so their stored state can be loaded in bulk up front.
        """

    def flush(self, conn: Connection) -> None:
        """Write what the batch collected, then forget it."""
        raise NotImplementedError

    def final_rows(self) -> Iterable[tuple[sa.Table, list[Sequence[Any]]]]:
        """After a fold of the log from its first event, with nothing stored: every row
        of each table, as values in the table's column order (in any order: the runner
        sorts them by primary key). Called instead of ``flush``, once."""
        raise NotImplementedError


def in_column_order(table: sa.Table, rows: Iterable[Mapping[str, Any]]) -> list[Sequence[Any]]:
    """Dict rows keyed by column name as tuples in the table's column order."""
    get = itemgetter(*table.c.keys())
    return [get(r) for r in rows]


def as_dict(row: Any) -> Row:
    """A result row as a plain dict with plain ``str`` keys.

    SQLAlchemy 2.1 keys rows by ``quoted_name`` (a ``str`` subclass), which
    orjson refuses as a dict key; every read model answers through this.
    """
    return {str(k): v for k, v in row._mapping.items()}


def chunks(values: Sequence[Any], size: int = 500) -> Iterable[Sequence[Any]]:
    """Slices small enough for an ``IN (...)`` list on every database."""
    for i in range(0, len(values), size):
        yield values[i:i + size]


class Bulk:
    """A Core DML statement compiled once per database, then run for many rows.

    ``Connection.execute(stmt, rows)`` re-processes every row's parameters in
    Python; at 100,000 events a second that is most of a batch. The statement
    is compiled once per database with positional parameters (SQLite ``?``,
    psycopg ``%s``) and run with the driver's own ``executemany`` (or, where
    the statement takes arrays, as one statement for all rows), so the
    per-row cost stays in the driver. Rows come as dicts (turned into tuples
    by ``itemgetter``, in C) or, cheapest, already as tuples in parameter
    order. Values must already be what the driver takes (str, int, bool,
    None): no type processing happens per row.
    """

    def __init__(self, build: Callable[[Dialect], UpdateBase], *,
                 arrays_on: frozenset[str] = frozenset()) -> None:
        """``arrays_on``: databases where ``build`` takes each parameter as an array
        of every row's values (one statement for all rows; see :func:`upserter`)."""
        self.build = build
        self.arrays_on = arrays_on
        self._compiled: dict[str, _Compiled] = {}

    def __call__(self, conn: Connection, rows: Iterable[Mapping[str, Any]]) -> None:
        """Run the statement once per row; a row is a dict keyed by parameter name."""
        compiled = self._statement(conn.dialect)
        self._run(conn, compiled, [compiled.convert(r) for r in rows])

    def tuples(self, conn: Connection, rows: Iterable[Sequence[Any]]) -> None:
        """Run the statement once per row; a row holds its parameters' values in order
        (for an :func:`upserter`, the table's columns in order)."""
        compiled = self._statement(conn.dialect)
        if compiled.consts:
            raise TypeError("a statement with constant parameters takes dict rows")
        self._run(conn, compiled, rows if isinstance(rows, list) else list(rows))

    def _run(self, conn: Connection, compiled: _Compiled, rows: Sequence[Sequence[Any]]
             ) -> None:
        if not rows:
            return
        cursor = conn.connection.cursor()  # the driver's own, in the connection's transaction
        try:
            if conn.dialect.name in self.arrays_on:  # one statement: a list per parameter
                cursor.execute(compiled.sql, [list(values) for values in zip(*rows, strict=True)])
            else:
                cursor.executemany(compiled.sql, rows)
        finally:
            cursor.close()

    def _statement(self, dialect: Dialect) -> _Compiled:
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            compiled = self._compiled[dialect.name] = _compile(self.build, dialect)
            if dialect.name in self.arrays_on:
                # psycopg's ``%b``: arrays sent in binary (its text format quotes
                # each element with a regex, 3-4 times slower).
                compiled.sql = compiled.sql.replace("%s", "%b")
        return compiled


class _Compiled:
    """A statement's SQL with positional parameters, and how a dict row maps onto them."""

    def __init__(self, sql: str, names: Sequence[str], consts: Mapping[str, Any]) -> None:
        self.sql = sql
        self.names = tuple(names)
        self.consts = dict(consts)
        self.convert: Callable[[Mapping[str, Any]], Sequence[Any]]
        if consts:
            self.convert = lambda r: tuple(r[n] if n in r else consts[n] for n in names)
        elif len(names) == 1:
            name = names[0]
            self.convert = lambda r: (r[name],)
        else:
            self.convert = itemgetter(*names)  # a tuple of the row's values, in C


def _compile(build: Callable[[Dialect], UpdateBase], dialect: Dialect) -> _Compiled:
    if not dialect.positional:  # psycopg's default is named: ask for its ``%s`` style
        positional: Any = type(dialect)
        dialect = positional(paramstyle="format")
    c = build(dialect).compile(dialect=dialect)
    assert c.positiontup is not None
    consts = {name: b.value for name, b in c.binds.items()
              if not b.required and b.value is not None and name in c.positiontup}
    return _Compiled(c.string, c.positiontup, consts)


def upsert_statement(dialect: Dialect, table: sa.Table,
                     set_: Callable[[Any], Mapping[str, Any]] | None = None) -> UpdateBase:
    """Insert a row, or update it in place when its primary key exists.

    ``set_(stmt)`` gives the update clause (e.g. ``count = count + excluded.count``
    via ``stmt.excluded``); by default every non-key column takes the new value.
    On PostgreSQL each parameter is an array holding every row's value of that
    column, unnested into rows: one statement per batch instead of a round of
    the pipeline per row (psycopg's ``executemany`` spent ~60 µs a row in
    Python). The rows of one call must then have distinct keys.
    """
    columns = list(table.columns)
    stmt: Any
    if dialect.name == "postgresql":
        rows = _unnested(columns)
        stmt = postgresql.insert(table).from_select([c.name for c in columns],
                                                    sa.select(*rows.c))
    else:
        stmt = sqlite.insert(table)
    keys = [c.name for c in table.primary_key.columns]
    values = dict(set_(stmt)) if set_ is not None else {
        c.name: stmt.excluded[c.name] for c in columns if c.name not in keys}
    upsert: UpdateBase = stmt.on_conflict_do_update(index_elements=keys, set_=values)
    return upsert


def delete_statement(dialect: Dialect, table: sa.Table, keys: Sequence[str]) -> UpdateBase:
    """Delete the rows whose ``keys`` columns hold a row's values (parameters: ``keys``).

    On PostgreSQL, as :func:`upsert_statement`: one array per key column, unnested
    (``DELETE ... USING``), one statement per batch.
    """
    columns = [table.c[k] for k in keys]
    if dialect.name == "postgresql":
        rows = _unnested(columns)
        return table.delete().where(*(c == rows.c[c.name] for c in columns))
    return table.delete().where(*(c == sa.bindparam(c.name) for c in columns))


def _unnested(columns: Sequence[sa.Column[Any]]) -> Any:
    """``unnest(%s::type[], ...) AS anon(column, ...)``: one array parameter per column."""
    return sa.func.unnest(*(sa.bindparam(c.name, type_=postgresql.ARRAY(type(c.type)()))
                            for c in columns)
                          ).table_valued(*(c.name for c in columns)).render_derived()


def deleter(table: sa.Table, *keys: str) -> Bulk:
    """A :class:`Bulk` delete by key (tuples: the ``keys`` columns' values, in order)."""
    return Bulk(lambda dialect: delete_statement(dialect, table, keys),
                arrays_on=frozenset({"postgresql"}))


def upserter(table: sa.Table, set_: Callable[[Any], Mapping[str, Any]] | None = None) -> Bulk:
    """A :class:`Bulk` upsert of whole rows of ``table`` (tuples: the table's column order).

    The rows of one call must have distinct primary keys (see :func:`upsert_statement`).
    """
    return Bulk(lambda dialect: upsert_statement(dialect, table, set_),
                arrays_on=frozenset({"postgresql"}))
