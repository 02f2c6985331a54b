"""What the Graph client needs to reach a tenant (filled in by ``adapters.sync.config``)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class GraphConfig:
    tenant: str
    client_id: str
    client_secret: str = field(repr=False)
    mailboxes: tuple[str, ...]
    authority_host: str = "https://login.microsoftonline.com"
    base_url: str = "https://graph.microsoft.com/v1.0"
    window_days_back: int = 14
    window_days_ahead: int = 60
    page_size: int = 50
    ca_file: str | None = None  # a private CA (the sandbox); None: the system's

    @property
    def authority(self) -> str:
        return f"{self.authority_host.rstrip('/')}/{self.tenant}"
