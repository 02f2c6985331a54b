"""Repair plans, stored with an id so that what a person reviewed is what runs.

A plan is the drift report and the writes that repair it, as ``reconcile``
showed them. ``apply PLAN_ID`` carries out exactly those writes through the
outbox, after the mass-change guard: a write of the ledger's own plan that has
since left it (someone fixed the calendar meanwhile, or it changed) is skipped
as stale, never replaced by a newer one the reviewer did not see. A plan is
applied once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from adapters.feed.envelopes import envelope
from adapters.sync.cycle import SyncCycle, iso
from adapters.sync.guard import decide
from adapters.sync.outbox import outbox_key
from ledger.safety import Limits
from ledger.store import Store
from projections import queries

DDL = ("CREATE TABLE IF NOT EXISTS {p}reconcile_plans (id TEXT PRIMARY KEY, "
       "created_at TEXT NOT NULL, mailboxes TEXT NOT NULL, report TEXT NOT NULL, "
       "state TEXT NOT NULL, applied_at TEXT, outcome TEXT)")


class PlanNotFound(LookupError):
    pass


@dataclass
class Plan:
    id: str
    created_at: str
    report: dict[str, Any]
    state: str  # proposed | applied | empty
    outcome: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"plan_id": self.id, "created_at": self.created_at, "state": self.state,
                **self.report, "outcome": self.outcome}


class Plans:
    def __init__(self, store: Store) -> None:
        self.store = store
        store.create_once(DDL)

    def propose(self, report: dict[str, Any], now: str) -> Plan:
        body = orjson.dumps(report, option=orjson.OPT_SORT_KEYS)
        plan_id = "plan-" + hashlib.sha1(body + now.encode()).hexdigest()[:12]
        state = "proposed" if report["writes"] else "empty"
        self.store.execute("INSERT INTO {p}reconcile_plans (id, created_at, mailboxes, report, "
                           "state) VALUES (?, ?, ?, ?, ?)",
                           (plan_id, now, ",".join(sorted(report["reads"])), body.decode(),
                            state))
        return Plan(plan_id, now, report, state)

    def get(self, plan_id: str) -> Plan:
        rows = self.store.query("SELECT id, created_at, report, state, outcome FROM "
                                "{p}reconcile_plans WHERE id = ?", (plan_id,))
        if not rows:
            raise PlanNotFound(f"no repair plan {plan_id!r} in this ledger")
        pid, created, report, state, outcome = rows[0]
        return Plan(str(pid), str(created), orjson.loads(report), str(state),
                    orjson.loads(outcome) if outcome else None)

    def finish(self, plan: Plan, outcome: dict[str, Any], now: str) -> None:
        plan.state, plan.outcome = "applied", outcome
        self.store.execute("UPDATE {p}reconcile_plans SET state = 'applied', applied_at = ?, "
                           "outcome = ? WHERE id = ?",
                           (now, orjson.dumps(outcome).decode(), plan.id))


def apply(plan: Plan, plans: Plans, cycle: SyncCycle, *, allow_mass_change: bool = False
          ) -> dict[str, Any]:
    """Carry out the plan's writes as shown; what was done, skipped, held or failed."""
    if plan.state == "applied":
        return {"done": [], "stale": [], "failed": [], "held": {},
                "note": f"{plan.id} was applied already"}
    report = plan.report
    config = cycle.config
    verdict = decide(cycle.store, report["writes"], sorted(report["reads"]),
                     full_reads=report["reads"],
                     limits=Limits(config.mass_change_share, config.mass_change_count,
                                   config.mass_change_minimum),
                     allow=allow_mass_change)
    at = iso(cycle.clock())
    if verdict.notes:
        cycle.record_lines([envelope("sync.guard", at, {"action": a, "reason": r}, mailbox=m)
                            for m, a, r in verdict.notes], "guard")
    outcome: dict[str, Any] = {"done": [], "stale": [], "failed": [], "held": verdict.held}
    if verdict.held:
        return outcome  # nothing of a held plan runs; it stays proposed
    pending = {outbox_key(w) for w in queries.pending_writes(cycle.store)}
    for write in report["writes"]:
        shown = {k: write.get(k) for k in ("target", "op", "mailbox", "id", "reason", "key")}
        if not write["key"].startswith("reconcile-") and outbox_key(write) not in pending:
            outcome["stale"].append(shown)
            continue
        try:
            result = cycle.perform(write)
        except Exception as exc:  # one failed write never stops the others
            outcome["failed"].append({**shown, "error": str(exc)[:300]})
            continue
        outcome["done"].append({**shown, "id": result.get("id") or write.get("id")})
    plans.finish(plan, outcome, iso(cycle.clock()))
    return outcome
