"""Make hand-made drift of every reconciliation class in a saved sandbox cloud.

    syncledger sync --sandbox --db a.db --cloud-state c.json     # a synced org
    python scripts/sandbox_drift.py c.json                        # drift behind the sync's back
    syncledger reconcile --sandbox --db a.db --cloud-state c.json # the drift report and plan

What it changes is ``adapters/sandbox/drift.py`` (also what the tests use).
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent)]

from adapters.sandbox.cloud import SandboxCloud  # noqa: E402
from adapters.sandbox.drift import make_drift  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("cloud_state", type=Path, help="the sandbox cloud state file")
    args = parser.parse_args()
    if not args.cloud_state.exists():
        print(f"sandbox_drift: no cloud state at {args.cloud_state} (run 'syncledger sync "
              "--sandbox' first)", file=sys.stderr)
        return 4
    cloud = SandboxCloud.demo()
    extra = cloud.load(args.cloud_state)
    offset = float(extra.get("clock_offset", 0.0))
    now = datetime.now(UTC) + timedelta(seconds=offset)
    day = (now + timedelta(days=3)).strftime("%Y-%m-%d")
    made = make_drift(cloud, day)
    cloud.save(args.cloud_state, clock_offset=offset)
    for kind, ids in made.items():
        print(f"{kind:<22} {', '.join(ids)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
