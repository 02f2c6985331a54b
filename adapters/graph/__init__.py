"""Microsoft Graph: ``client.py`` (HTTPS + msal, paging, delta, retries), ``wire.py``
(Graph JSON <-> observations and write bodies: the only module that knows Graph field
names), ``config.py`` (what the client needs). Imports ``adapters.wire``,
``adapters.http_session`` and ``ledger``; never another system's room."""
