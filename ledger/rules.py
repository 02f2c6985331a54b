"""The rule book: one pure function per rule id of DOMAIN.md §3.

Each rule looks at the meeting as the ledger knows it (``MeetingState``), the
new observation and the settings in force, and returns the decisions to
record. No rule reads a clock or does I/O: "now" is ``observed_at``.
The table below is the whole policy; ``decide`` applies it in order.

| rule id                   | condition (when it applies)                              |
|---------------------------|----------------------------------------------------------|
| private-item              | item in scope is private/personal/confidential, switch off|
| attendee-before-organizer | attendee (product user) saves; organizer is a product user|
|                           | of the org and has not saved                              |
| organizer-not-user        | organizer external or in-org non-user; a user saves       |
| series-master-update      | master of a synced series changes in Exchange at T        |
| series-master-overwrite   | Salesforce master changes Description/Location/WhatId     |
| recurring-all-day         | recurring all-day series, either side                     |
| recurrence-conversion     | synced single became a series, or the reverse             |
| unsupported-time-zone     | Exchange zone has no Salesforce match                     |
| lightning-recurrence      | Salesforce Event with IsRecurrence2                       |
| event-too-long            | timed item longer than 24 hours (Salesforce refuses it)   |
| all-day-too-long          | all-day item longer than 14 days (Salesforce refuses it)  |
| text-too-long             | Subject/Location over 255 or body over 32,000 characters: |
|                           | sent shortened with a marker (warning, does not block)    |
| recurrence-unrepresentable| series Classic has no fields for (every N years, nth of   |
|                           | several days in a year, ...)                              |
| recurrence-capped         | series longer than Salesforce keeps (daily 100, weekly 53,|
|                           | monthly 59, yearly 9): sent capped (warning)              |
| write-refused             | the API refused a write with an error code: not retried   |
|                           | until the item changes (see ``refused_write``)             |
| waiting-for-dependency    | a parked observation waited longer than the org's          |
|                           | parked_max_age_hours (``ledger.parking``, not a meeting's) |
| lightning-relations       | a synced meeting's Salesforce copy is a Lightning series: |
|                           | attendee/status changes not carried either way (warning)  |

Severities: ``skip`` (not synced on purpose), ``issue`` (blocks the item,
Outlook shows "Error"), ``warning`` (synced as far as Salesforce allows, said so).

Beyond the seed's table (DOMAIN.md §4, §12): which items save themselves
(``auto_save_applies``, the org's ``auto_save`` setting), saves and unsync
requests by Outlook category (``category_save``, ``unsync_requested``), and
whom a saved meeting's attendees are in Salesforce (``relate_people``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ledger.decision import Decision
from ledger.directory import NO_PEOPLE, People
from ledger.fields import is_private_sensitivity
from ledger.identity import item_key
from ledger.limits import MAX_LENGTH, duration_problem, too_long_fields
from ledger.meeting_state import MeetingState
from ledger.observations import (
    ExchangeItemSeen,
    Observation,
    PersonSeen,
    SalesforceEventSeen,
    SidebarSave,
    WriteRefused,
)
from ledger.recurrence import classic_plan, is_classic, last_date
from ledger.settings import OrgSettings
from ledger.timezones import salesforce_zone, to_iana
from ledger.writes import lightning_linked, relation_writes_for, write_item_key

AUTO_SAVE_PAST = timedelta(days=14)
AUTO_SAVE_AHEAD = timedelta(days=60)
#: Fields whose change on an Exchange series master is pushed to Salesforce.
MASTER_FIELDS = ("subject", "body", "location", "start", "end")
#: Fields a Salesforce master overwrites on every occurrence.
OVERWRITE_FIELDS = ("description", "location", "what_id")
#: Rules that record what was done, not a reason to stop: they never block a write.
WARNINGS = frozenset({"text-too-long", "recurrence-capped", "lightning-relations"})
SKIPS = frozenset({"private-item", "lightning-recurrence"})
#: Outlook categories (DOMAIN.md §4): a product user gives an item "Salesforce" to save
#: it and "Unsync" to have its Salesforce copy removed; synced items carry "Salesforce".
SAVE_CATEGORY, UNSYNC_CATEGORY = "Salesforce", "Unsync"


def severity_of(rule: str) -> str:
    return "skip" if rule in SKIPS else "warning" if rule in WARNINGS else "issue"


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value)


# --- scope -----------------------------------------------------------------


def auto_save_applies(item: dict[str, Any], observed_at: str, settings: OrgSettings,
                      people: People = NO_PEOPLE) -> bool:
    """Organizer copies of product users auto-save from 14 days back to 60 ahead, as the
    org's ``auto_save`` says: never (``off``), always (``organizer``), or only with an
    attendee who is a Contact or Lead (``with_contacts``)."""
    if settings.auto_save == "off":
        return False
    if not (item["is_organizer"] and settings.is_product_user(item["mailbox"])):
        return False
    if settings.auto_save == "with_contacts" and not has_customer(item, settings, people):
        return False
    now = parse_time(observed_at)
    start = parse_time(item["start"])
    recurrence = item.get("recurrence")
    if recurrence and item["item_type"] == "master":
        # the last occurrence's date: a numbered range's comes from expanding it (rrule)
        last = last_date(recurrence, item["start"], to_iana(item["time_zone"] or "UTC")) \
            if not is_classic(recurrence) else None
        end_date = last.isoformat() if last else recurrence.get("end_date")
        ends_after = end_date is None or parse_time(end_date + "T23:59:59Z") >= now - AUTO_SAVE_PAST
        return start <= now + AUTO_SAVE_AHEAD and ends_after
    return now - AUTO_SAVE_PAST <= start <= now + AUTO_SAVE_AHEAD


def has_customer(item: dict[str, Any], settings: OrgSettings, people: People) -> bool:
    """An attendee (not a product user) matches a Contact or a Lead."""
    for attendee in item["attendees"]:
        email = attendee["email"]
        if email and not settings.is_product_user(email):
            person = people.match(email)
            if person is not None and person["person_type"] in ("Contact", "Lead"):
                return True
    return False


def category_save(state: MeetingState, key: str, settings: OrgSettings) -> bool:
    """A product user gave the item the "Salesforce" category: an explicit save.

    Once its sync was withdrawn (Salesforce copy deleted, or Unsync) the category
    counts again only when it is put back."""
    item = state.items[key]
    if SAVE_CATEGORY not in item["categories"] or not settings.is_product_user(item["mailbox"]):
        return False
    if key not in state.withdrawn:
        return True
    previous = state.previous_items.get(key)
    return previous is not None and SAVE_CATEGORY not in previous["categories"]


def unsync_requested(state: MeetingState, key: str, settings: OrgSettings) -> bool:
    """A product user gave a synced item the "Unsync" category: remove the Salesforce copy."""
    item = state.items[key]
    return (UNSYNC_CATEGORY in item["categories"] and key in state.links
            and settings.is_product_user(item["mailbox"])
            and item["item_type"] in ("single", "master"))


# --- one function per rule id ----------------------------------------------


def private_item(item: dict[str, Any], settings: OrgSettings) -> str | None:
    """Private items are not synced unless the org switch allows it."""
    if is_private_sensitivity(item["sensitivity"]) and not settings.sync_private_items:
        return f"the item is marked {item['sensitivity']} and the org does not sync private items"
    return None


def recurring_all_day_exchange(item: dict[str, Any]) -> str | None:
    """Recurring all-day series never sync (time-zone handling of all-day items)."""
    recurring = item["item_type"] in ("master", "occurrence", "exception")
    if recurring and item["is_all_day"]:
        return "recurring all-day events are not synced to Salesforce"
    return None


def recurring_all_day_salesforce(event: dict[str, Any]) -> str | None:
    recurring = event["is_series_master"] or event["is_lightning_series"] or event["series_id"]
    if recurring and event["is_all_day"]:
        return "recurring all-day events are not synced to Exchange"
    return None


def recurrence_conversion(item: dict[str, Any], synced_shape: str | None) -> str | None:
    """Salesforce cannot turn a single event into a series or back."""
    if synced_shape is None:
        return None
    shape = "single" if item["item_type"] == "single" else "series"
    if item["item_type"] in ("occurrence", "exception") or shape == synced_shape:
        return None
    return (f"the item was synced as a {synced_shape} item and is now a {shape}; "
            "Salesforce cannot convert it")


def unsupported_time_zone(item: dict[str, Any], settings: OrgSettings) -> str | None:
    zone = item.get("time_zone")
    if salesforce_zone(zone, settings.salesforce_time_zones) is None:
        return f"can't match time zone '{zone}' (item {item['item_id']})"
    return None


def event_too_long(item: dict[str, Any]) -> str | None:
    """Salesforce refuses timed events over 24 hours."""
    return None if item["is_all_day"] else duration_problem(item["start"], item["end"], False)


def all_day_too_long(item: dict[str, Any]) -> str | None:
    """Salesforce refuses all-day events over 14 days."""
    return duration_problem(item["start"], item["end"], True) if item["is_all_day"] else None


def text_too_long(item: dict[str, Any]) -> str | None:
    """Texts over Salesforce's field lengths go up shortened, with a marker: say so."""
    names = {"subject": "Subject", "location": "Location", "description": "Description"}
    over = too_long_fields({"subject": item["subject"], "location": item["location"],
                            "description": item["body"]})
    if not over:
        return None
    return "; ".join(f"{names[f]} has {len(item['body' if f == 'description' else f])} "
                     f"characters, Salesforce keeps {MAX_LENGTH[f]:,}: sent shortened"
                     for f in over)


