"""The read side: one module per read model (``mapping``, ``conflicts``, ``issues``, ``plan``,
``analytics``), ``runner.py`` (catch-up with tracking), ``base.py`` (tables and bulk
upserts), ``queries.py`` (what the CLI and the sync read), and the debugging views
(``timeline``, ``explain``, ``whatif``, ``replay``). Imports ``ledger`` only."""
