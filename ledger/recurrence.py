"""Recurring series: what a pattern means, and whether Salesforce Classic can hold it.

The ledger keeps a series' recurrence in the shape its source gave it: an
Exchange item's is Graph's ``patternedRecurrence`` flattened (``type`` daily,
weekly, absoluteMonthly, ...), a Salesforce master's is its Classic fields
(``type`` RecursDaily, ...; DOMAIN.md §11). Both are read here into one
``Pattern`` and expanded with ``python-dateutil``'s ``rrule`` (never a hand-written
date loop), in the series' own zone, so occurrence dates do not move at DST.

The rules use it to decide, before any write, what a Classic series would be:
its end date (the Nth occurrence of a ``numbered`` range, the last one Salesforce
keeps of a ``noEnd`` one), the occurrence caps (KB 000212481: daily 100,
weekly 53, monthly 59, yearly 9) and the patterns Classic has no field for.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from itertools import islice
from typing import Any, Literal
from zoneinfo import ZoneInfo

from dateutil.rrule import DAILY, MONTHLY, WEEKLY, YEARLY, rrule

#: Graph's day names, Sunday first (Salesforce's mask bit order: Sunday = 1 ... Saturday = 64).
DAY_NAMES = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
#: Graph ``index`` / Classic ``RecurrenceInstance`` -> rrule ``bysetpos``.
INDEXES = {"first": 1, "second": 2, "third": 3, "fourth": 4, "last": -1}
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")
#: Graph pattern type -> (frequency, Classic RecurrenceType).
GRAPH_TYPES = {"daily": ("daily", "RecursDaily"), "weekly": ("weekly", "RecursWeekly"),
               "absoluteMonthly": ("monthly", "RecursMonthly"),
               "relativeMonthly": ("monthly", "RecursMonthlyNth"),
               "absoluteYearly": ("yearly", "RecursYearly"),
               "relativeYearly": ("yearly", "RecursYearlyNth")}
CLASSIC_TYPES = {"RecursDaily": "daily", "RecursEveryWeekday": "daily",
                 "RecursWeekly": "weekly", "RecursMonthly": "monthly",
                 "RecursMonthlyNth": "monthly", "RecursYearly": "yearly",
                 "RecursYearlyNth": "yearly"}
#: Most occurrences Salesforce keeps of a Classic series, by frequency.
CLASSIC_CAPS = {"daily": 100, "weekly": 53, "monthly": 59, "yearly": 9}
_FREQ: dict[str, Literal[0, 1, 2, 3, 4, 5, 6]] = {
    "daily": DAILY, "weekly": WEEKLY, "monthly": MONTHLY, "yearly": YEARLY}


@dataclass(frozen=True)
class Pattern:
    """A recurrence as dates: ``weekdays`` are Python's (Monday = 0)."""

    freq: str  # daily | weekly | monthly | yearly
    interval: int
    weekdays: tuple[int, ...]
    day_of_month: int | None
    month: int | None  # 1-12
    nth: int | None  # 1-4, or -1 for last
    week_start: int  # Python weekday
    first: date  # the range's start date (local)
    until: date | None
    count: int | None

    def dates(self, at: time, limit: int) -> list[date]:
        """The first ``limit`` occurrence dates (fewer when the range ends first)."""
        rule = rrule(
            _FREQ[self.freq], dtstart=datetime.combine(self.first, at),
            interval=self.interval, wkst=self.week_start, count=self.count,
            until=datetime.combine(self.until, time(23, 59, 59)) if self.until else None,
            byweekday=self.weekdays or None, bymonthday=self.day_of_month,
            bymonth=self.month, bysetpos=self.nth if self.weekdays and self.nth else None)
        return [d.date() for d in islice(rule, limit)]


def _python_day(name: str) -> int:
    return (DAY_NAMES.index(name) - 1) % 7


def is_classic(rec: dict[str, Any]) -> bool:
    """A recurrence recorded from Salesforce (Classic fields) rather than from Exchange."""
    return "day_of_week_mask" in rec


def from_exchange(rec: dict[str, Any], local_start: datetime) -> Pattern | None:
    """An Exchange item's recurrence (None: a pattern type Graph does not define)."""
    kind = GRAPH_TYPES.get(str(rec.get("type")))
    if kind is None:
        return None
    freq = kind[0]
    days = tuple(_python_day(d) for d in rec.get("days_of_week") or [] if d in DAY_NAMES)
    first = date.fromisoformat(rec["start_date"]) if rec.get("start_date") \
        else local_start.date()
    relative = str(rec["type"]).startswith("relative")
    return Pattern(
        freq=freq, interval=int(rec.get("interval") or 1),
        weekdays=days if freq == "weekly" or relative else (),
        day_of_month=None if relative or freq in ("daily", "weekly")
        else int(rec.get("day_of_month") or local_start.day),
        month=int(rec.get("month") or local_start.month) if freq == "yearly" else None,
        nth=INDEXES.get(str(rec.get("index") or "first")) if relative else None,
        week_start=_python_day(str(rec.get("first_day_of_week") or "sunday")),
        first=first,
        until=date.fromisoformat(rec["end_date"]) if rec.get("end_date") else None,
        count=int(rec["occurrences"]) if rec.get("range") == "numbered"
        and rec.get("occurrences") else None)