def _classic_plan_of(item: dict[str, Any], settings: OrgSettings) -> Any:
    if item["item_type"] != "master" or not item.get("recurrence"):
        return None
    zone = salesforce_zone(item.get("time_zone"), settings.salesforce_time_zones)
    return classic_plan(item["recurrence"], item["start"], zone)


def recurrence_unrepresentable(item: dict[str, Any], settings: OrgSettings) -> str | None:
    """A series Salesforce Classic has no fields for is not written at all."""
    plan = _classic_plan_of(item, settings)
    return plan.problem if plan is not None else None


def recurrence_capped(item: dict[str, Any], settings: OrgSettings) -> str | None:
    """A series longer than Salesforce keeps goes up capped: say up to when."""
    plan = _classic_plan_of(item, settings)
    return plan.capped if plan is not None else None


def lightning_recurrence(event: dict[str, Any]) -> str | None:
    """Lightning event series (IsRecurrence2) are not synced down to Exchange."""
    if event["is_lightning_series"]:
        return "Lightning recurring events are not synced down to Exchange"
    return None


def lightning_relations(state: MeetingState, key: str) -> str | None:
    """A synced organizer item whose Salesforce copy is a Lightning event series: its
    attendee list and status changes are not carried, either way, and this says which.

    DOMAIN.md §1: a Lightning series keeps no series id on its occurrences, so the sync
    cannot tell the series' other Events; a relation written to the linked Event would
    change that one occurrence, while the Outlook change is the whole series' (Classic
    series are related on their master, §12). §3 ``lightning-recurrence``: nothing of a
    Lightning series is synced down, so Salesforce invitees are not added in Outlook."""
    if not lightning_linked(state, key) or key not in state.relating_items():
        return None
    changes = relation_writes_for(state, key)
    if not changes:
        return None
    said = {"relate": "added", "unrelate": "removed", "relation-status": "responded"}
    up = [w for w in changes if w["op"] in said]
    parts = [f"{sum(1 for w in up if w['op'] == op)} attendee(s) {what} in Outlook"
             for op, what in said.items() if any(w["op"] == op for w in up)]
    if any(w["target"] == "exchange" for w in changes):
        parts.append("invitee(s) added in Salesforce")
    if any(w["key"].startswith("sf-who|") for w in changes):
        parts.append("the Event's Who")
    return (f"the Salesforce copy {state.links[key]} is a Lightning event series, which "
            "keeps no series id on its occurrences: not carried: " + ", ".join(parts))


