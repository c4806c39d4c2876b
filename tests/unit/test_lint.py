"""The code base is formatted, lint-free and type-checks: ``ruff format --check``, ``ruff check`` and
``mypy``, each configured in pyproject.toml, run with this interpreter from the repository root.

Alone: ``var/venv/bin/python -m pytest tests/unit/test_lint.py`` (or the three commands below).
Caches live under var/cache/ (git-ignored), so a second run takes a few seconds.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
CHECKS = {
    "ruff-format": ["ruff", "format", "--check", "--diff"],
    "ruff-check": ["ruff", "check", "--output-format", "concise"],
    "mypy": ["mypy"],
}


@pytest.mark.parametrize("command", list(CHECKS.values()), ids=list(CHECKS))
def test_clean(command: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", *command], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
    )
    if result.returncode != 0:
        pytest.fail(
            f"`python -m {' '.join(command)}` failed (exit {result.returncode}):\n{result.stdout}{result.stderr}",
            pytrace=False,
        )
