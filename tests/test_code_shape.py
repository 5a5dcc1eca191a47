"""The package keeps its shape: short functions, and ``sfvideo/utils`` a leaf that imports nothing
else of the package (so anything may use it without import cycles)."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "sfvideo"
MAX_FUNCTION_LINES = 60


def function_lengths(path: Path) -> list[tuple[str, int]]:
    """(qualified name, lines from ``def`` to the last line of the body) of every function in ``path``."""
    out: list[tuple[str, int]] = []

    def walk(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                out.append((prefix + child.name, child.end_lineno - child.lineno + 1))
                walk(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.ClassDef):
                walk(child, f"{prefix}{child.name}.")
            else:
                walk(child, prefix)

    walk(ast.parse(path.read_text()), "")
    return out


def package_imports(path: Path, root: Path = ROOT) -> list[str]:
    """Modules of ``sfvideo`` that ``path`` (below ``root``) imports: absolute or relative imports,
    at module level or inside functions."""
    rel_parts = path.relative_to(root).with_suffix("").parts  # ("sfvideo", "utils", "io")
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] == "sfvideo"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the importing module's package
                base = list(rel_parts[:-node.level])
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module.split(".")[0] == "sfvideo":
                found.append(module)
    return found


def test_helpers_see_what_they_should(tmp_path):
    pkg = tmp_path / "sfvideo" / "utils"
    pkg.mkdir(parents=True)
    f = pkg / "x.py"
    f.write_text("import os\nfrom . import io\nfrom ..models import ops\n\n"
                 "def g():\n    from sfvideo.data import lists\n    return 1\n")
    assert function_lengths(f) == [("g", 3)]
    assert package_imports(f, tmp_path) == ["sfvideo.utils", "sfvideo.models", "sfvideo.data"]


def test_no_function_is_longer_than_the_limit():
    long = [(str(p.relative_to(ROOT)), name, n) for p in sorted(PACKAGE.rglob("*.py"))
            for name, n in function_lengths(p) if n > MAX_FUNCTION_LINES]
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines (split them into steps): {long}"


def test_utils_imports_nothing_else_of_the_package():
    bad = {}
    for p in sorted((PACKAGE / "utils").rglob("*.py")):
        outside = [m for m in package_imports(p) if not m.startswith("sfvideo.utils")]
        if outside:
            bad[str(p.relative_to(ROOT))] = outside
    assert not bad, f"sfvideo/utils must stay a leaf: {bad}"