def lightning_relation_issues(state: MeetingState) -> list[Decision]:
    """``lightning-relations`` for every relating item (and every item that has it
    open), asked after each observation's decisions and relations."""
    keys = set(state.relating_items()) | {
        i["item_key"] for i in state.issues.values() if i["rule"] == "lightning-relations"}
    return [d for key in sorted(keys) if key in state.items
            for d in lightning_relation_issue(state, key)]


def lightning_relation_issue(state: MeetingState, key: str) -> list[Decision]:
    """Raise ``lightning-relations`` on the item while it applies; resolve it after."""
    message = lightning_relations(state, key)
    issue_key = f"lightning-relations|{key}"
    if message is not None and issue_key not in state.issues:
        item = state.items[key]
        return [Decision("SyncIssueRaised", {
            "rule": "lightning-relations", "severity": severity_of("lightning-relations"),
            "direction": "to-salesforce", "mailbox": item["mailbox"],
            "exchange_id": item["item_id"], "salesforce_id": state.links.get(key),
            "item_key": key, "issue_key": issue_key, "message": message,
            "outlook_category": False})]
    if message is None and issue_key in state.issues:
        return [Decision("SyncIssueResolved", {
            "rule": "lightning-relations", "issue_key": issue_key,
            "reason": "no attendee change is left to carry"})]
    return []


