"""Print what inscriptis and html2text make of the Outlook / Teams body fixtures.

The comparison behind ``adapters/graph/body.py``'s choice (README, *Bodies*):
``python scripts/compare_bodies.py [FILE.html ...]`` (default: every fixture in
``tests/fixtures/bodies/``). html2text is in the ``test`` extra only.
"""

from __future__ import annotations

import sys
from pathlib import Path

import html2text
from inscriptis import get_text
from inscriptis.model.config import ParserConfig

from adapters.graph.body import html_to_text

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "bodies"


def main(paths: list[str]) -> None:
    files = [Path(p) for p in paths] or sorted(FIXTURES.glob("*.html"))
    for path in files:
        markup = path.read_text(encoding="utf-8")
        converter = html2text.HTML2Text()
        converter.body_width = 0
        for name, text in (("inscriptis (raw)", get_text(markup, ParserConfig(display_links=True))),
                           ("html2text", converter.handle(markup)),
                           ("syncledger (inscriptis + line clean-up)", html_to_text(markup))):
            print(f"===== {path.name}: {name} =====")
            print(text)


if __name__ == "__main__":
    main(sys.argv[1:])
