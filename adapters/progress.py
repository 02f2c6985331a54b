"""Progress on long work: a one-line bar on a terminal, silence elsewhere.

Scripts and CI get no control characters; people at a terminal see how far
along a long ingest, rebuild or benchmark is.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


class Progress:
    """Redraws at most ten times a second; ``total`` may be unknown (None)."""

    def __init__(self, label: str, total: int | None = None, stream: TextIO | None = None,
                 enabled: bool | None = None) -> None:
        self.label = label
        self.total = total
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self._last = 0.0
        self._started = time.monotonic()

    def update(self, done: int, note: str = "") -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < 0.1 and (self.total is None or done < self.total):
            return
        self._last = now
        rate = done / max(now - self._started, 1e-9)
        if self.total:
            frac = min(done / self.total, 1.0)
            bar = "#" * int(frac * 30)
            text = f"{self.label} [{bar:<30}] {done}/{self.total} {rate:,.0f}/s {note}"
        else:
            text = f"{self.label} {done:,} {rate:,.0f}/s {note}"
        self.stream.write("\r" + text[:120].ljust(120))
        self.stream.flush()

    def update_from(self, result: Any) -> None:
        """Progress callback for anything with a ``read`` count (intake results)."""
        self.update(int(result.read))

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