def attendee_before_organizer(
    state: MeetingState, saver: str, organizer: str, settings: OrgSettings
) -> bool:
    """The one attendee case that is a conflict: organizer is a user and has not saved."""
    return (
        saver != organizer
        and settings.is_product_user(organizer)
        and settings.in_org(organizer)
        and organizer not in state.saves
    )


def organizer_not_user(organizer: str, settings: OrgSettings) -> bool:
    """External or in-org non-user organizers: saved with no attendees."""
    return not (settings.in_org(organizer) and settings.is_product_user(organizer))


def series_master_update(
    state: MeetingState, item: dict[str, Any], previous: dict[str, Any] | None
) -> dict[str, Any] | None:
    """Changed fields of a synced Exchange master, or None."""
    if item["item_type"] != "master" or previous is None or not state.is_linked(item):
        return None
    changes = {f: item[f] for f in MASTER_FIELDS if item[f] != previous[f]}
    return changes or None


def series_master_overwrite(
    state: MeetingState, event: dict[str, Any], previous: dict[str, Any] | None
) -> dict[str, Any] | None:
    """Description/Location/WhatId changed on a linked Salesforce Classic master."""
    if not event["is_series_master"] or previous is None or not state.sf_linked(event["event_id"]):
        return None
    changes = {f: event[f] for f in OVERWRITE_FIELDS if event[f] != previous[f]}
    return changes or None


# --- applying the table ----------------------------------------------------


def blocking_issues(
    state: MeetingState, item: dict[str, Any], settings: OrgSettings
) -> list[tuple[str, str]]:
    """(rule id, message) of every rule that applies to this Exchange item: those that
    stop it syncing, and the warnings (``WARNINGS``) about how it is written."""
    checks = (
        ("private-item", private_item(item, settings)),
        ("recurring-all-day", recurring_all_day_exchange(item)),
        ("recurrence-conversion", recurrence_conversion(item, state.shape)),
        ("unsupported-time-zone", unsupported_time_zone(item, settings)),
        ("event-too-long", event_too_long(item)),
        ("all-day-too-long", all_day_too_long(item)),
        ("recurrence-unrepresentable", recurrence_unrepresentable(item, settings)),
    )
    found = [(rule, msg) for rule, msg in checks if msg is not None]
    if found:  # warnings describe a write; a blocked item gets none
        return found
    warnings = (("text-too-long", text_too_long(item)),
                ("recurrence-capped", recurrence_capped(item, settings)))
    return [(rule, msg) for rule, msg in warnings if msg is not None]


def salesforce_blocking(event: dict[str, Any]) -> list[tuple[str, str]]:
    checks = (
        ("lightning-recurrence", lightning_recurrence(event)),
        ("recurring-all-day", recurring_all_day_salesforce(event)),
    )
    return [(rule, msg) for rule, msg in checks if msg is not None]


