"""A sandbox org of many mailboxes, for the service's tests and ``scripts/bench.py --service``.

Each mailbox belongs to a product user and holds ``per_mailbox`` meetings it
organises near the sandbox's "now" (so they are in auto-save scope and the sync
creates their Salesforce copies), and every tenth user also owns a meeting
made in Salesforce (which the sync creates in that user's calendar). So a
first cycle writes both ways, and a second one with no outside change writes
nothing. Deterministic: the same ``n`` gives the same org.
"""

from __future__ import annotations

from typing import Any

from adapters.sandbox import org as sandbox
from adapters.sandbox.cloud import SandboxCloud
from adapters.sandbox.emulator import Clock, utcnow
from ledger.identity import salesforce_id18


def user_id(n: int) -> str:
    return salesforce_id18(f"0055e00000{n:05d}")


def mailbox(n: int) -> str:
    return f"user{n:04d}@{sandbox.ORG_DOMAIN}"


def feed(n: int, per_mailbox: int = 2) -> list[dict[str, Any]]:
    """The org's calendars as feed lines (the shape ``SandboxCloud`` is seeded from)."""
    lines: list[dict[str, Any]] = []
    at = "2026-11-20T09:00:00Z"
    sf_number = 1
    for i in range(n):
        box = mailbox(i)
        for k in range(per_mailbox):
            day = 23 + (i + k) % 5
            hour = 9 + k
            event = sandbox.graph_event(
                box, f"svc-{i}-{k}", subject=f"Customer call {i}-{k}",
                start=f"2026-11-{day}T{hour:02d}:00:00", end=f"2026-11-{day}T{hour:02d}:30:00",
                organizer=box, zone="UTC")
            lines.append({"kind": "graph.event", "observed_at": at, "mailbox": box,
                          "payload": event})
        if i % 10 == 0:
            record = sandbox.sf_event(
                900000 + sf_number, subject=f"Salesforce meeting {i}",
                start="2026-11-24T15:00:00", end="2026-11-24T16:00:00",
                owner=sandbox.ALICE, modstamp="2026-11-19T08:00:00.000+0000")
            record["OwnerId"] = user_id(i)  # sf_event knows the demo's three users only
            sf_number += 1
            lines.append({"kind": "salesforce.event", "observed_at": at, "payload": record,
                          "relations": []})
    return lines


def cloud(n: int, *, per_mailbox: int = 2, clock: Clock = utcnow, **options: Any
          ) -> SandboxCloud:
    """Emulators seeded with an org of ``n`` mailboxes (all product users)."""
    users = {mailbox(i): user_id(i) for i in range(n)}
    org = {"org_domains": [sandbox.ORG_DOMAIN], "product_users": users,
           "sync_private_items": False}
    return SandboxCloud(feed(n, per_mailbox), mailboxes=list(users), org=org, clock=clock,
                        **options)
