"""Org settings, recorded as events so a replay knows what was in force.

The feed's ``org.settings`` payload holds only the keys it changes; unknown
keys and wrong types are errors, never ignored (DOMAIN.md §6).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from ledger.timezones import DEFAULT_SALESFORCE_TIME_ZONES

SETTING_KEYS = ("org_domains", "product_users", "sync_private_items", "salesforce_time_zones",
                "auto_save", "parked_max_age_hours", "parked_removal_max_age_hours")
#: Which Outlook items sync without an explicit save (DOMAIN.md §4, §12):
#: ``off`` none; ``organizer`` a product user's own meetings from 14 days back to
#: 60 ahead; ``with_contacts`` those of them with an attendee who is a Contact or Lead.
AUTO_SAVE = ("off", "organizer", "with_contacts")
#: The default keeps what every ledger recorded before the setting existed.
DEFAULT_AUTO_SAVE = "organizer"
#: Hours a parked observation may wait for what it depends on before it becomes a
#: ``waiting-for-dependency`` sync issue (``ledger.parking``); at most ten years.
DEFAULT_PARKED_MAX_AGE_HOURS = 24
MAX_PARKED_MAX_AGE_HOURS = 87_600
#: Hours a parked removal of something never seen is kept before intake drops it
#: (``ledger.parking``: removals never become issues, so without a bound they pile up);
#: 30 days, well past any delay a delivery or a re-run can put between an item and its
#: removal. Same range as ``parked_max_age_hours``.
DEFAULT_PARKED_REMOVAL_MAX_AGE_HOURS = 720


class SettingsError(ValueError):
    """A settings change that cannot be applied; names the offending key."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"setting {key!r}: {message}")
        self.key = key


@dataclass(frozen=True)
class OrgSettings:
    """Settings in force at one point of the ledger's history."""

    org_domains: frozenset[str] = frozenset()
    product_users: dict[str, str] = field(default_factory=dict)  # email -> SF User Id
    sync_private_items: bool = False
    salesforce_time_zones: frozenset[str] = frozenset(DEFAULT_SALESFORCE_TIME_ZONES)
    auto_save: str = DEFAULT_AUTO_SAVE  # one of AUTO_SAVE
    parked_max_age_hours: int = DEFAULT_PARKED_MAX_AGE_HOURS
    parked_removal_max_age_hours: int = DEFAULT_PARKED_REMOVAL_MAX_AGE_HOURS
    version: int = 0  # how many settings changes are folded in

    def is_product_user(self, email: str) -> bool:
        return email.lower() in self.product_users

    def in_org(self, email: str) -> bool:
        return email.lower().rpartition("@")[2] in self.org_domains

    def user_id(self, email: str) -> str | None:
        return self.product_users.get(email.lower())

    def mailbox_of(self, user_id: str) -> str | None:
        for email, uid in self.product_users.items():
            if uid == user_id or uid[:15] == user_id[:15]:
                return email
        return None

    def applied(self, changes: dict[str, Any]) -> OrgSettings:
        """These settings with ``changes`` (already validated) folded in."""
        updates: dict[str, Any] = {"version": self.version + 1}
        for key, value in changes.items():
            if key == "org_domains":
                updates[key] = frozenset(d.lower() for d in value)
            elif key == "product_users":
                updates[key] = {k.lower(): v for k, v in value.items()}
            elif key == "salesforce_time_zones":
                updates[key] = frozenset(value)
            else:
                updates[key] = value
        return replace(self, **updates)

    def as_record(self) -> dict[str, Any]:
        """JSON-native view, sorted so it compares byte for byte."""
        return {
            "org_domains": sorted(self.org_domains),
            "product_users": dict(sorted(self.product_users.items())),
            "sync_private_items": self.sync_private_items,
            "salesforce_time_zones": sorted(self.salesforce_time_zones),
            "auto_save": self.auto_save,
            "parked_max_age_hours": self.parked_max_age_hours,
            "parked_removal_max_age_hours": self.parked_removal_max_age_hours,
            "version": self.version,
        }


def validate_changes(changes: Any) -> dict[str, Any]:
    """Check a settings payload; return it normalised or raise SettingsError."""
    if not isinstance(changes, dict):
        raise SettingsError("payload", "must be an object")
    out: dict[str, Any] = {}
    for key, value in changes.items():
        if key not in SETTING_KEYS:
            raise SettingsError(key, f"unknown key (known: {', '.join(SETTING_KEYS)})")
        if key in ("org_domains", "salesforce_time_zones"):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise SettingsError(key, "must be a list of strings")
            out[key] = sorted({v.lower() for v in value} if key == "org_domains" else set(value))
        elif key == "product_users":
            if not isinstance(value, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in value.items()
            ):
                raise SettingsError(key, "must be an object of email -> Salesforce User Id")
            out[key] = {k.lower(): v for k, v in sorted(value.items())}
        elif key == "auto_save":
            if value not in AUTO_SAVE:
                raise SettingsError(key, f"must be one of {', '.join(AUTO_SAVE)} (got {value!r})")
            out[key] = value
        elif key in ("parked_max_age_hours", "parked_removal_max_age_hours"):
            if not isinstance(value, int) or isinstance(value, bool) \
                    or not 1 <= value <= MAX_PARKED_MAX_AGE_HOURS:
                raise SettingsError(key, f"must be a whole number of hours from 1 to "
                                         f"{MAX_PARKED_MAX_AGE_HOURS} (got {value!r})")
            out[key] = value
        else:  # sync_private_items
            if not isinstance(value, bool):
                raise SettingsError(key, "must be true or false")
            out[key] = value
    return out
