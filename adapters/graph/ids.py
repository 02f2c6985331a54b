"""Graph item ids read from outside: checked before they become part of a URL or a key.

A Graph id is opaque, but it is always one URL path segment: a non-empty
string with no ``/``, ``?`` or ``#`` and no control character. Real ids are
base64-like ASCII of about 150 characters, so this also refuses white space,
quotes, backslashes, ``%``, non-ASCII (bidi marks) and more than
``MAX_LENGTH`` characters: a hostile payload cannot fill the index or a URL. Anything else is
refused with the field named.
"""

from __future__ import annotations

import re

from adapters.wire import WireError

MAX_LENGTH = 1024
#: Besides ``/ ? #`` and control characters: what no Graph id holds (they are ASCII,
#: base64-like) and what would change meaning in a URL, a query or a log line: white
#: space, quotes, backslash, ``%`` and anything outside printable ASCII (bidi marks).
_BAD = re.compile(r"[/?#\x00-\x20\x7f-\U0010ffff%\\\"'`<>]")


def id_problem(value: object) -> str | None:
    """Why ``value`` is not a usable Graph item id; None if it is."""
    if not isinstance(value, str):
        return f"expected a Graph id string, got {type(value).__name__}"
    if not value:
        return "empty: every Graph item has an id"
    if len(value) > MAX_LENGTH:
        return f"{len(value)} characters long (a Graph id has at most {MAX_LENGTH})"
    bad = _BAD.search(value)
    if bad is not None:
        return (f"contains {bad.group()!r} at {bad.start()}: a Graph id is one URL path "
                "segment of printable ASCII, without '/', '?', '#', '%', quotes, "
                "backslashes, spaces or control characters")
    return None


def is_id(value: object) -> bool:
    return id_problem(value) is None


def checked_id(value: object, field: str, item_id: str | None = None) -> str:
    """``value`` if it is a Graph id, else ``WireError`` naming ``field``."""
    problem = id_problem(value)
    if problem is not None:
        raise WireError(field, problem, item_id)
    assert isinstance(value, str)
    return value
