"""Output for people, drawn with ``rich``: tables fitted to the terminal width, sections,
CSV. JSON is printed by the caller (``common.emit_json``) for scripts and never changes
with the width.

Width: the terminal's when stdout is one, else ``$COLUMNS``, else 120 (a pipe or a CI log
gets the same readable layout every time). Long text columns (messages, reasons) wrap,
at spaces: such a column keeps room for its longest word (up to 24 characters), so
``series-master-update`` is never broken in two; other columns are cut with an ellipsis
only when the table cannot fit otherwise. Ids are cut last, and every command that takes
an id accepts a unique prefix of it. A dict in a table cell (a planned write's fields) is
shown as its keys (``subject, body, location``, or ``categories=Error`` for one short
value): which fields, not a JSON fragment cut mid-word; ``--json`` has the whole value.
"""

from __future__ import annotations

import csv as _csv
import io
import os
import shutil
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

#: Columns whose text wraps onto more lines instead of being cut.
WRAPPED = frozenset({"message", "reason", "error", "fields", "detail", "why", "action",
                     "body", "summary", "description", "open_issue_kinds", "decisions",
                     "subject"})
#: Columns that hold ids: cut only after every other column has given up its room.
IDS = frozenset({"meeting_id", "id", "exchange_id", "salesforce_id", "ical_uid", "item_id",
                 "key", "series_id"})
DEFAULT_WIDTH = 120


def width() -> int:
    """Columns to draw in (see the module docstring)."""
    if sys.stdout.isatty():
        return shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns
    try:
        return max(40, int(os.environ.get("COLUMNS", "")))
    except ValueError:
        return DEFAULT_WIDTH


def console(file: io.StringIO | None = None, columns: int | None = None) -> Console:
    """A console that writes plain text (no colour codes) unless stdout is a terminal."""
    tty = sys.stdout.isatty() and file is None
    return Console(file=file or io.StringIO(), width=columns or width(), highlight=False,
                   color_system="auto" if tty else None, force_terminal=tty,
                   soft_wrap=False, emoji=False)


def cell(value: Any, width: int = 48) -> str:
    """One value as text: JSON for structures, yes/no for booleans, cut to ``width``."""
    if value is None:
        text = ""
    elif isinstance(value, (dict, list)):
        text = orjson.dumps(value).decode()
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    else:
        text = str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def duration(seconds: float | None) -> str:
    """A length of time as a person reads it in a table: ``42 s``, ``5 min``, ``3 h``,
    ``2 d`` (rounded; '' for none)."""
    if seconds is None:
        return ""
    for unit, size, up_to in (("s", 1, 90), ("min", 60, 90 * 60), ("h", 3600, 36 * 3600)):
        if seconds < up_to:
            return f"{round(seconds / size)} {unit}"
    return f"{round(seconds / 86400)} d"


def heading(name: str) -> str:
    return name.replace("_", " ").upper()


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], width: int = 48,
          *, title: str | None = None, columns_wide: int | None = None) -> str:
    """A table of ``rows`` fitted to the output width (``columns_wide`` overrides it).

    Columns keep their natural width while the table fits. Otherwise text columns
    (:data:`WRAPPED`) wrap first, then headings wrap and the other columns are cut with
    an ellipsis (to 12 characters at least), ids last (``_fit``); when even that does not
    fit, each row becomes a block of ``name  value`` lines. ``width`` caps a structured
    value's text (a dict's keys, a list's JSON). Returns the text, no trailing newline."""
    total = columns_wide or globals()["width"]()
    cells = [[_text(r.get(c), c, width) for c in columns] for r in rows]
    values = [max((len(x) for row in cells for x in row[i].splitlines()), default=0)
              for i in range(len(columns))]
    words = [min(WORD_MAX, max((len(w) for row in cells for w in row[i].split()), default=0))
             for i in range(len(columns))]
    fitted = _fit(list(columns), values, total, words)
    if fitted is None:
        return _records(rows, columns, cells, total, title)
    t = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, title=title,
              title_justify="left", header_style="bold", collapse_padding=True,
              expand=False)
    for c, w in zip(columns, fitted, strict=True):
        wraps = c in WRAPPED
        # a heading wider than its column wraps at its spaces (UNRESOLVED / ATTENDEES)
        t.add_column(Text(heading(c), no_wrap=False, overflow="fold"), width=w,
                     no_wrap=not wraps, overflow="fold" if wraps else "ellipsis")
    for row in cells:
        t.add_row(*row)
    return _draw(t, total)


