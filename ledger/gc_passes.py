"""Fewer cycle-collector passes during bulk work (intake, catch-up).

Both allocate a dozen containers per event and keep thousands of meetings or
rows in memory, so at the default thresholds (a pass every 700 allocations)
the collector ran constantly and its full passes walked everything held:
15 % of intake time and 12 % of catch-up (``scripts/bench.py``). Neither makes
reference cycles of its own. The collector still runs, every 100,000
allocations, and the caller's thresholds come back afterwards.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

THRESHOLDS = (100_000, 50, 100)


@contextmanager
def fewer_gc_passes() -> Iterator[None]:
    old = gc.get_threshold()
    gc.set_threshold(*THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*old)
