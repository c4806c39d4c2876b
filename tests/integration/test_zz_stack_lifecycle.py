"""The whole stack: `up` is idempotent, `status` reports five healthy services, `down` leaves
no process behind, and a warm `up` brings everything back with the data kept.

Named zz_ so it runs after the per-service tests that share the session's stack.
"""

from __future__ import annotations

import psutil
import pytest

from gaitstream.health import SERVICES
from tests.conftest import run_stack

pytestmark = pytest.mark.integration

# What each service's process looks like on the command line (to prove nothing is left behind).
SIGNATURES = {
    "mosquitto": "mosquitto.conf",
    "kafka": "kafka.Kafka",
    "cassandra": "CassandraDaemon",
    "hdfs": "hdfs",
    "ferretdb": "ferretdb",
}


def _leftovers(runtime_dir) -> list[str]:
    """Processes that belong to this stack: their command line names our runtime folder or cache."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if str(runtime_dir) in cmd and any(sig in cmd for sig in SIGNATURES.values()):
            found.append(f"{proc.info['pid']}: {cmd[:160]}")
    return found


def test_up_twice_is_idempotent(stack):
    out = run_stack("up").stdout
    for service in SERVICES:
        assert f"[{service}] already running" in out, out


def test_status_reports_every_service_healthy(stack):
    out = run_stack("status").stdout
    for service in SERVICES:
        assert f"[{service}] running" in out and "healthy" in out, out
    assert "NOT healthy" not in out


def test_down_leaves_no_process_then_up_again(stack):
    run_stack("down")
    assert _leftovers(stack.runtime_dir) == []
    run_stack("up")
    out = run_stack("status").stdout
    assert "NOT healthy" not in out and out.count("healthy") >= len(SERVICES), out