def mask_days(mask: int) -> tuple[str, ...]:
    """Graph day names of a Classic ``RecurrenceDayOfWeekMask`` (Sunday = 1 ... Saturday = 64)."""
    return tuple(d for i, d in enumerate(DAY_NAMES) if mask & (1 << i))


def month_number(value: Any) -> int | None:
    """A Classic ``RecurrenceMonthOfYear`` (a month's name) or a number, as 1-12."""
    if value in (None, ""):
        return None
    if isinstance(value, int):
        return value
    text = str(value).strip()
    return int(text) if text.isdigit() else MONTHS.index(text.capitalize()) + 1


def from_classic(rec: dict[str, Any], local_start: datetime) -> Pattern | None:
    """A Salesforce Classic master's recurrence (None: an unknown RecurrenceType)."""
    kind = str(rec.get("type"))
    freq = CLASSIC_TYPES.get(kind)
    if freq is None:
        return None
    mask = 62 if kind == "RecursEveryWeekday" else int(rec.get("day_of_week_mask") or 0)
    days = tuple(_python_day(d) for d in mask_days(mask))
    nth = kind.endswith("Nth")
    weekly = freq == "weekly" or kind == "RecursEveryWeekday"
    return Pattern(
        freq="weekly" if kind == "RecursEveryWeekday" else freq,
        interval=1 if freq == "yearly" or kind == "RecursEveryWeekday"
        else int(rec.get("interval") or 1),
        weekdays=days if weekly or nth else (),
        day_of_month=int(rec.get("day_of_month") or local_start.day)
        if freq in ("monthly", "yearly") and not nth else None,
        month=month_number(rec.get("month")) or local_start.month if freq == "yearly" else None,
        nth=INDEXES.get(str(rec.get("instance") or "First").lower()) if nth else None,
        week_start=6, first=local_start.date(),
        until=date.fromisoformat(str(rec["end_date"])[:10]) if rec.get("end_date") else None,
        count=None)


def local(start_utc: str, zone: str | None) -> datetime:
    """A UTC ledger time as wall time in an IANA zone (UTC when unknown)."""
    when = datetime.fromisoformat(start_utc).astimezone(UTC)
    try:
        return when.astimezone(ZoneInfo(zone or "UTC"))
    except (KeyError, ValueError):
        return when


@dataclass(frozen=True)
class ClassicPlan:
    """What a Classic series written from an Exchange one would be."""

    end_date: str | None  # RecurrenceEndDateOnly
    problem: str | None  # why Classic cannot hold it (a blocking sync issue)
    capped: str | None  # why Salesforce keeps fewer occurrences (a warning)


def classic_plan(rec: dict[str, Any], start_utc: str, zone: str | None) -> ClassicPlan:
    """Decide how an Exchange series goes up as a Classic series (``zone``: IANA)."""
    kind = str(rec.get("type"))
    if kind not in GRAPH_TYPES:
        return ClassicPlan(None, f"the recurrence pattern '{kind}' has no Salesforce form", None)
    freq = GRAPH_TYPES[kind][0]
    interval = int(rec.get("interval") or 1)
    if freq == "yearly" and interval > 1:
        return ClassicPlan(None, f"a series every {interval} years cannot be represented: "
                                 "Salesforce yearly series have no interval", None)
    days = rec.get("days_of_week") or []
    if kind == "relativeYearly" and len(days) != 1:
        return ClassicPlan(None, "a yearly series on the nth of several days "
                                 f"({', '.join(days)}) cannot be represented in Salesforce",
                           None)
    if kind in ("weekly", "relativeMonthly") and not days:
        return ClassicPlan(None, f"a {kind} series without days of the week cannot be "
                                 "represented in Salesforce", None)
    start = local(start_utc, zone)
    pattern = from_exchange(rec, start)
    assert pattern is not None  # the type is known
    cap = CLASSIC_CAPS[freq]
    dates = pattern.dates(start.time(), cap + 1)
    if not dates:
        return ClassicPlan(None, "the series has no occurrence", None)
    if len(dates) <= cap:
        return ClassicPlan(dates[-1].isoformat(), None, None)
    end = dates[cap - 1].isoformat()
    how = {"noEnd": "has no end", "numbered": f"has {pattern.count} occurrences",
           "endDate": f"ends on {rec.get('end_date')}"}.get(str(rec.get("range")), "is longer")
    return ClassicPlan(end, None, f"Salesforce keeps at most {cap} occurrences of a {freq} "
                                  f"series: saved up to {end} (the Outlook series {how})")


def last_date(rec: dict[str, Any], start_utc: str, zone: str | None) -> date | None:
    """The date of an Exchange series' last occurrence (None: it has no end)."""
    if rec.get("end_date"):
        return date.fromisoformat(rec["end_date"])
    if rec.get("range") != "numbered" or not rec.get("occurrences"):
        return None
    start = local(start_utc, zone)
    pattern = from_exchange(rec, start)
    dates = pattern.dates(start.time(), int(rec["occurrences"])) if pattern else []
    return dates[-1] if dates else None
