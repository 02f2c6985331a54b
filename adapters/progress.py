"""Progress on long work: a ``rich`` bar on a terminal (percentage, rate, elapsed, ETA),
silence elsewhere.

Scripts and CI get no control characters; people at a terminal see how far along a long
ingest, projection catch-up, rebuild, reconciliation or benchmark is. With no known total
the bar shows the count and the rate only.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as _RichProgress
from rich.text import Text


class _Rate(ProgressColumn):
    """Items per second, over the whole run (rich's own speed column is for bytes)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f}/s" if speed else "-/s")


class Progress:
    """One bar; ``total`` may be unknown (None). Redraws at most ten times a second."""

    def __init__(self, label: str, total: int | None = None, stream: TextIO | None = None,
                 enabled: bool | None = None, unit: str = "") -> None:
        self.label = label
        self.total = total
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.started = time.monotonic()
        self.done = 0
        self._bar: _RichProgress | None = None
        if self.enabled:
            columns: list[ProgressColumn | str] = [TextColumn("{task.description}")]
            if total:
                columns += [BarColumn(), TaskProgressColumn(), MofNCompleteColumn()]
            else:
                columns += [SpinnerColumn(), TextColumn("{task.completed:,.0f}")]
            columns += [_Rate(), TimeElapsedColumn()]
            if total:
                columns += [TextColumn("eta"), TimeRemainingColumn()]
            columns += [TextColumn("{task.fields[note]}")]
            self._bar = _RichProgress(*columns, console=Console(file=self.stream),
                                      refresh_per_second=10, transient=False)
            self._task = self._bar.add_task(label + (f" {unit}" if unit else ""),
                                            total=total, note="")
            self._bar.start()

    def update(self, done: int, note: str = "") -> None:
        self.done = done
        if self._bar is not None:
            self._bar.update(self._task, completed=done, note=note)

    def update_from(self, result: Any) -> None:
        """Progress callback for anything with a ``read`` count (intake results)."""
        self.update(int(result.read))

    @property
    def elapsed(self) -> float:
        """Seconds since the bar was made (summaries print it)."""
        return time.monotonic() - self.started

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
