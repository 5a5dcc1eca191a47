"""The README and the documentation site: the README starts people off in under 250 lines, every
relative link and image points to a file that exists, results tables sit between well-formed
markers, and the site builds with ``mkdocs build --strict`` (broken links and anchors fail)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"

FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
MARKER = re.compile(r"<!-- (/?)results:([A-Za-z0-9_]+) -->")


def markdown_files() -> list[Path]:
    return [README, *sorted(DOCS.rglob("*.md"))]


def prose(text: str) -> str:
    """The text without fenced code blocks and inline code, where brackets are not links."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def relative_targets(text: str) -> list[str]:
    """Targets of the Markdown links and images in ``text`` that point into the repository."""
    targets = []
    for target in LINK.findall(prose(text)):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # http:, https:, mailto: ...; an anchor on the same page
        targets.append(target.split("#", 1)[0])
    return targets


def test_link_finder_sees_links_and_images_but_not_code():
    text = ("See [a](docs/a.md#x), ![pic](img.png) and [web](https://x.org).\n"
            "`[not](code.md)`\n```\n[nor](block.md)\n```\n")
    assert relative_targets(text) == ["docs/a.md", "img.png"]


def test_readme_is_short_and_starts_with_the_two_commands():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) < 250
    blocks = "\n".join(m.group(0) for m in FENCE.finditer(text))
    for command in ("make demo", "make test"):
        assert re.search(rf"^{command}\b", blocks, re.M), f"README: no code line starts with {command!r}"


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_and_images_exist(path):
    missing = [t for t in relative_targets(path.read_text(encoding="utf-8")) if not (path.parent / t).exists()]
    assert not missing, f"{path.relative_to(ROOT)}: links to missing files: {missing}"


@pytest.mark.parametrize("path", sorted(DOCS.rglob("*.md")), ids=lambda p: str(p.relative_to(ROOT)))
def test_docs_links_stay_inside_the_site(path):
    outside = [t for t in relative_targets(path.read_text(encoding="utf-8"))
               if DOCS.resolve() not in (path.parent / t).resolve().parents]
    assert not outside, f"{path.relative_to(ROOT)}: links outside docs/ (the site cannot serve them): {outside}"


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_results_markers_pair_up_around_a_table(path):
    text = path.read_text(encoding="utf-8")
    open_name = None
    start = 0
    for m in MARKER.finditer(text):
        closing, name = m.group(1) == "/", m.group(2)
        if not closing:
            assert open_name is None, f"{path.name}: results:{name} opens inside results:{open_name}"
            open_name, start = name, m.end()
            continue
        assert open_name == name, f"{path.name}: /results:{name} closes {open_name or 'nothing'}"
        body = text[start:m.start()].strip().splitlines()
        assert len(body) >= 3 and all(line.startswith("|") for line in body), \
            f"{path.name}: results:{name} does not hold exactly one Markdown table"
        open_name = None
    assert open_name is None, f"{path.name}: results:{open_name} is never closed"


def test_the_same_results_table_reads_the_same_everywhere():
    tables: dict[str, tuple[str, str]] = {}
    pattern = re.compile(r"<!-- results:(\w+) -->(.*?)<!-- /results:\1 -->", re.S)
    for path in markdown_files():
        for name, body in pattern.findall(path.read_text(encoding="utf-8")):
            seen = tables.setdefault(name, (path.name, body.strip()))
            assert seen[1] == body.strip(), f"results:{name} differs between {seen[0]} and {path.name}"
    assert tables, "no results tables found"


def test_site_builds_strict(tmp_path):
    for module in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python"):
        pytest.importorskip(module)
    res = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(ROOT / "mkdocs.yml"),
                          "--site-dir", str(tmp_path / "site")], capture_output=True, text=True, timeout=300,
                         cwd=ROOT)
    assert res.returncode == 0, res.stdout + res.stderr
    assert (tmp_path / "site" / "index.html").is_file()
    assert (tmp_path / "site" / "api" / "models" / "index.html").is_file()