def decide(state: MeetingState, obs: Observation, settings: OrgSettings,
           people: People = NO_PEOPLE) -> list[Decision]:
    """All decisions that follow from one new observation (already recorded)."""
    if isinstance(obs, ExchangeItemSeen):
        return _decide_exchange_item(state, obs, settings, people)
    if isinstance(obs, PersonSeen):
        return _decide_person(state, obs, settings, people)
    if isinstance(obs, SidebarSave):
        return _decide_save(state, obs.mailbox, obs.item_id, obs.what_id, obs.who_id,
                            "explicit", settings)
    if isinstance(obs, SalesforceEventSeen):
        return _decide_salesforce_event(state, obs, settings)
    if isinstance(obs, WriteRefused):
        return refused_write(state, obs)
    return []


def refused_write(state: MeetingState, obs: WriteRefused) -> list[Decision]:
    """write-refused: the API's refusal, on the meeting, with the API's own message."""
    key = write_item_key(state, obs.write_key)
    write = state.pending.get(obs.write_key) or {}
    exchange_item = not key.startswith("sf|")
    item = state.items.get(key) if exchange_item else None
    system = "Salesforce" if obs.target == "salesforce" else "Exchange"
    named = f" (fields: {', '.join(obs.fields)})" if obs.fields else ""
    return [Decision("SyncIssueRaised", {
        "rule": "write-refused", "severity": "refused",
        "direction": "to-salesforce" if obs.target == "salesforce" else "to-exchange",
        "mailbox": item["mailbox"] if item else write.get("mailbox"),
        "exchange_id": item["item_id"] if item else None,
        "salesforce_id": state.links.get(key) if exchange_item else key[3:],
        "item_key": key, "issue_key": f"write-refused|{obs.write_key}",
        "message": f"{system} refused the {obs.op} ({obs.status} {obs.code}): "
                   f"{obs.message}{named}; not sent again until the item changes",
        "outlook_category": exchange_item and obs.target == "salesforce",
    })]


def _issue_decisions(
    state: MeetingState,
    item_key: str,
    found: list[tuple[str, str]],
    base: dict[str, Any],
) -> list[Decision]:
    """Raise newly applying issues of one item; resolve those that stopped applying."""
    out: list[Decision] = []
    found_rules = {rule for rule, _ in found}
    for rule, message in found:
        if f"{rule}|{item_key}" not in state.issues:
            severity = severity_of(rule)
            outlook = severity == "issue" and base["direction"] == "to-salesforce"
            out.append(Decision("SyncIssueRaised", {
                **base, "rule": rule, "severity": severity, "message": message,
                "outlook_category": outlook, "issue_key": f"{rule}|{item_key}",
            }))
    for key, issue in state.issues.items():
        if issue["item_key"] == item_key and issue["rule"] not in found_rules \
                and issue["rule"] not in ("attendee-before-organizer", "write-refused",
                                          "lightning-relations"):
            out.append(Decision("SyncIssueResolved", {
                "rule": issue["rule"], "issue_key": key, "reason": "no longer applies",
            }))
    return out


