"""The sandbox: ``org.py`` (the demo org as raw payloads, the bundled feed in ``data/``),
``cloud.py`` (an emulated Graph and Salesforce seeded with it), ``emulator.py`` (the HTTPS
server both emulators share), ``graph_emulator.py``, ``salesforce_emulator.py``, ``tls.py``
(a throw-away CA). Production code reaches it only for ``demo`` and ``sync --sandbox``."""
