"""The whole stack: `up` is idempotent, `status` reports five healthy services, `down` leaves
no process behind, and a warm `up` brings everything back with the data kept.

Named zz_ so it runs after the per-service tests that share the session's stack. `down` stops the
test session's stack only (tests/stack.toml's runtime folder): a demo running on the default
config keeps running, and its processes are not counted as leftovers.
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
    "hdfs": "-Dgs.daemon=",  # the NameNode/DataNode (and YARN) JVMs of stack/hdfs/run.sh
    "ferretdb": "ferretdb",
}


def _service_processes(runtime_dir) -> tuple[list[str], dict[int, str]]:
    """The service processes of this stack (their command line names the service's folder in our
    runtime folder: var/test/kafka/..., not var/kafka/... of a demo, nor the reverse), and those
    of any other stack on this machine (pid -> command line)."""
    ours, others = [], {}
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        for service, sig in SIGNATURES.items():
            if sig in cmd and f"/{service}/" in cmd:
                if f"{runtime_dir}/{service}/" in cmd:
                    ours.append(f"{proc.info['pid']}: {cmd[:160]}")
                else:
                    others[proc.info["pid"]] = cmd[:160]
                break
    return ours, others


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
    _, other_stacks = _service_processes(stack.runtime_dir)
    run_stack("down")
    leftovers, _ = _service_processes(stack.runtime_dir)
    assert leftovers == []
    # Another stack (a `make demo` on the default config) is not ours to stop.
    assert [f"{pid}: {cmd}" for pid, cmd in other_stacks.items() if not psutil.pid_exists(pid)] == []
    run_stack("up")
    out = run_stack("status").stdout
    assert "NOT healthy" not in out and out.count("healthy") >= len(SERVICES), out