def _decide_exchange_item(
    state: MeetingState, obs: ExchangeItemSeen, settings: OrgSettings, people: People
) -> list[Decision]:
    key = item_key(obs.mailbox, obs.item_id)
    item = state.items[key]
    previous = state.previous_items.get(key)
    by_category = category_save(state, key, settings)
    in_scope = state.item_in_scope(key) or by_category or (
        key not in state.withdrawn and auto_save_applies(item, obs.observed_at, settings, people))
    out: list[Decision] = []
    if unsync_requested(state, key, settings) and state.links[key] not in state.deletions:
        out.append(Decision("SalesforceDeletionDecided", {
            "salesforce_id": state.links[key],
            "reason": f"Unsync category set by {obs.mailbox}"}))
        return out
    if in_scope:
        base = {"direction": "to-salesforce", "mailbox": obs.mailbox, "exchange_id": obs.item_id,
                "salesforce_id": state.links.get(key), "item_key": key}
        out += _issue_decisions(state, key, blocking_issues(state, item, settings), base)
    if obs.is_cancelled and state.is_linked(item) and item["is_organizer"]:
        out.append(Decision("SalesforceDeletionDecided", {
            "salesforce_id": state.links[key], "reason": "cancelled by the organizer",
        }))
        return out
    changes = series_master_update(state, item, previous)
    if changes and not state.blocked(key, out):
        effective = item.get("last_modified") or obs.observed_at
        out.append(Decision("SeriesMasterUpdated", {
            "rule": "series-master-update", "mailbox": obs.mailbox, "exchange_id": obs.item_id,
            "effective_from": effective, "changes": changes,
            "previous": {f: previous[f] for f in changes} if previous else {},
        }))
    if in_scope and key not in state.links and obs.mailbox not in state.saves:
        if by_category:
            out += _decide_save(state, obs.mailbox, obs.item_id, None, None, "category",
                                settings, pending=out)
        elif key not in state.withdrawn and auto_save_applies(item, obs.observed_at, settings,
                                                              people):
            out += _decide_save(state, obs.mailbox, obs.item_id, None, None, "auto", settings,
                                pending=out)
    return out


def _decide_person(
    state: MeetingState, obs: PersonSeen, settings: OrgSettings, people: People
) -> list[Decision]:
    """A directory change can make an organizer's item qualify for ``with_contacts``."""
    if settings.auto_save != "with_contacts":
        return []
    out: list[Decision] = []
    for key, item in sorted(state.items.items()):
        if key in state.links or key in state.withdrawn or item["mailbox"] in state.saves \
                or item["item_type"] not in ("single", "master"):
            continue
        if not any(a["email"] == obs.email for a in item["attendees"]):
            continue
        if auto_save_applies(item, obs.observed_at, settings, people):
            base = {"direction": "to-salesforce", "mailbox": item["mailbox"],
                    "exchange_id": item["item_id"], "salesforce_id": None, "item_key": key}
            out += _issue_decisions(state, key, blocking_issues(state, item, settings), base)
            out += _decide_save(state, item["mailbox"], item["item_id"], None, None, "auto",
                                settings, pending=out)
    return out


def relate_people(
    state: MeetingState, obs: Observation, settings: OrgSettings, people: People
) -> list[Decision]:
    """Whom the attendees of a saved meeting are in Salesforce (DOMAIN.md §12).

    Each attendee email of the organizer's saved item is related once: a product
    user to their User Id, anyone else to the directory's match (a User, else a
    Contact, else a Lead); an email matching nobody is ``unresolved`` until a
    directory observation matches it. Invitees first seen in Salesforce are
    related back to an email, so they can be added in Outlook."""
    out: list[Decision] = []
    decided: set[str] = set()

    def relate(email: str, since: str) -> None:
        if email in decided:
            return
        decided.add(email)
        uid = settings.user_id(email)
        person = None if uid else people.match(email)
        if uid is not None:
            found = {"relation_id": uid, "person_type": "User"}
            source = "product user"
        elif person is not None:
            found = {"relation_id": person["person_id"], "person_type": person["person_type"]}
            source = "directory"
        else:
            if email not in state.unresolved:
                out.append(Decision("AttendeeUnresolved", {"email": email, "since": since}))
            return
        if state.people.get(email) != found:
            out.append(Decision("AttendeeRelated", {"email": email, **found, "source": source}))

    attending: set[str] = set()
    for key in state.relating_items():
        item = state.items[key]
        for attendee in item["attendees"]:
            email = attendee["email"]
            attending.add(email)
            if email and email != item["organizer"] and email not in state.people \
                    and email not in state.unresolved:
                relate(email, obs.observed_at)
    gone = sorted(set(state.unresolved) - attending)  # taken off the item, or it is unsaved
    out += [Decision("AttendeeLeft", {"email": email}) for email in gone]
    if isinstance(obs, PersonSeen) and obs.email not in gone and (
            obs.email in state.unresolved or obs.email in state.people):
        relate(obs.email, obs.observed_at)
    if isinstance(obs, SalesforceEventSeen) and obs.invitees and (
            state.sf_linked(obs.event_id) or obs.event_id in state.down_syncs):
        known = {p["relation_id"] for p in state.people.values()}
        for invitee in obs.invitees:
            rid = invitee.relation_id
            if not invitee.is_invitee or rid in known:
                continue
            email = settings.mailbox_of(rid)
            person = people.person(rid)
            if email is not None:
                out.append(Decision("AttendeeRelated", {
                    "email": email, "relation_id": rid, "person_type": "User",
                    "source": "salesforce invitee"}))
            elif person is not None:
                out.append(Decision("AttendeeRelated", {
                    "email": person["email"], "relation_id": rid,
                    "person_type": person["person_type"], "source": "salesforce invitee"}))
    return out


