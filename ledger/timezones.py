"""Which Exchange time zones Salesforce can represent.

Windows zone names map to IANA ids through the CLDR table that ``tzlocal``
ships (never hand-written). Salesforce accepts a fixed list of IANA ids; the
default below is every CLDR target except the zones known to have no
Salesforce match (DOMAIN.md §5). Orgs can replace the list by a setting.

IANA names have links (``Asia/Calcutta`` is ``Asia/Kolkata``; CLDR itself
answers with the older spellings), so a zone matches the org's list when any
spelling of it is there, and the org's spelling is the one sent. Which names
are one zone comes from the ``tzdata`` package: a link's data file is the same
file as its target's. (A tzdata upgrade that merges or splits zones can change
a match; the decision it leads to is recorded, so replays are not affected.)
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from importlib import resources

from tzlocal.windows_tz import tz_win, win_tz

#: IANA ids Salesforce is known not to accept (Aus Central W., Dateline,
#: North Korea, Samoa, Sao Tome; Mid-Atlantic has no CLDR target at all).
UNSUPPORTED_IANA = frozenset(
    {"Australia/Eucla", "Etc/GMT+12", "Asia/Pyongyang", "Pacific/Apia", "Africa/Sao_Tome"}
)

DEFAULT_SALESFORCE_TIME_ZONES: tuple[str, ...] = tuple(
    sorted({iana for iana in win_tz.values() if iana not in UNSUPPORTED_IANA} | {"UTC"})
)

CUSTOM_ZONE_PREFIX = "tzone://Microsoft/Custom"


def to_iana(zone: str) -> str | None:
    """IANA id for a Windows (or already IANA) zone name; None when unknown."""
    if zone.startswith(CUSTOM_ZONE_PREFIX):
        return None
    iana = win_tz.get(zone)
    if iana is not None:
        return iana
    return zone if "/" in zone or zone == "UTC" else None


@lru_cache(maxsize=4_096)
def zone_identity(iana: str) -> str | None:
    """The same value for every spelling of one IANA zone (None: not a tzdata zone)."""
    if iana in ("UTC", "Etc/UTC", "Etc/Universal", "Etc/Zulu", "Zulu", "Universal"):
        return "UTC"
    parts = iana.split("/")
    if not all(p and p not in (".", "..") and p.replace("_", "").replace("-", "")
               .replace("+", "").isalnum() for p in parts):
        return None
    try:
        data = resources.files("tzdata").joinpath("zoneinfo", *parts).read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, ModuleNotFoundError):
        return None
    return hashlib.sha1(data).hexdigest()


@lru_cache(maxsize=64)
def _spellings(supported: frozenset[str]) -> dict[str, str]:
    """Zone identity -> the org's spelling of it (the first in sorted order)."""
    out: dict[str, str] = {}
    for name in sorted(supported):
        identity = zone_identity(name)
        if identity is not None:
            out.setdefault(identity, name)
    return out


def salesforce_zone(zone: str | None, supported: frozenset[str]) -> str | None:
    """The org's spelling of an Exchange zone, or None when Salesforce has no match.

    An item without a zone is treated as UTC (Graph's default).
    """
    if zone is None:
        zone = "UTC"
    iana = to_iana(zone)
    if iana is None:
        return None
    if iana in supported:
        return iana
    identity = zone_identity(iana)
    return _spellings(supported).get(identity) if identity is not None else None


@lru_cache(maxsize=1_024)
def to_windows(iana: str | None) -> str:
    """The Windows zone name for an IANA id (CLDR, under any spelling; UTC when none)."""
    if not iana:
        return "UTC"
    if iana in tz_win:
        return str(tz_win[iana])
    identity = zone_identity(iana)
    if identity is not None:
        for name in sorted(tz_win):
            if zone_identity(name) == identity:
                return str(tz_win[name])
    return "UTC"
