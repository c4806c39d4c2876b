"""Shared fixtures: the config object, and the real stack started once per test session.

The session runs its own stack: tests/stack.toml (its own runtime folder, var/test, and every
port moved) becomes GAITSTREAM_CONFIG here, at import, before any test module reads the config,
so every subprocess (stack/ scripts, bridge, spark-submit, API) inherits it and a running
`make demo` (var/, the default ports) is left alone. A caller who set GAITSTREAM_CONFIG keeps
theirs: the tests then run against that config's stack (GAITSTREAM_CONFIG=conf/gaitstream.toml:
the default one, as before).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from gaitstream import config as gs_config  # reads no config at import: load() does

REPO_ROOT = Path(__file__).resolve().parent.parent
STACK = REPO_ROOT / "stack"
TEST_CONFIG = REPO_ROOT / "tests" / "stack.toml"
os.environ.setdefault("GAITSTREAM_CONFIG", str(TEST_CONFIG))
UNIT_TESTS = REPO_ROOT / "tests" / "unit"


@pytest.fixture(autouse=True)
def _unit_tests_read_the_shipped_config(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit tests start no service: they read conf/gaitstream.toml as shipped, not the overlay
    set above (a caller's own GAITSTREAM_CONFIG still applies, as it always did)."""
    if request.node.path.is_relative_to(UNIT_TESTS) and os.environ.get("GAITSTREAM_CONFIG") == str(TEST_CONFIG):
        monkeypatch.delenv("GAITSTREAM_CONFIG")


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

    Started once per session and left running (the test stack, in its own runtime folder):
    stopping it is the user's call (GAITSTREAM_CONFIG=tests/stack.toml stack/down), and the test
    that checks `stack/down` brings the stack back up afterwards.
    """
    services = os.environ.get("GS_TEST_SERVICES", "").split()
    run_stack("up", *services)
    return cfg