def _decide_save(
    state: MeetingState,
    mailbox: str,
    item_id: str,
    what_id: str | None,
    who_id: str | None,
    how: str,
    settings: OrgSettings,
    pending: list[Decision] | None = None,
) -> list[Decision]:
    """A product user saves an Outlook item: accept, refuse, or raise a conflict."""
    key = item_key(mailbox, item_id)
    item = state.items[key]
    out: list[Decision] = []
    if how in ("explicit", "category"):
        base = {"direction": "to-salesforce", "mailbox": mailbox, "exchange_id": item_id,
                "salesforce_id": state.links.get(key), "item_key": key}
        out += _issue_decisions(state, key, blocking_issues(state, item, settings), base)
    if state.blocked(key, (pending or []) + out):
        return out
    saver, organizer = mailbox, item["organizer"]
    if not settings.is_product_user(saver):
        return out
    if saver in state.saves:
        return out
    if saver == organizer:
        for attendee, conflict in state.conflicts.items():
            out.append(Decision("ConflictResolved", {
                "rule": "attendee-before-organizer", "attendee": attendee,
                "organizer": organizer, "conflict_key": conflict["conflict_key"],
            }))
        # Who is related is decided next (``relate_people``); these are the product
        # users among the attendees, as they stood at the save.
        invitees = [a["email"] for a in item["attendees"]]
        out.append(Decision("SaveAccepted", {
            "rule": None, "saver": saver, "mailbox": mailbox, "exchange_id": item_id,
            "item_key": key, "owner_id": settings.user_id(saver), "how": how,
            "invitees": [uid for e in invitees if e != organizer
                         for uid in [settings.user_id(e)] if uid],
            "what_id": what_id, "who_id": who_id,
        }))
        return out
    if attendee_before_organizer(state, saver, organizer, settings):
        if saver not in state.conflicts:
            out.append(Decision("ConflictDetected", {
                "rule": "attendee-before-organizer", "attendee": saver, "organizer": organizer,
                "mailbox": mailbox, "exchange_id": item_id, "conflict_key": f"{saver}|{key}",
            }))
        return out
    if organizer_not_user(organizer, settings) and not state.saves:
        out.append(Decision("SaveAccepted", {
            "rule": "organizer-not-user", "saver": saver, "mailbox": mailbox,
            "exchange_id": item_id, "item_key": key, "owner_id": settings.user_id(saver),
            "how": how, "invitees": [], "what_id": what_id, "who_id": who_id,
        }))
    return out


def _decide_salesforce_event(
    state: MeetingState, obs: SalesforceEventSeen, settings: OrgSettings
) -> list[Decision]:
    event = state.sf[obs.event_id]
    previous = state.previous_sf.get(obs.event_id)
    out: list[Decision] = []
    base = {"direction": "to-exchange", "mailbox": None, "exchange_id": None,
            "salesforce_id": obs.event_id, "item_key": f"sf|{obs.event_id}"}
    if obs.series_id is None:  # a master or a single; occurrences follow their master
        out += _issue_decisions(state, f"sf|{obs.event_id}", salesforce_blocking(event), base)
    changes = series_master_overwrite(state, event, previous)
    if changes:
        out.append(Decision("SeriesMasterOverwritten", {
            "rule": "series-master-overwrite", "salesforce_id": obs.event_id, "changes": changes,
        }))
    return out
