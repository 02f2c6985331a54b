"""Which Exchange time zones Salesforce can represent.

Windows zone names map to IANA ids through the CLDR table that ``tzlocal``
ships (never hand-written). Salesforce accepts a fixed list of IANA ids; the
default below is every CLDR target except the zones known to have no
Salesforce match (DOMAIN.md §5). Orgs can replace the list by a setting.
"""

from __future__ import annotations

from tzlocal.windows_tz import win_tz

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


def salesforce_zone(zone: str | None, supported: frozenset[str]) -> str | None:
    """The Salesforce zone for an Exchange zone, or None when there is no match.

    An item without a zone is treated as UTC (Graph's default).
    """
    if zone is None:
        return "UTC"
    iana = to_iana(zone)
    if iana is None or iana not in supported:
        return None
    return iana
