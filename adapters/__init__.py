"""The edge: everything that speaks a wire format, a file format or a person's language.

Rooms (each a sub-package; see README "Design"):

* ``graph/``, ``salesforce/``: one room per outside system: its HTTP client and its wire
  translation (the only modules that know its field names), and its client settings.
* ``feed/``: the JSON Lines observation feed (DOMAIN.md §6), the reader process, ingesting files.
* ``sync/``: the live cycle, the outbox, the configuration that fills in both clients.
* ``cli/``: the ``syncledger`` command line, one module per command group.
* ``sandbox/``: the demo org, its emulated Graph and Salesforce, TLS for them; only the demo
  and ``sync --sandbox`` import it.
* top level: ``wire.py`` (field-naming errors, the ledger's time format) and
  ``http_session.py`` (whom HTTPS trusts), shared by the system rooms; ``progress.py``
  (the terminal progress line).

May import ``projections`` and ``ledger``; nothing imports ``adapters``.
"""
