"""Every import points down: the packages form layers, as the README's Layout section says.

gaitstream (foundation) < model, bridge < streaming < api < cli (front door). A package may import
its own modules and any lower layer, never a higher one or a sibling of its layer. Imports inside
functions count too: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
OURS = ("gaitstream", "model", "bridge", "streaming", "api", "cli")
# What each package may import (besides itself).
ALLOWED: dict[str, set[str]] = {
    "gaitstream": set(),
    "model": {"gaitstream"},
    "bridge": {"gaitstream"},
    "streaming": {"gaitstream", "model", "bridge"},
    "api": {"gaitstream", "model", "streaming"},
    "cli": {"gaitstream", "model", "bridge", "streaming", "api"},
}


def imported_packages(path: Path) -> set[tuple[str, int]]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {(alias.name.split(".")[0], node.lineno) for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add((node.module.split(".")[0], node.lineno))
    return {(name, line) for name, line in found if name in OURS}


@pytest.mark.parametrize("package", OURS)
def test_imports_point_down(package: str):
    files = sorted((REPO / package).rglob("*.py"))
    assert files, f"no package {package}/"
    wrong = [
        f"{path.relative_to(REPO)}:{line} imports {name}"
        for path in files
        for name, line in sorted(imported_packages(path))
        if name != package and name not in ALLOWED[package]
    ]
    assert not wrong, "imports that point up or sideways:\n" + "\n".join(wrong)


def test_streaming_uses_of_bridge_are_the_payload_schema_only():
    """The job reads what the bridge wrote: it shares the payload schema, nothing else of the bridge."""
    for path in sorted((REPO / "streaming").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "bridge":
                names = {alias.name for alias in node.names}
                assert node.module == "bridge" and names <= {"payload"}, (
                    f"{path.name}: from {node.module} import {names}"
                )


def test_api_uses_of_streaming_are_the_table_schema_only():
    """The API reads the job's tables: it shares their schema, never the job's code."""
    for path in sorted((REPO / "api").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "streaming":
                assert node.module == "streaming.schema", f"{path.relative_to(REPO)} imports {node.module}"
