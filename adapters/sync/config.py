"""Live-sync configuration: environment variables, optionally a TOML file.

Environment wins over the file. Secrets (the Graph client secret, the
Salesforce client secret or password) are read from the environment only and
are never printed: ``config check`` says whether they are set, not what they
are. The TOML file (``--config`` or ``$SYNCLEDGER_CONFIG``) looks like::

    [graph]
    tenant = "contoso.onmicrosoft.com"
    client_id = "11111111-2222-3333-4444-555555555555"
    mailboxes = ["alice@contoso.com", "bob@contoso.com"]
    # authority_host = "https://login.microsoftonline.com"
    # base_url = "https://graph.microsoft.com/v1.0"
    # window_days_back = 14, window_days_ahead = 60, page_size = 50

    [salesforce]
    instance_url = "https://contoso.my.salesforce.com"
    login_url = "https://contoso.my.salesforce.com"
    client_id = "3MVG9..."          # connected app consumer key
    # username = "integration@contoso.com"   (password flow; else client credentials)

    [org]
    domains = ["contoso.com"]
    product_users = { "alice@contoso.com" = "0055e000001AbCdAAK" }
    sync_private_items = false
    # auto_save = "organizer"               (off | organizer | with_contacts)
    # salesforce_time_zones = ["Europe/London", "America/New_York"]   (the org's own list)
    # parked_max_age_hours = 24, parked_removal_max_age_hours = 720

    [markers]
    salesforce_field = "SyncLedger_ICalUId__c"
    exchange_property = "SyncLedgerSalesforceId"

    [guard]
    # share = 0.2, count = 50, minimum = 2   (mass-change guard: hold a plan deleting or
    # overwriting more than share or count of a mailbox's synced meetings, and at least minimum)

    [tls]
    # ca_file = "/etc/ssl/corporate-proxy.pem"   (a private CA; default: the system's)
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.graph.config import GraphConfig
from adapters.salesforce.config import SalesforceConfig
from adapters.sync.config_schema import schema_problems
from ledger.settings import SettingsError, validate_changes

ENV = {
    "graph.tenant": "SYNCLEDGER_GRAPH_TENANT",
    "graph.client_id": "SYNCLEDGER_GRAPH_CLIENT_ID",
    "graph.mailboxes": "SYNCLEDGER_GRAPH_MAILBOXES",
    "graph.authority_host": "SYNCLEDGER_GRAPH_AUTHORITY_HOST",
    "graph.base_url": "SYNCLEDGER_GRAPH_BASE_URL",
    "salesforce.instance_url": "SYNCLEDGER_SF_INSTANCE_URL",
    "salesforce.login_url": "SYNCLEDGER_SF_LOGIN_URL",
    "salesforce.client_id": "SYNCLEDGER_SF_CLIENT_ID",
    "salesforce.username": "SYNCLEDGER_SF_USERNAME",
    "org.domains": "SYNCLEDGER_ORG_DOMAINS",
    "tls.ca_file": "SYNCLEDGER_CA_FILE",
}
SECRETS = {"graph": "SYNCLEDGER_GRAPH_CLIENT_SECRET",
           "salesforce": "SYNCLEDGER_SF_CLIENT_SECRET",
           "salesforce_password": "SYNCLEDGER_SF_PASSWORD"}


class ConfigError(ValueError):
    """What is missing or wrong, named so a person can fix it."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems




@dataclass(frozen=True)
class SyncConfig:
    graph: GraphConfig
    salesforce: SalesforceConfig
    org: dict[str, Any]  # the org.settings payload this config puts in force
    salesforce_marker_field: str = "SyncLedger_ICalUId__c"
    exchange_marker_property: str = "SyncLedgerSalesforceId"
    max_backoff_seconds: float = 30.0
    #: mass-change guard ([guard] share / count): a plan deleting or overwriting more
    #: than this share, or this number, of a mailbox's synced items waits for approval
    mass_change_share: float = 0.20
    mass_change_count: int = 50
    mass_change_minimum: int = 2


def _get(data: dict[str, Any], dotted: str) -> Any:
    section, _, key = dotted.partition(".")
    env = os.environ.get(ENV.get(dotted, ""), "")
    if env:
        return [v.strip() for v in env.split(",") if v.strip()] \
            if dotted in ("graph.mailboxes", "org.domains") else env
    return data.get(section, {}).get(key)


def env_problems() -> list[str]:
    """Variables that look like ours but are not (a typo would otherwise be ignored)."""
    known = {*ENV.values(), *SECRETS.values()}
    return [f"{name} is not a known variable (known: {', '.join(sorted(known))})"
            for name in sorted(os.environ)
            if name.startswith(("SYNCLEDGER_GRAPH_", "SYNCLEDGER_SF_", "SYNCLEDGER_ORG_"))
            and name not in known]


