"""Every relative link and image in the repository's Markdown resolves: the file or directory
exists, and a `#anchor` names a heading of the target file (as GitHub slugs it). The README
stays a front door; its reference sections live in docs/<topic>.md."""

import os
import re
import unicodedata
from functools import cache
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[2]
SKIPPED_DIRS = {".git", ".greentic", "node_modules"}
README_MAX_LINES = 220
GREENTIC_COPIES = ROOT / "tests" / "fixtures" / "greentic"

FENCE = re.compile(r"^\s*(`{3,}|~{3,})")
CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^\s<>()]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^ {0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$")
HTML_ANCHOR = re.compile(r"<a\s[^>]*\b(?:name|id)=\"([^\"]+)\"")
EXTERNAL = re.compile(r"^(?:https?|mailto):", re.IGNORECASE)


def markdown_files() -> list[Path]:
    """Every *.md of the repository, outside .git, virtualenvs, .greentic and node_modules."""
    found = []
    for directory, subdirs, files in os.walk(ROOT):
        subdirs[:] = sorted(d for d in subdirs
                            if d not in SKIPPED_DIRS and not d.startswith(".venv"))
        if Path(directory) == GREENTIC_COPIES:
            subdirs[:] = []  # Greentic's own files, copied here (not ours, not committed)
        found += [Path(directory, name) for name in sorted(files) if name.endswith(".md")]
    return found


@cache
def prose(path: Path) -> list[tuple[int, str]]:
    """(line number, line) of every line outside fenced code blocks."""
    lines, fence = [], ""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if match := FENCE.match(line):
            if not fence:
                fence = match[1]
                continue
            if match[1][0] == fence[0] and len(match[1]) >= len(fence):
                fence = ""
                continue
        if not fence:
            lines.append((number, line))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: its rendered text, lower case, punctuation dropped (letters
    of any script, digits, `_` and `-` stay), spaces as hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link counts with its text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").lower()
    kept = "".join(c for c in text
                   if c.isalnum() or c in " -_" or unicodedata.category(c).startswith("M"))
    return kept.replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    """Every anchor a Markdown file offers; a repeated heading gets -1, -2, … as on GitHub."""
    found: set[str] = set()
    for _, line in prose(path):
        found |= set(HTML_ANCHOR.findall(line))
        if match := HEADING.match(line):
            base = candidate = slug(match[1])
            count = 0
            while candidate in found:
                count += 1
                candidate = f"{base}-{count}"
            found.add(candidate)
    return frozenset(found)


def links(path: Path) -> list[tuple[int, str]]:
    """(line number, target) of every link and image outside code blocks and code spans."""
    return [(number, target) for number, line in prose(path)
            for target in LINK.findall(CODE_SPAN.sub(lambda m: " " * len(m[0]), line))]


def broken_links(path: Path) -> list[str]:
    """One message per relative link of `path` that does not resolve."""
    problems = []
    for number, target in links(path):
        if EXTERNAL.match(target):
            continue
        file_part, _, anchor = target.partition("#")
        base = ROOT if file_part.startswith("/") else path.parent
        resolved = base / unquote(file_part.lstrip("/")) if file_part else path
        where = f"{path.relative_to(ROOT)}:{number}: ({target})"
        if not resolved.exists():
            problems.append(f"{where}: {file_part} does not exist")
        elif anchor and resolved.suffix == ".md" and unquote(anchor) not in anchors(resolved):
            problems.append(f"{where}: {resolved.name} has no heading whose anchor is #{anchor}")
    return problems


@pytest.mark.parametrize("path", markdown_files(), ids=lambda path: str(path.relative_to(ROOT)))
def test_every_relative_link_resolves(path: Path) -> None:
    problems = broken_links(path)
    assert not problems, "broken links:\n" + "\n".join(problems)


def test_the_readme_is_a_front_door_not_the_manual() -> None:
    lines = len((ROOT / "README.md").read_text(encoding="utf-8").splitlines())
    assert lines <= README_MAX_LINES, (
        f"README.md has {lines} lines (at most {README_MAX_LINES}): move reference sections to "
        "docs/<topic>.md and list them under its Documentation heading")
