"""The change-notification subscriptions the service keeps, one per mailbox.

Operational state like ``projections.status`` (and beside it): written by the
service as it creates and renews subscriptions and as notifications arrive,
not folded from the ledger, not replayed by ``rebuild``. The secret each
subscription's notifications must carry is kept only as its SHA-256, so the
table gives nobody the means to forge one.

Each row: mailbox, subscription_id, secret_sha256, expires_at, endpoint (the
notification URL it was made for), state (``active``; ``renew`` when Graph
asked for reauthorization; ``gone`` when Graph removed it or a renewal found
it missing: the next upkeep round subscribes again), created_at, renewed_at,
last_notice (what arrived last: created / updated / deleted or a lifecycle
event), last_notice_at, updated_at. Times are ISO-8601 UTC strings.
"""

from __future__ import annotations

from typing import Any

from ledger.store import Store

DDL = ("CREATE TABLE IF NOT EXISTS {p}push_subscriptions (mailbox TEXT PRIMARY KEY, "
       "subscription_id TEXT NOT NULL, secret_sha256 TEXT NOT NULL, expires_at TEXT NOT NULL, "
       "endpoint TEXT NOT NULL, state TEXT NOT NULL, created_at TEXT NOT NULL, "
       "renewed_at TEXT, last_notice TEXT, last_notice_at TEXT, updated_at TEXT NOT NULL)")
COLUMNS = ("mailbox", "subscription_id", "secret_sha256", "expires_at", "endpoint", "state",
           "created_at", "renewed_at", "last_notice", "last_notice_at", "updated_at")
STATES = ("active", "renew", "gone")


def ensure(store: Store) -> None:
    store.create_once(DDL)


def save(store: Store, *, mailbox: str, subscription_id: str, secret_sha256: str,
         expires_at: str, endpoint: str, at: str) -> None:
    """A subscription just created for ``mailbox`` (replacing the one before)."""
    ensure(store)
    store.execute(
        "INSERT INTO {p}push_subscriptions (mailbox, subscription_id, secret_sha256, "
        "expires_at, endpoint, state, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'active', "
        "?, ?) ON CONFLICT (mailbox) DO UPDATE SET subscription_id = excluded.subscription_id, "
        "secret_sha256 = excluded.secret_sha256, expires_at = excluded.expires_at, "
        "endpoint = excluded.endpoint, state = 'active', created_at = excluded.created_at, "
        "renewed_at = NULL, updated_at = excluded.updated_at",
        (mailbox.lower(), subscription_id, secret_sha256, expires_at, endpoint, at, at))


def renewed(store: Store, mailbox: str, *, expires_at: str, at: str) -> None:
    ensure(store)
    store.execute("UPDATE {p}push_subscriptions SET expires_at = ?, renewed_at = ?, "
                  "state = 'active', updated_at = ? WHERE mailbox = ?",
                  (expires_at, at, at, mailbox.lower()))


def mark(store: Store, mailbox: str, state: str, *, at: str) -> None:
    """``renew`` (renew at the next round) or ``gone`` (subscribe again)."""
    if state not in STATES:
        raise ValueError(f"state: one of {', '.join(STATES)}, not {state!r}")
    ensure(store)
    store.execute("UPDATE {p}push_subscriptions SET state = ?, updated_at = ? "
                  "WHERE mailbox = ?", (state, at, mailbox.lower()))


def noticed(store: Store, mailbox: str, what: str, *, at: str) -> None:
    ensure(store)
    store.execute("UPDATE {p}push_subscriptions SET last_notice = ?, last_notice_at = ? "
                  "WHERE mailbox = ?", (what, at, mailbox.lower()))


def rows(store: Store) -> list[dict[str, Any]]:
    """Every kept subscription, by mailbox."""
    ensure(store)
    return [dict(zip(COLUMNS, r, strict=True)) for r in store.query(
        f"SELECT {', '.join(COLUMNS)} FROM {{p}}push_subscriptions ORDER BY mailbox")]


def by_id(store: Store, subscription_id: str) -> dict[str, Any] | None:
    ensure(store)
    found = store.query(f"SELECT {', '.join(COLUMNS)} FROM {{p}}push_subscriptions "
                        "WHERE subscription_id = ?", (subscription_id,))
    return dict(zip(COLUMNS, found[0], strict=True)) if found else None
