"""The documentation as a reader meets it: the README is a front page (at most 16,000 bytes),
every relative link and picture of README.md and docs/ leads somewhere (a file that exists, a
heading that exists), the docs pages link only within docs/ (all the MkDocs site has), and
the site builds with `mkdocs build --strict`. The commands of the pages run in test_readme.py.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import pytest

from tests.helpers import PROJECT_ROOT

README = PROJECT_ROOT / "README.md"
DOCS = PROJECT_ROOT / "docs"
README_MAX_BYTES = 16_000

FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", flags=re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML_LINK = re.compile(r"<(?:img|a)\b[^>]*?\b(?:src|href)=\"([^\"]+)\"", flags=re.IGNORECASE)
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", flags=re.MULTILINE)


def pages() -> list[Path]:
    return [README, *sorted(DOCS.rglob("*.md"))]


def prose(text: str) -> str:
    """The text outside code blocks and code spans, where a link is a link."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def anchors(text: str) -> set[str]:
    """The anchors of a page's headings as GitHub makes them (lower case, punctuation dropped,
    spaces to hyphens, -1, -2 ... for repeats); MkDocs makes the same ones for plain headings."""
    seen: dict[str, int] = {}
    for heading in HEADING.findall(FENCE.sub("", text)):
        words = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "")
        slug = re.sub(r"[^\w\- ]", "", words.lower()).replace(" ", "-")
        seen[slug] = seen.get(slug, -1) + 1
        if seen[slug]:
            seen[f"{slug}-{seen[slug]}"] = 0
    return set(seen)


def broken_links(page: Path) -> list[str]:
    """Every relative link or picture of ``page`` whose file or heading does not exist."""
    text = page.read_text()
    broken = []
    for target in LINK.findall(prose(text)) + HTML_LINK.findall(prose(text)):
        if re.match(r"[a-z][a-z0-9+.-]*:", target, flags=re.IGNORECASE):
            continue  # http:, https:, mailto: ... are not checked (no network in tests)
        path, _, anchor = unquote(target).partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(f"{target}: no file {linked}")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked.read_text()):
            broken.append(f"{target}: no heading with the anchor #{anchor} in {linked.name}")
    return broken


def test_the_readme_is_a_front_page_of_at_most_16000_bytes():
    size = len(README.read_bytes())
    assert size <= README_MAX_BYTES, (
        f"README.md is {size} bytes, over {README_MAX_BYTES}: move details into docs/"
    )


def test_every_relative_link_and_picture_points_to_an_existing_file_and_heading():
    broken = {
        str(page.relative_to(PROJECT_ROOT)): found
        for page in pages()
        if (found := broken_links(page))
    }
    assert not broken, broken


def test_the_docs_pages_link_only_within_docs():
    outside = {
        str(page.relative_to(PROJECT_ROOT)): target
        for page in sorted(DOCS.rglob("*.md"))
        for target in LINK.findall(prose(page.read_text()))
        + HTML_LINK.findall(prose(page.read_text()))
        if not re.match(r"[a-z][a-z0-9+.-]*:", target, flags=re.IGNORECASE)
        and not (page.parent / target.partition("#")[0]).resolve().is_relative_to(DOCS)
    }
    assert not outside, f"the MkDocs site has only docs/; name other files in code: {outside}"


def test_the_link_check_finds_a_missing_file_and_a_missing_heading(tmp_path: Path):
    (tmp_path / "other.md").write_text("# Other page\n\n## The `nas` pipeline\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n\n[ok](other.md#the-nas-pipeline) [self](#title) [web](https://x.org/y)\n"
        "`[in code](gone.md)`\n\n```\n[in a block](gone.md)\n```\n\n"
        '[gone](gone.md) [no heading](other.md#nope) <img src="pic.png">\n'
    )
    found = broken_links(page)
    assert [entry.split(":")[0] for entry in found] == ["gone.md", "other.md#nope", "pic.png"]


def test_headings_get_githubs_anchors():
    text = "# Measuring latency: the `sampling` pipeline\n## Search\n## Search\n### A, b & c\n"
    assert anchors(text) == {
        "measuring-latency-the-sampling-pipeline",
        "search",
        "search-1",
        "a-b--c",
    }


@pytest.mark.slow
def test_the_docs_site_builds_with_mkdocs_strict(tmp_path: Path):
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stderr[-4000:]
    measuring = (tmp_path / "site" / "measuring" / "index.html").read_text()
    assert '<code class="language-bash">kedro run --pipelines sampling' in measuring
