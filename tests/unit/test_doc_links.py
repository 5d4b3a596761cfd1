"""Every relative link and #anchor in the project's documentation resolves.

The README points to a page per platform under docs/, and those pages point back and to each other;
a page moved or a heading reworded would otherwise leave a reader at a dead link, which nobody notices
until a person clicks it. Anchors follow GitHub's rule for heading ids.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PAGES = sorted([REPO / "README.md", REPO / "bench" / "README.md", *(REPO / "docs").glob("*.md")])
README_MAX_LINES = 350

_LINK = re.compile(r"(?<!!)\[(?:[^\]\[]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)|!\[[^\]]*\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^\s*(```|~~~)")


def _prose(text: str) -> list[str]:
    """The lines outside fenced code blocks, with inline code blanked (links there are not links)."""
    lines, fenced = [], False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(re.sub(r"`[^`]*`", "``", line))
    return lines


def github_slug(heading: str) -> str:
    """GitHub's id for a heading: lower case, punctuation dropped (keeping - and _), spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading counts by its label
    text = text.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading id of a page, with GitHub's -1, -2 ... for repeated headings."""
    seen: Counter[str] = Counter()
    ids = set()
    fenced = False
    for line in page.read_text(encoding="utf-8").splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            continue
        match = None if fenced else re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match:
            slug = github_slug(match.group(1))
            ids.add(slug if not seen[slug] else f"{slug}-{seen[slug]}")
            seen[slug] += 1
    return ids


def links(page: Path) -> list[str]:
    found = []
    for line in _prose(page.read_text(encoding="utf-8")):
        for match in _LINK.finditer(line):
            found.append(match.group(1) or match.group(2))
    return found


def test_github_slug_matches_githubs_rule() -> None:
    assert github_slug("Splunk SIEM: the `TA-mde-ipstats` add-on") == "splunk-siem-the-ta-mde-ipstats-add-on"
    assert github_slug("mde-ipstats — Defender for Endpoint IP statistics for SOAR") == (
        "mde-ipstats--defender-for-endpoint-ip-statistics-for-soar")
    assert github_slug("Packages: `./package.sh`") == "packages-packagesh"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_and_anchor_resolves(page: Path) -> None:
    broken = []
    for target in links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):
            continue  # https:, mailto: ... are not ours to check offline
        path_part, _, anchor = target.partition("#")
        dest = (page.parent / path_part).resolve() if path_part else page
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading with that id in {dest.relative_to(REPO)}")
    assert not broken, f"{page.relative_to(REPO)}: " + "; ".join(broken)


def test_the_readme_stays_what_everyone_needs() -> None:
    lines = (REPO / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines < README_MAX_LINES, f"README.md has {lines} lines: move platform details to docs/"
    readme_links = links(REPO / "README.md")
    for page in ("splunk-soar", "xsoar", "cortex", "splunk-siem", "sentinel"):
        assert f"docs/{page}.md" in readme_links, f"the README links no page for {page}"
