"""``whatif``: re-decide the whole recorded history under changed settings.

The ledger stores every observation in domain form, so the history can be fed
again, in its original order, into a scratch ledger whose settings carry the
overrides at every point. Comparing the two ledgers meeting by meeting shows
what the change would do. The real ledger is only read.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson

from ledger.intake import Intake, Ledger
from ledger.meeting import Meeting
from ledger.observations import SettingsChanged, from_record
from ledger.settings import OrgSettings, SettingsError, validate_changes
from ledger.store import Store


def parse_override(text: str) -> tuple[str, str, Any]:
    """``KEY=VALUE``, ``KEY+=VALUE`` (add to a list) or ``product_users.EMAIL=USER_ID``.

    VALUE is read as JSON when it parses (``true``, ``["a","b"]``), else as text.
    """
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise SettingsError(text, "expected KEY=VALUE, KEY+=VALUE or product_users.EMAIL=ID")
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw
    if key.endswith("+"):
        key = key[:-1]
        if key not in ("org_domains", "salesforce_time_zones"):
            raise SettingsError(key, "'+=' adds to org_domains or salesforce_time_zones only")
        validate_changes({key: [value]})
        return ("add", key, value)
    if key.startswith("product_users."):
        email = key.partition(".")[2]
        validate_changes({"product_users": {email: value}})
        return ("user", email.lower(), value)
    validate_changes({key: value})
    return ("set", key, value)


def apply_overrides(settings: OrgSettings, overrides: list[tuple[str, str, Any]]
                    ) -> dict[str, Any]:
    """The full settings payload in force once the overrides are laid on ``settings``."""
    rec = settings.as_record()
    rec.pop("version")
    for op, key, value in overrides:
        if op == "set":
            rec[key] = value
        elif op == "add":
            rec[key] = sorted({*rec[key], value})
        else:
            rec["product_users"] = {**rec["product_users"], key: value}
    return validate_changes(rec)


def recorded_history(store: Store, overrides: list[tuple[str, str, Any]]) -> Iterator[Intake]:
    """Every recorded observation in log order; settings with the overrides laid on."""
    current = OrgSettings()
    yield Intake("whatif", None, b"", SettingsChanged(
        "0001-01-01T00:00:00Z", apply_overrides(current, overrides)))
    after = 0
    while True:
        rows = store.read_log(after)
        if not rows:
            return
        for position, _oid, _version, topic, raw in rows:
            after = position
            state = orjson.loads(raw)
            if topic.endswith("Org.SettingsChanged"):
                current = current.applied(state["changes"])
                yield Intake("whatif", position, b"", SettingsChanged(
                    state["timestamp"], apply_overrides(current, overrides)))
            elif "observation" in state:
                yield Intake("whatif", position, b"", from_record(state["observation"]))


def outcome(m: Meeting) -> dict[str, Any]:
    """What a person would notice about a meeting: does it sync, issues, conflicts."""
    return {
        "syncs": bool(m.saves or m.down_syncs or m.links),
        "issues": sorted(f"{i['rule']} on {i['item_key']}" for i in m.issues.values()),
        "conflicts": sorted(m.conflicts),
    }


def whatif(store: Store, assignments: list[str]) -> dict[str, Any]:
    overrides = [parse_override(a) for a in assignments]
    with tempfile.TemporaryDirectory(prefix="syncledger-whatif-") as tmp:
        scratch = Store.open(str(Path(tmp) / "whatif.db"))
        try:
            Ledger(scratch, batch_size=2000).ingest(recorded_history(store, overrides))
            return _compare(store, scratch, assignments)
        finally:
            scratch.close()


def _compare(real: Store, scratch: Store, assignments: list[str]) -> dict[str, Any]:
    diff: dict[str, list[dict[str, Any]]] = {
        "would_now_sync": [], "would_stop_syncing": [], "issues_disappear": [],
        "issues_appear": [], "conflicts_disappear": [], "conflicts_appear": []}
    ids: set[UUID] = set(real.meeting_ids()) | set(scratch.meeting_ids())
    for mid in sorted(ids):
        before = _outcome_or_none(real, mid)
        after = _outcome_or_none(scratch, mid)
        if before == after:
            continue
        b = before or {"syncs": False, "issues": [], "conflicts": []}
        a = after or {"syncs": False, "issues": [], "conflicts": []}
        ref = {"meeting_id": str(mid)}
        if a["syncs"] and not b["syncs"]:
            diff["would_now_sync"].append(ref)
        if b["syncs"] and not a["syncs"]:
            diff["would_stop_syncing"].append(ref)
        for name, gone, new in (("issues", "issues_disappear", "issues_appear"),
                                ("conflicts", "conflicts_disappear", "conflicts_appear")):
            for value in sorted(set(b[name]) - set(a[name])):
                diff[gone].append({**ref, name[:-1]: value})
            for value in sorted(set(a[name]) - set(b[name])):
                diff[new].append({**ref, name[:-1]: value})
    return {"settings": assignments, **diff}


def _outcome_or_none(store: Store, mid: UUID) -> dict[str, Any] | None:
    try:
        return outcome(store.meeting(mid))
    except Exception as exc:
        if type(exc).__name__ == "AggregateNotFoundError":
            return None
        raise