GAP = 2  # rich's collapsed padding between two columns
#: The longest word a wrapped column keeps room for (longer ones are folded).
WORD_MAX = 24
#: Short columns (a mailbox, an operation) keep this much before ids are cut.
SHORT_COLUMN = 20


def _fit(columns: list[str], values: list[int], total: int,
         words: list[int]) -> list[int] | None:
    """Column widths that fit ``total`` (see ``table``), or None if none do. ``values``:
    each column's widest value, ``words``: its longest word (capped), the least a
    wrapped column narrows to.

    A column's natural width holds its heading on one line; a heading wraps at its
    spaces before any value is cut. Who gives up room, in turn: wrapped text down to
    its longest word (12 at least); other columns down to their values, at most
    :data:`SHORT_COLUMN` (a mailbox or ``set-categories`` stays whole, a cut one tells
    nothing); ids down to 12; the other columns down to 12."""
    room = total - GAP * (len(columns) - 1)
    head = [max(len(w) for w in heading(c).split()) for c in columns]
    natural = [max(len(heading(c)), v) for c, v in zip(columns, values, strict=True)]
    widths = list(natural)
    wrapped = [i for i, c in enumerate(columns) if c in WRAPPED]
    ids = [i for i, c in enumerate(columns) if c in IDS and c not in WRAPPED]
    other = [i for i in range(len(columns)) if i not in wrapped and i not in ids]
    stages: list[tuple[list[int], list[int]]] = [
        (wrapped, [max(12, words[i], head[i]) for i in wrapped]),
        (other, [max(min(values[i], SHORT_COLUMN), head[i]) for i in other]),
        (ids, [max(12, head[i]) for i in ids]),
        (other, [max(min(values[i], 12), head[i]) for i in other])]
    for members, least in stages:
        over = sum(widths) - room
        if over <= 0:
            return widths
        floors = {i: min(natural[i], x) for i, x in zip(members, least, strict=True)}
        while over > 0:
            widest = max(members, key=lambda i: widths[i] - floors[i], default=None)
            if widest is None or widths[widest] <= floors[widest]:
                break
            widths[widest] -= 1
            over -= 1
    return widths if sum(widths) <= room else None


def _records(rows: Sequence[Mapping[str, Any]], columns: Sequence[str],
             cells: list[list[str]], total: int, title: str | None) -> str:
    """Too narrow for a table: one block per row, ``name  value`` lines, values wrapped."""
    label = max(len(heading(c)) for c in columns)
    out = [title] if title else []
    for n, row in enumerate(cells, 1):
        out.append(f"── {n} of {len(cells)} " + "─" * max(0, total - 10 - len(str(n)) * 2))
        for c, text in zip(columns, row, strict=True):
            if not text:
                continue
            first, *rest = wrap(text, max(10, total - label - 2))
            out.append(f"{heading(c):<{label}}  {first}")
            out.extend(" " * (label + 2) + more for more in rest)
    return "\n".join(out)


def wrap(text: str, width: int) -> list[str]:
    """Lines of at most ``width`` characters, broken at spaces where one is near."""
    lines: list[str] = []
    for part in text.splitlines() or [""]:
        while len(part) > width:
            cut = part.rfind(" ", 0, width + 1)
            cut = cut if cut > width // 2 else width
            lines.append(part[:cut].rstrip())
            part = part[cut:].lstrip()
        lines.append(part)
    return lines


