"""Outlook bodies as plain text: HTML -> readable text with ``inscriptis``.

Graph sends bodies as HTML (``body.contentType`` ``html``); Salesforce's
``Description`` is plain text (DOMAIN.md §11). The conversion happens here, at
the edge, when a Graph event becomes an observation: the ledger records the
text, so what replays and ``whatif`` decide never depends on the installed
converter (a newer inscriptis changes only what later reads record).

Why inscriptis and not html2text (compared on ``tests/fixtures/bodies/``, real
Outlook and Teams bodies): inscriptis writes plain text (html2text writes
Markdown: ``**Time**``, ``---|---`` table rules, escaped punctuation), keeps
accents and dashes (html2text turns ``Café`` into ``Cafe`` and an en dash into ``-``
unless told otherwise), lays tables out as aligned columns, drops scripts,
styles and Word's conditional comments, and is Apache-2.0 (html2text is GPL-3.0).

Afterwards each line is stripped (inscriptis indents nested ``<div>``s, which
Outlook nests deeply) and runs of blank lines become one.
"""

from __future__ import annotations

import html
import re

from inscriptis import get_text
from inscriptis.model.config import ParserConfig

_CONFIG = ParserConfig(display_links=True)
_BLANK_RUNS = re.compile(r"\n{3,}")


def html_to_text(markup: str) -> str:
    """Readable text of an HTML body: line breaks kept, entities decoded,
    links as ``[text](url)``."""
    if not markup.strip():
        return ""
    text = get_text(markup, _CONFIG)
    lines = [line.strip() for line in text.replace("\r", "").split("\n")]
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip()


def text_to_html(text: str) -> str:
    """What Exchange stores for a text body: escaped, one ``<br>`` per line break."""
    return "<html><body><div>" + html.escape(text).replace("\r\n", "\n").replace(
        "\n", "<br>\n") + "</div></body></html>"
