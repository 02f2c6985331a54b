"""Hand-made drift of every class in the sandbox cloud, for reconciliation's demo and tests.

Each change is made behind the sync's back (no delta change, no SystemModstamp
seen by a watermark where that matters), as a crash, another tool or an earlier
ledger would leave the calendars. ``make_drift`` returns what it did, by class.
``python scripts/sandbox_drift.py CLOUD_STATE`` applies it to a saved sandbox.
"""

from __future__ import annotations

import copy
from typing import Any

from adapters.sandbox.cloud import SandboxCloud
from adapters.sandbox.org import ALICE, BOB, CAROL, ICAL_FIELD, _ical, _sf_id, graph_event, sf_event


def _find(cloud: SandboxCloud, mailbox: str, subject: str) -> dict[str, Any]:
    return next(e for e in cloud.graph.calendar(mailbox) if e.get("subject") == subject
                and e.get("type") in ("singleInstance", "seriesMaster"))


def _sf(cloud: SandboxCloud, subject: str) -> dict[str, Any]:
    return next(r for r in cloud.salesforce.all("Event") if r.get("Subject") == subject
                and not r.get("RecurrenceActivityId"))


def make_drift(cloud: SandboxCloud, day: str) -> dict[str, list[str]]:
    """Drift of each class in ``day``'s week (``YYYY-MM-DD``, inside the sync window)."""
    g, sf = cloud.graph, cloud.salesforce
    done: dict[str, list[str]] = {}
    at = f"{day}T15:00:00"
    stamp = f"{day}T08:00:00.000+0000"
    # missing-in-salesforce: Alice organises a new meeting nobody has synced yet.
    new = graph_event(ALICE, "drift-new", subject="Renewal prep", start=at,
                      end=f"{day}T15:30:00", organizer=ALICE, attendees=(ALICE, BOB))
    g.events[ALICE][new["id"]] = new
    done["missing-in-salesforce"] = [new["id"]]
    # missing-in-outlook: Bob creates an Event in Salesforce only.
    event = sf_event(901, subject="Site visit", start=f"{day}T10:00:00",
                     end=f"{day}T11:00:00", owner=BOB, modstamp=stamp, location="Fabrikam")
    sf.put("Event", event)
    done["missing-in-outlook"] = [event["Id"]]
    # adopted: a pair an earlier ledger made (Carol's Exchange copy names its Event).
    theirs = sf_event(902, subject="Pricing workshop", start=f"{day}T13:00:00",
                      end=f"{day}T14:00:00", owner=CAROL, modstamp=stamp,
                      ical=_ical("drift-adopt"))
    sf.put("Event", theirs)
    adopt = graph_event(CAROL, "drift-adopt", subject="Pricing workshop",
                        start=f"{day}T13:00:00", end=f"{day}T14:00:00", organizer=CAROL,
                        marker=theirs["Id"], ical=_ical("drift-adopt"))
    g.events[CAROL][adopt["id"]] = adopt
    done["adopted"] = [adopt["id"], theirs["Id"]]
    # duplicate (ours): a second copy of Bob's down-synced "Contract signing", same
    # marker; a second Salesforce copy of Alice's Fabrikam intro, same iCalUId marker.
    contract = _find(cloud, BOB, "Contract signing")
    extra = copy.deepcopy(contract)
    extra["id"] = contract["id"][:-6] + "DUP001"
    g.events[BOB][extra["id"]] = extra
    intro = _sf(cloud, "Intro call with Fabrikam")
    twin = {**copy.deepcopy(intro), "Id": _sf_id("00U", 903)}
    twin.pop("attributes", None)
    sf.put("Event", twin)
    # duplicate (not ours): the same external invitation twice in Carol's calendar.
    invite = [graph_event(CAROL, f"drift-invite-{n}", subject="Vendor demo",
                          start=f"{day}T16:00:00", end=f"{day}T17:00:00",
                          organizer="dana@fabrikam.com", attendees=(CAROL,)) for n in (1, 2)]
    for item in invite:
        g.events[CAROL][item["id"]] = item
    done["duplicate"] = [extra["id"], twin["Id"], invite[0]["id"], invite[1]["id"]]
    # field-drift: the linked Event of Alice's pipeline review moves room in Salesforce
    # (the sync has not run since).
    review = _sf(cloud, "Quarterly pipeline review")
    sf.touch(review["Id"], Location="Room 4.12")  # (Salesforce always bumps SystemModstamp)
    done["field-drift"] = [review["Id"]]
    # target-gone: the linked Exchange item of the Customer QBR vanishes, unseen by delta.
    qbr = _find(cloud, ALICE, "Customer QBR")
    g.events[ALICE].pop(qbr["id"])
    done["target-gone"] = [qbr["id"]]
    # orphan-marker: a copy naming an Event that does not exist, and an Event naming an
    # iCalUId no Outlook item has.
    orphan = graph_event(BOB, "drift-orphan", subject="Old import", start=f"{day}T09:00:00",
                         end=f"{day}T09:30:00", organizer=BOB, marker=_sf_id("00U", 999))
    g.events[BOB][orphan["id"]] = orphan
    lost = sf_event(904, subject="Lost copy", start=f"{day}T12:00:00", end=f"{day}T12:30:00",
                    owner=ALICE, modstamp=stamp, ical=_ical("drift-nowhere"))
    sf.put("Event", lost)
    done["orphan-marker"] = [orphan["id"], lost["Id"]]
    assert ICAL_FIELD in lost
    return done