def _text(value: Any, column: str, cap: int) -> str:
    """A cell's text: a dict as its keys (:func:`keys_of`), a list as JSON cut at ``cap``;
    ids and prose whole (the table wraps or cuts them to fit)."""
    if isinstance(value, dict):
        return cell(keys_of(value), max(cap, 8))
    if isinstance(value, list):
        return cell(value, max(cap, 8))
    return cell(value, 10_000)


#: The longest value :func:`keys_of` shows beside a dict's only key.
SHORT_VALUE = 40


def keys_of(value: Mapping[str, Any]) -> str:
    """A dict for a table cell: its keys (``subject, body, location``), or its only key
    with its value when that is short text (``categories=Error``, ``location=Room 7``): a
    person sees which fields; ``--json`` has them whole."""
    if len(value) == 1:
        key, item = next(iter(value.items()))
        if isinstance(item, list) and all(isinstance(x, str) for x in item):
            item = "+".join(item)
        if isinstance(item, str) and len(item) <= SHORT_VALUE and "\n" not in item:
            return f"{key}={item}"
    return ", ".join(str(k) for k in value)


def _draw(renderable: Any, columns: int | None = None) -> str:
    buffer = io.StringIO()
    out = console(buffer, columns)
    out.print(renderable)
    return "\n".join(line.rstrip() for line in buffer.getvalue().rstrip("\n").splitlines())


def sections(view: Mapping[str, Any], *, columns: int | None = None) -> str:
    """A record as titled sections: scalars as ``name  value`` lines, a dict of dicts as a
    table per section, lists one item a line (``state``)."""
    out: list[str] = []
    scalars = {k: v for k, v in view.items() if not isinstance(v, (dict, list))}
    if scalars:
        out.append(_pairs(scalars, columns))
    for name, value in view.items():
        if name in scalars:
            continue
        count = len(value)
        out.append(f"\n{heading(name)} ({count})")
        if not value:
            out.append("  (none)")
        elif isinstance(value, dict) and all(isinstance(v, dict) for v in value.values()):
            keys = list(dict.fromkeys(k for v in value.values() for k in v))
            rows = [{"id": k, **{f: v.get(f) for f in keys}} for k, v in value.items()]
            out.append(_pairs_per_row(rows, ["id", *keys], columns))
        elif isinstance(value, dict):
            out.append(_pairs(value, columns))
        else:
            out.extend(f"  - {cell(v, (columns or width()) - 4)}" for v in value)
    return "\n".join(out)


def _pairs(values: Mapping[str, Any], columns: int | None) -> str:
    t = Table(box=None, show_header=False, pad_edge=False, show_edge=False)
    t.add_column(style="bold", no_wrap=True)
    t.add_column(overflow="fold")
    for k, v in values.items():
        t.add_row(k.replace("_", " "), cell(v, 2000))
    return _draw(t, columns)


def _pairs_per_row(rows: Sequence[Mapping[str, Any]], keys: Sequence[str],
                   columns: int | None) -> str:
    """One block per row (an Exchange item, a Salesforce Event): too many fields for a
    table row at 80 columns, so name/value lines under the id."""
    blocks = []
    for r in rows:
        rest = {k: r.get(k) for k in keys if k != "id" and r.get(k) not in (None, [], {}, "")}
        blocks.append(f"  {r['id']}\n" + "\n".join(
            "    " + line for line in _pairs(rest, (columns or width()) - 4).splitlines()))
    return "\n".join(blocks)


def csv(rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """CSV with a header row: lists and dicts as JSON, booleans as true/false."""
    buffer = io.StringIO()
    writer = _csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for r in rows:
        writer.writerow([_csv_value(r.get(c)) for c in columns])
    return buffer.getvalue()


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return orjson.dumps(value).decode()
    return str(value)
