"""Salesforce: ``client.py`` (simple-salesforce over requests, retries, SOQL paging),
``wire.py`` (SOQL records <-> observations and write bodies: the only module that knows
Salesforce field names), ``config.py`` (what the client needs). Imports ``adapters.wire``,
``adapters.http_session`` and ``ledger``; never another system's room."""
