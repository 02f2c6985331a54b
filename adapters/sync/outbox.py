"""The outbox: each planned write is done once, even across a crash.

A write's outbox key is its plan key plus a hash of its content, so a changed
write (new values for the same occurrence) is a new entry while a repeated one
is recognised. Before a write goes out its row says ``sending``; after, ``done``
with the result. A row still ``sending`` at the next run is the crash window:
for creates the executor first looks for the object by its cross-reference
marker before creating again; updates, category writes and deletes are
idempotent and are simply sent again. A row still ``sending`` or ``failed``
whose write has left the plan (the calendars show its effect: the process died
after writing) is closed as ``settled`` at the end of the cycle; so is a ``done``
row whose write has left the plan (the calendars show it), so that the same
content planned again later (a value changed back, "Error" put on an item a
second time) is a new write, not one already done. A ``refused``
row (the API answered with an error code, ``adapters.sync.refusals``) is not
sent again: the same write has the same key, a changed write gets a new one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

import orjson

from ledger.store import Store

DDL = ("CREATE TABLE IF NOT EXISTS {p}outbox (key TEXT PRIMARY KEY, write_key TEXT NOT NULL, "
       "meeting_id TEXT, target TEXT NOT NULL, op TEXT NOT NULL, request TEXT NOT NULL, "
       "state TEXT NOT NULL, result TEXT, error TEXT, attempts INTEGER NOT NULL, "
       "updated_at TEXT NOT NULL)")


@dataclass(frozen=True)
class Entry:
    key: str
    state: str  # sending | done | failed | refused | settled
    result: dict[str, Any] | None
    attempts: int
    error: str | None = None


def outbox_key(write: dict[str, Any]) -> str:
    """Plan key + content hash: the idempotency key of one write."""
    content = orjson.dumps({k: write.get(k) for k in ("target", "op", "mailbox", "id",
                                                      "fields")}, option=orjson.OPT_SORT_KEYS)
    return f"{write['key']}#{hashlib.sha1(content).hexdigest()[:16]}"


class Outbox:
    def __init__(self, store: Store) -> None:
        self.store = store
        store.create_once(DDL)  # each service job opens an Outbox

    def get(self, key: str) -> Entry | None:
        rows = self.store.query("SELECT key, state, result, attempts, error FROM {p}outbox "
                                "WHERE key = ?", (key,))
        if not rows:
            return None
        k, state, result, attempts, error = rows[0]
        return Entry(str(k), str(state), orjson.loads(result) if result else None, int(attempts),
                     str(error) if error is not None else None)

    def sending(self, key: str, write: dict[str, Any], meeting_id: str, now: str) -> None:
        self.store.execute("INSERT INTO {p}outbox (key, write_key, meeting_id, target, op, "
                          "request, state, attempts, updated_at) VALUES (?, ?, ?, ?, ?, ?, "
                          "'sending', 1, ?) ON CONFLICT (key) DO UPDATE SET state = 'sending', "
                          "attempts = outbox.attempts + 1, updated_at = excluded.updated_at",
                       (key, write["key"], meeting_id, write["target"], write["op"],
                        orjson.dumps(write).decode(), now))

    def finish(self, key: str, state: str, now: str, result: dict[str, Any] | None = None,
               error: str | None = None) -> None:
        self.store.execute("UPDATE {p}outbox SET state = ?, result = ?, error = ?, "
                          "updated_at = ? WHERE key = ?",
                       (state, orjson.dumps(result).decode() if result is not None else None,
                        error, now, key))

    def settle_absent(self, pending: Collection[str], now: str, *, target: str | None = None,
                      mailbox: str | None = None,
                      elsewhere: Callable[[set[str]], set[str]] | None = None) -> int:
        """Entries left ``sending``, ``failed``, ``refused`` or ``done`` whose write the
        plan no longer holds.

        The calendars already show their effect (a process died after writing,
        or someone else did it, or it was done), so they are closed as ``settled``,
        not retried; the same write planned again later goes out again.
        ``target`` / ``mailbox`` limit it to the entries one job owns, so a job
        never closes a write another job is sending right now. ``pending`` is then
        that job's part of the plan, and ``elsewhere(keys)`` says which of the other
        keys the rest of the plan holds (asked only when there are such entries).
        """
        sql = ("SELECT key, write_key, target, request FROM {p}outbox "
               "WHERE state IN ('sending', 'failed', 'refused', 'done')")
        open_rows = self.store.query(sql + " AND target = ?", (target,)) \
            if target is not None else self.store.query(sql)
        absent = [(str(k), str(write_key)) for k, write_key, _target, request in open_rows
                  if write_key not in pending
                  and (mailbox is None or orjson.loads(request).get("mailbox") == mailbox)]
        held = elsewhere({w for _, w in absent}) if elsewhere is not None and absent \
            else set()
        gone = [k for k, write_key in absent if write_key not in held]
        for key in gone:
            self.store.execute("UPDATE {p}outbox SET state = 'settled', updated_at = ? "
                               "WHERE key = ?", (now, key))
        return len(gone)

    def rows(self) -> list[dict[str, Any]]:
        names = ("key", "target", "op", "state", "attempts", "error", "updated_at")
        return [dict(zip(names, r, strict=True)) for r in self.store.query(
            "SELECT key, target, op, state, attempts, error, updated_at FROM {p}outbox "
            "ORDER BY updated_at, key")]
