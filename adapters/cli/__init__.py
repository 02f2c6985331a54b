"""The ``syncledger`` command line: ``main.py`` (the parser and the entry point),
``common.py`` (exit codes, the command registry, JSON output, opening the ledger: shared by
every command module, imports none of them), one module per command group (``feed``,
``demo``, ``query``, ``debug``, ``sync``), ``render.py`` (plain-text tables). Thin: parse,
call one job, print. May import every other room."""
