"""What the Salesforce client needs to reach an org (filled in by ``adapters.sync.config``)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SalesforceConfig:
    instance_url: str
    login_url: str
    client_id: str
    client_secret: str = field(repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    api_version: str = "59.0"
    ca_file: str | None = None
