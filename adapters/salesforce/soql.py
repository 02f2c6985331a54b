"""SOQL literals: the one place a value from outside is put into a query.

Strings go through simple-salesforce's own quoting (``quote_soql_value``:
backslash, quotes, newlines, tabs escaped as the SOQL reference lists), and
Id lists take checked Ids only, so no value can end a literal early.
"""

from __future__ import annotations

from simple_salesforce.format import quote_soql_value

from adapters.salesforce.ids import is_id


def soql_string(value: str) -> str:
    """``value`` as a quoted, escaped SOQL string literal."""
    if not isinstance(value, str):
        raise TypeError(f"a SOQL string literal needs a str, got {type(value).__name__}")
    quoted: str = quote_soql_value(value)
    return quoted


def soql_id_list(ids: list[str]) -> str:
    """``('id1','id2')`` for a SOQL ``IN``; refuses anything that is not an Id."""
    bad = [i for i in ids if not is_id(i)]
    if bad or not ids:
        raise ValueError(f"not Salesforce Ids: {[str(b)[:40] for b in bad]!r}" if bad
                         else "no ids given")
    return "(" + ",".join(soql_string(i) for i in ids) + ")"
