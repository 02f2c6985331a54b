"""The configuration's schema: every section, key and type the TOML file may hold.

An explicit validator, so that a mistake is an error that names the key
instead of a surprise later: ``mailboxes = "a@x"`` (a string, not a list)
would otherwise be read character by character, ``sync_private_items =
"false"`` (a string) would count as yes, and a misspelt key would be ignored.
Secrets are refused in the file: they come from the environment only.
"""

from __future__ import annotations

from typing import Any

from adapters.salesforce.ids import id_problem

STR, STRS, BOOL, INT, NUM, USERS = "a string", "a list of strings", "true or false", \
    "a whole number", "a number", "a table of email = Salesforce User Id"
SCHEMA: dict[str, dict[str, str]] = {
    "graph": {"tenant": STR, "client_id": STR, "mailboxes": STRS, "authority_host": STR,
              "base_url": STR, "window_days_back": INT, "window_days_ahead": INT,
              "page_size": INT},
    "salesforce": {"instance_url": STR, "login_url": STR, "client_id": STR, "username": STR,
                   "api_version": STR},
    # every org setting but the product users' and domains' own spelling is the ledger's
    # (``ledger.settings``): the loader checks its values the way an org.settings line is
    "org": {"domains": STRS, "product_users": USERS, "sync_private_items": BOOL,
            "auto_save": STR, "salesforce_time_zones": STRS, "parked_max_age_hours": INT,
            "parked_removal_max_age_hours": INT},
    "markers": {"salesforce_field": STR, "exchange_property": STR},
    "guard": {"share": NUM, "count": INT, "minimum": INT},
    "tls": {"ca_file": STR},
}
#: Keys that would hold a secret: refused in the file, with the variable to use instead.
SECRET_KEYS = {"client_secret": "SYNCLEDGER_GRAPH_CLIENT_SECRET or SYNCLEDGER_SF_CLIENT_SECRET",
               "secret": "the SYNCLEDGER_*_SECRET variables", "password": "SYNCLEDGER_SF_PASSWORD",
               "token": "the environment", "access_token": "the environment"}
USER_PREFIX = "005"


def _kind(value: Any) -> str:
    return {bool: "true/false", int: "a number", float: "a number", str: "a string",
            list: "a list", dict: "a table"}.get(type(value), type(value).__name__)


def _type_problem(dotted: str, value: Any, wanted: str) -> str | None:
    ok = {STR: isinstance(value, str) and value.strip() != "",
          STRS: isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value),
          BOOL: isinstance(value, bool),
          INT: isinstance(value, int) and not isinstance(value, bool) and value > 0,
          NUM: isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0,
          USERS: isinstance(value, dict)}[wanted]
    if ok:
        return None
    if wanted == STR and isinstance(value, str):
        return f"{dotted} is empty"
    if wanted == STRS and isinstance(value, list):
        return f"{dotted} must be {wanted}, each one non-empty"
    hint = ""
    if wanted == STRS and isinstance(value, str):
        hint = f' (write {dotted.split(".")[1]} = ["{value}"])'
    if wanted == BOOL and isinstance(value, str):
        hint = f" (write {dotted.split('.')[1]} = {value.strip().lower()}, without quotes)"
    if wanted == INT and isinstance(value, int) and not isinstance(value, bool):
        return f"{dotted} must be a positive whole number, not {value}"
    return f"{dotted} must be {wanted}, not {_kind(value)}{hint}"


def schema_problems(data: dict[str, Any]) -> list[str]:
    """Every problem of the TOML file's shape: unknown sections and keys, wrong types,
    empty values, secrets. Missing required keys are the loader's business."""
    problems: list[str] = []
    for section, table in data.items():
        if section not in SCHEMA:
            problems.append(f"[{section}] is not a known section (known: "
                            f"{', '.join(SCHEMA)})")
            continue
        if not isinstance(table, dict):
            problems.append(f"{section} must be a [{section}] table, not {_kind(table)}")
            continue
        for key, value in table.items():
            dotted = f"{section}.{key}"
            if key in SECRET_KEYS:
                problems.append(f"{dotted}: secrets are not read from the config file; set "
                                f"{SECRET_KEYS[key]} in the environment (the value was not "
                                "printed)")
            elif key not in SCHEMA[section]:
                problems.append(f"{dotted} is not a known key of [{section}] (known: "
                                f"{', '.join(SCHEMA[section])})")
            else:
                problem = _type_problem(dotted, value, SCHEMA[section][key])
                if problem is None and SCHEMA[section][key] == USERS:
                    problems += _users_problems(dotted, value)
                elif problem is not None:
                    problems.append(problem)
    return problems


def _users_problems(dotted: str, users: dict[str, Any]) -> list[str]:
    out = []
    for email, user_id in users.items():
        if "@" not in email:
            out.append(f"{dotted}: {email!r} is not an email address")
        why = id_problem(user_id, prefix=USER_PREFIX)
        if why is not None:
            out.append(f"{dotted}.{email}: {why} (a User Id starts with {USER_PREFIX})")
    return out
