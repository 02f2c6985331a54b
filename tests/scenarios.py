"""Building ledgers from raw payloads for tests: a feed in, the store's answers out."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID

import orjson

from adapters.feed.ingest import ingest_files
from adapters.sandbox.org import USER_IDS, SandboxOrg
from ledger.identity import meeting_id
from ledger.intake import IntakeResult
from ledger.meeting import Meeting
from ledger.store import Store
from projections.timeline import event_name

ORG = {"org_domains": ["contoso.com"], "product_users": dict(USER_IDS),
       "sync_private_items": False}


def org_with_settings(**overrides: Any) -> SandboxOrg:
    org = SandboxOrg()
    org.settings(0, **{**ORG, **overrides})
    return org


def ingest(store: Store, org: SandboxOrg | bytes, tmp: Path, name: str = "feed.jsonl"
           ) -> IntakeResult:
    path = tmp / name
    path.write_bytes(org if isinstance(org, bytes) else org.jsonl())
    return ingest_files(store, [path], show_progress=False)


def meeting_of(store: Store, key: str) -> Meeting:
    return store.meeting(meeting_id(key))


def events_of(store: Store, mid: UUID) -> list[tuple[str, dict[str, Any]]]:
    return [(event_name(topic), orjson.loads(state))
            for _, _, topic, state in store.stored_events(mid)]


def decisions(store: Store, mid: UUID, name: str) -> list[dict[str, Any]]:
    return [state for ev, state in events_of(store, mid) if ev == name]


def pending(m: Meeting, target: str | None = None, op: str | None = None
            ) -> list[dict[str, Any]]:
    return [w for w in m.pending.values()
            if (target is None or w["target"] == target) and (op is None or w["op"] == op)]
