"""Readable tables for people; JSON is printed by the caller for scripts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson


def cell(value: Any, width: int = 48) -> str:
    if value is None:
        text = ""
    elif isinstance(value, (dict, list)):
        text = orjson.dumps(value).decode()
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    else:
        text = str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str], width: int = 48) -> str:
    """Columns sized to their content, capped at ``width`` characters."""
    cells = [[cell(r.get(c), width) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    head = "  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))
    lines = [head, "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()
              for row in cells]
    return "\n".join(lines)
