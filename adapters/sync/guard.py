"""The mass-change guard at the edge: whose writes wait for a person's approval.

``ledger.safety.assess`` is the rule; this module counts what it needs from the
read models (a mailbox's synced items, what the plan would delete or overwrite
there) and says which mailboxes are held, which go through once on an approval
(``syncledger approve MAILBOX`` or ``--allow-mass-change``), and which holds
end. The cycle records those notes as ``sync.guard`` observations, so the
org-level sync issue and its resolution are in the ledger's history.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ledger.safety import EMPTY_READ, Limits, assess
from ledger.store import Store
from projections import queries

#: Plan operations that count against the guard: they remove or rewrite content.
DESTRUCTIVE = {"delete": "deletes", "update": "overwrites"}


@dataclass
class Verdict:
    held: dict[str, str] = field(default_factory=dict)  # mailbox -> why
    #: (mailbox, action, reason) to record: held | released
    notes: list[tuple[str, str, str]] = field(default_factory=list)


def owners(store: Store) -> tuple[Counter[str], dict[str, str]]:
    """Synced (linked) meetings per mailbox, and the mailbox of each linked Salesforce Id."""
    rows = queries.mapping(store)
    meetings = {(r["mailbox"], r["meeting_id"]) for r in rows}
    return (Counter(mailbox for mailbox, _ in meetings),
            {r["salesforce_id"]: r["mailbox"] for r in rows})


def mailbox_of(write: dict[str, Any], sf_mailbox: dict[str, str]) -> str | None:
    """The mailbox a write belongs to: its own, or that of the item its Event is linked to."""
    if write.get("mailbox"):
        return str(write["mailbox"])
    return sf_mailbox.get(str(write.get("id") or ""))


def decide(store: Store, writes: Iterable[dict[str, Any]], mailboxes: Iterable[str], *,
           full_reads: dict[str, int], limits: Limits, allow: bool = False) -> Verdict:
    """Which mailboxes are held, and the notes that record it."""
    writes = list(writes)
    if any(str(w.get("op")) in DESTRUCTIVE for w in writes) or 0 in full_reads.values():
        synced, sf_mailbox = owners(store)
    else:
        # Nothing to delete or overwrite and no full read came back empty: no verdict
        # depends on what a mailbox has synced (a share > 0 of 0 changes is never over
        # the limit), so the whole mapping is not read (the service asks in every job).
        synced, sf_mailbox = Counter[str](), {}
    touched: dict[str, dict[str, set[str]]] = {}
    for write in writes:
        what = DESTRUCTIVE.get(str(write.get("op")))
        mailbox = mailbox_of(write, sf_mailbox)
        if what and mailbox:
            meeting = str(write.get("meeting_id") or write.get("id"))
            touched.setdefault(mailbox, {}).setdefault(what, set()).add(meeting)
    counts = {m: Counter({k: len(v) for k, v in kinds.items()}) for m, kinds in touched.items()}
    safety = store.safety()
    approved = dict(safety.approved) if safety else {}
    was_held = dict(safety.held) if safety else {}
    verdict = Verdict()
    for mailbox in sorted({*mailboxes, *counts, *was_held}):
        c = counts.get(mailbox, Counter())
        reason = assess(mailbox, synced=synced[mailbox], read=full_reads.get(mailbox),
                        deletes=c["deletes"], overwrites=c["overwrites"], limits=limits)
        earlier = was_held.get(mailbox, "")
        if reason is None and earlier.startswith(EMPTY_READ) and mailbox not in full_reads:
            reason = earlier  # still unanswered: no full read has found items since
        if reason is None:
            if mailbox in was_held:
                verdict.notes.append((mailbox, "released", "the plan is within the limits"))
        elif allow or mailbox in approved:
            how = "--allow-mass-change" if allow else "approved"
            verdict.notes.append((mailbox, "released", f"let through once ({how}): {reason}"))
        else:
            verdict.held[mailbox] = reason
            verdict.notes.append((mailbox, "held", reason))
    return verdict
