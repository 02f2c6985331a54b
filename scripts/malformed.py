"""Malformed-line corpus figures: tried, quarantined naming the right field, accepted wrongly.

    python scripts/malformed.py [--db URL]     # default: a throw-away SQLite file

Each line of ``tests/malformed_corpus.py`` breaks one field of a valid feed line
(wrong JSON type, NUL / control characters / an unpaired surrogate, a year the
ledger cannot hold); the unbroken lines are ingested first as controls.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ledger.store import Store
from tests.malformed_corpus import run_corpus


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", help="an empty ledger URL (default: a temporary SQLite file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(args.db or str(Path(tmp) / "malformed.db"))
        try:
            report = run_corpus(store, Path(tmp))
        finally:
            store.close()
    print(f"controls (unbroken lines) {report['controls']}, quarantined "
          f"{report['controls_quarantined']}")
    print(f"tried {report['tried']}, quarantined with the right field "
          f"{report['quarantined_right_field']}, with another field "
          f"{len(report['quarantined_other_field'])}, accepted wrongly "
          f"{len(report['accepted_wrongly'])}")
    for line in report["quarantined_other_field"] + report["accepted_wrongly"]:
        print("  " + line)
    if "--json" in sys.argv:
        print(json.dumps(report))
    return 0 if not report["accepted_wrongly"] and not report["quarantined_other_field"] else 1


if __name__ == "__main__":
    sys.exit(main())
