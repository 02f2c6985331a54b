"""Shared fixtures: every store-backed test runs on SQLite and on PostgreSQL.

PostgreSQL is the one on this machine (127.0.0.1:5432, user postgres, db
test); each test gets its own schema, dropped afterwards, so runs never
collide. Without PostgreSQL a test fails under CI=true and skips elsewhere.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.store import Store

PG = dict(host="127.0.0.1", port=5432, user="postgres", dbname="test")
SHARED = Path(__file__).resolve().parents[2] / "shared"
FIXTURES = SHARED / "fixtures"


def postgres_reachable() -> str | None:
    """None when PostgreSQL answers, else the reason it does not."""
    import psycopg

    try:
        with psycopg.connect(**PG, connect_timeout=3):  # type: ignore[arg-type]
            return None
    except Exception as exc:  # any connection failure is a reason to skip
        return f"PostgreSQL at 127.0.0.1:5432 unreachable: {exc}"


def require_postgres() -> None:
    reason = postgres_reachable()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(reason + " (CI=true: PostgreSQL tests must run)")
    pytest.skip(reason)


def drop_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(**PG, autocommit=True) as conn:  # type: ignore[arg-type]
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'.encode())


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty ledger URL on each kind of store."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.db'}"
        return
    require_postgres()
    schema = f"t_{uuid.uuid4().hex[:20]}"
    yield f"postgresql://postgres@127.0.0.1:5432/test?schema={schema}"
    drop_schema(schema)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = Store.open(store_url)
    yield s
    s.close()
