"""OData literals: the one place a value is put into a Graph ``$filter`` or ``$expand``.

OData string literals are single-quoted; a quote inside is doubled. Nothing
else needs escaping inside the literal; the URL encoding of the whole
parameter is left to ``requests``.
"""

from __future__ import annotations


def odata_string(value: str) -> str:
    """``value`` as a quoted OData string literal."""
    if not isinstance(value, str):
        raise TypeError(f"an OData string literal needs a str, got {type(value).__name__}")
    return "'" + value.replace("'", "''") + "'"