def load(path: str | None = None) -> SyncConfig:
    """Read and validate; raise ConfigError listing every problem at once."""
    file = path or os.environ.get("SYNCLEDGER_CONFIG")
    data: dict[str, Any] = {}
    problems: list[str] = []
    if file:
        try:
            data = tomllib.loads(Path(file).read_text())
        except FileNotFoundError:
            problems.append(f"config file {file} does not exist")
        except tomllib.TOMLDecodeError as exc:
            problems.append(f"config file {file}: {exc}")
    problems += schema_problems(data)
    problems += env_problems()

    def need(dotted: str) -> Any:
        value = _get(data, dotted)
        if value in (None, "", []):
            problems.append(f"{dotted} is missing (set {ENV[dotted]} or [{dotted.split('.')[0]}] "
                            f"{dotted.split('.')[1]} in the config file)")
        return value

    def secret(name: str, required: bool = True) -> str | None:
        value = os.environ.get(SECRETS[name])
        if required and not value:
            problems.append(f"{SECRETS[name]} is not set (secrets come from the environment "
                            "only)")
        return value

    tenant, client_id, mailboxes = need("graph.tenant"), need("graph.client_id"), \
        need("graph.mailboxes")
    if isinstance(mailboxes, list):
        problems += [f"graph.mailboxes: {m!r} is not an email address" for m in mailboxes
                     if isinstance(m, str) and "@" not in m]
    graph_secret = secret("graph")
    instance_url, sf_client = need("salesforce.instance_url"), need("salesforce.client_id")
    sf_secret = secret("salesforce")
    username = _get(data, "salesforce.username")
    password = secret("salesforce_password", required=bool(username))
    domains = need("org.domains")
    org = data.get("org", {})
    users = org.get("product_users") or {}
    if not users and "org.product_users" not in " ".join(problems):
        problems.append("org.product_users is missing: which mailboxes use the sync "
                        "(email = Salesforce User Id) in the config file")
    settings, wrong = _org_settings(org) if isinstance(org, dict) else ({}, [])
    problems += wrong
    ca_file = _get(data, "tls.ca_file")
    if ca_file and not Path(str(ca_file)).is_file():
        problems.append(f"tls.ca_file {ca_file} does not exist")
    g, s = data.get("graph", {}), data.get("salesforce", {})
    numbers: dict[str, int] = {}
    for name, default in (("window_days_back", 14), ("window_days_ahead", 60),
                          ("page_size", 50)):
        try:
            numbers[name] = int(g.get(name, default))
        except (TypeError, ValueError):
            problems.append(f"graph.{name} must be a whole number, not {g.get(name)!r}")
    for url_name in ("salesforce.instance_url", "salesforce.login_url", "graph.authority_host",
                     "graph.base_url"):
        value = _get(data, url_name)
        if value and not str(value).startswith("https://"):
            problems.append(f"{url_name} must be an https:// URL, not {value!r}")
    guard = data.get("guard", {})
    share = os.environ.get("SYNCLEDGER_MASS_CHANGE_SHARE") or guard.get("share", 0.20)
    count = os.environ.get("SYNCLEDGER_MASS_CHANGE_COUNT") or guard.get("count", 50)
    minimum = guard.get("minimum", 2)
    try:
        share, count, minimum = float(share), int(count), int(minimum)
        if not 0 < share <= 1 or count < 1 or minimum < 1:
            raise ValueError
    except (TypeError, ValueError):
        problems.append(f"guard.share must be a fraction in (0, 1], guard.count and "
                        f"guard.minimum whole numbers >= 1, not {share!r} / {count!r} / "
                        f"{minimum!r}")
    if problems:
        raise ConfigError(problems)
    graph = GraphConfig(
        tenant=tenant, client_id=client_id, client_secret=str(graph_secret),
        mailboxes=tuple(m.lower() for m in mailboxes),
        authority_host=_get(data, "graph.authority_host") or GraphConfig.authority_host,
        base_url=_get(data, "graph.base_url") or GraphConfig.base_url,
        ca_file=ca_file or None, **numbers)
    sf = SalesforceConfig(
        instance_url=instance_url, login_url=_get(data, "salesforce.login_url") or instance_url,
        client_id=sf_client, client_secret=str(sf_secret), username=username,
        password=password, api_version=str(s.get("api_version", "59.0")),
        ca_file=ca_file or None)
    markers = data.get("markers", {})
    return SyncConfig(
        graph=graph, salesforce=sf,
        org={"org_domains": list(domains), "product_users": dict(users),
             "sync_private_items": bool(org.get("sync_private_items", False)), **settings},
        salesforce_marker_field=markers.get("salesforce_field", "SyncLedger_ICalUId__c"),
        exchange_marker_property=markers.get("exchange_property", "SyncLedgerSalesforceId"),
        mass_change_share=float(share), mass_change_count=int(count),
        mass_change_minimum=int(minimum))


#: [org] keys that are org settings under the same name, recorded only when the file has
#: them (a value set by an org.settings line stays until the file says otherwise).
OPTIONAL_SETTINGS = ("auto_save", "salesforce_time_zones", "parked_max_age_hours",
                     "parked_removal_max_age_hours")


def _org_settings(org: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The optional org settings the file sets, checked as an org.settings line is (the
    ledger's own rules), and their problems, each naming ``org.KEY``."""
    out: dict[str, Any] = {}
    problems: list[str] = []
    for key in OPTIONAL_SETTINGS:
        if key not in org:
            continue
        try:
            out.update(validate_changes({key: org[key]}))
        except SettingsError as exc:
            problems.append(f"org.{key}: {str(exc).partition(': ')[2]}")
    return out, problems


def describe(config: SyncConfig) -> dict[str, Any]:
    """What ``config check`` prints: everything but the secrets' values."""
    return {
        "graph": {"tenant": config.graph.tenant, "client_id": config.graph.client_id,
                  "client_secret": "set", "mailboxes": list(config.graph.mailboxes),
                  "authority": config.graph.authority, "base_url": config.graph.base_url},
        "salesforce": {"instance_url": config.salesforce.instance_url,
                       "login_url": config.salesforce.login_url,
                       "client_id": config.salesforce.client_id, "client_secret": "set",
                       "flow": "password" if config.salesforce.username
                       else "client_credentials",
                       "api_version": config.salesforce.api_version},
        "org": {**config.org, "product_users": sorted(config.org["product_users"])},
        "markers": {"salesforce_field": config.salesforce_marker_field,
                    "exchange_property": config.exchange_marker_property},
        "guard": {"share": config.mass_change_share, "count": config.mass_change_count,
                  "minimum": config.mass_change_minimum},
        "tls": {"ca_file": config.graph.ca_file or "(the system's trust store)"},
    }
