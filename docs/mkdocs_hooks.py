"""MkDocs hook: render the ```` ```bash tested ```` blocks as shell code.

Python-Markdown's fenced-code extension takes only a language after the fence, so a block
opened with ```` ```bash tested ```` would otherwise be rendered as one line of inline code.
The ``tested`` mark is for tests/test_readme.py, which runs these blocks; readers see shell.
"""

from __future__ import annotations

import re

TESTED_FENCE = re.compile(r"^```bash tested[ \t]*$", flags=re.MULTILINE)


def on_page_markdown(markdown: str, **_: object) -> str:
    return TESTED_FENCE.sub("```bash", markdown)
