"""Shared fixtures: the config object, and the real stack started once per test session."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from gaitstream import config as gs_config

REPO_ROOT = Path(__file__).resolve().parent.parent
STACK = REPO_ROOT / "stack"


@pytest.fixture(scope="session")
def cfg() -> gs_config.Config:
    return gs_config.load()


def run_stack(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """Run a stack/ script, failing the test with its output when it fails."""
    proc = subprocess.run([str(STACK / args[0]), *args[1:]], capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        pytest.fail(f"stack/{' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session")
def stack(cfg: gs_config.Config) -> gs_config.Config:
    """All services up (or only those in $GS_TEST_SERVICES, space-separated, while developing).

    Started once per session and left running: `stack/down` is the user's call, and the test
    that checks `stack/down` brings the stack back up afterwards.
    """
    services = os.environ.get("GS_TEST_SERVICES", "").split()
    run_stack("up", *services)
    return cfg
