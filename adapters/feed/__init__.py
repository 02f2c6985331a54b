"""The observation feed (DOMAIN.md §6): ``envelopes.py`` (JSON Lines envelopes <->
observations, line errors, stub filling), ``reader_process.py`` (a large feed decoded in a
second process), ``ingest.py`` (feed files -> the ledger, the job behind ``ingest``).
Imports the system rooms' ``wire`` modules and ``ledger``."""
