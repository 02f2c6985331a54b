"""The live sync: ``cycle.py`` (pull both calendars, record, carry out the plan, record the
answers), ``outbox.py`` (idempotent write log), ``config.py`` (TOML + environment ->
both clients' settings). Imports the system rooms, ``feed``, ``projections`` and ``ledger``;
never the sandbox (``cli.sync`` hands it an emulated cloud's config instead)."""
