"""gaitstream.supervise on real child processes (small shell scripts): restarts, backoff, cap, stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gaitstream import config as gs_config
from gaitstream import supervise

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_backoff_doubles_up_to_the_cap():
    policy = supervise.Policy(backoff_initial_s=2, backoff_max_s=60, max_restarts=0, reset_after_s=300)
    assert [policy.delay(n) for n in range(1, 8)] == [2, 4, 8, 16, 32, 60, 60]


@pytest.mark.parametrize(
    ("code", "text"), [(3, "exit code 3"), (-9, "killed by SIGKILL"), (137, "exit code 137 (SIGKILL)")]
)
def test_exit_causes_are_named(code, text):
    assert supervise.describe_exit(code) == text


def start(tmp_path: Path, script: str, **overrides: str) -> tuple[subprocess.Popen, Path, Path]:
    child = tmp_path / "child.sh"
    child.write_text("#!/bin/bash\n" + script)
    child.chmod(0o755)
    log = tmp_path / "supervisor.log"
    env = {
        **os.environ,
        "GAITSTREAM_SUPERVISE_STATUS_DIR": str(tmp_path),
        "GAITSTREAM_SUPERVISE_BACKOFF_INITIAL_SECONDS": "0.2",
        "GAITSTREAM_SUPERVISE_BACKOFF_MAX_SECONDS": "0.4",
        **{f"GAITSTREAM_SUPERVISE_{k.upper()}": v for k, v in overrides.items()},
    }
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gaitstream.supervise", "--name", "child", "--log", str(log), "--", str(child)],
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return proc, tmp_path / "child-supervisor.json", log


def wait_for(predicate, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def status(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def test_abnormal_exits_are_restarted_with_their_cause_until_the_cap(tmp_path):
    proc, status_file, log = start(tmp_path, 'echo "ERROR: disk on fire"; exit 7\n', max_restarts="3")
    assert proc.wait(30) == 7  # gave up: the child's code
    doc = status(status_file)
    assert doc["state"] == "gave-up" and doc["restarts"] == 3
    assert [h["cause"] for h in doc["history"]] == ["exit code 7"] * 3
    assert all(h["error"] == "ERROR: disk on fire" for h in doc["history"])
    assert [h["delay_s"] for h in doc["history"]] == [0.2, 0.4, 0.4]
    assert log.read_text().count("restart ") == 3


def test_a_child_killed_by_a_signal_is_restarted_and_a_stop_is_not(tmp_path):
    marker = tmp_path / "runs"
    script = f'echo run >> {marker}\ntrap "exit 0" TERM\nsleep 600 & wait\n'
    proc, status_file, _log = start(tmp_path, script)
    first = wait_for(lambda: status(status_file).get("child_pid"))
    os.kill(first, signal.SIGKILL)  # a crash nobody asked for
    second = wait_for(lambda: (pid := status(status_file).get("child_pid")) not in (None, first) and pid)
    assert status(status_file)["restarts"] == 1
    assert status(status_file)["history"][0]["cause"] == "killed by SIGKILL"
    os.killpg(proc.pid, signal.SIGTERM)  # what stack/*.sh stop sends
    assert proc.wait(20) == 0
    time.sleep(1)
    assert status(status_file)["state"] == "stopped" and status(status_file)["restarts"] == 1
    assert marker.read_text().count("run") == 2
    with pytest.raises(ProcessLookupError):
        os.kill(second, 0)


def test_orphans_of_a_dead_child_are_killed_before_the_restart(tmp_path):
    orphan_pid = tmp_path / "orphan.pid"
    # The child leaves a grandchild behind (as a killed spark-submit.sh leaves its JVM), then dies.
    script = f"if [[ ! -f {orphan_pid} ]]; then sleep 600 & echo $! > {orphan_pid}; exit 1; fi\nsleep 600\n"
    proc, status_file, _log = start(tmp_path, script)
    wait_for(lambda: status(status_file).get("restarts") == 1 and status(status_file).get("state") == "running")
    pid = int(orphan_pid.read_text())
    wait_for(lambda: not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2])
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(20)


def test_a_stop_during_the_backoff_ends_it_at_once(tmp_path):
    proc, status_file, _log = start(tmp_path, "exit 1\n", backoff_initial_seconds="30", backoff_max_seconds="30")
    wait_for(lambda: status(status_file).get("state") == "backoff")
    started = time.monotonic()
    os.killpg(proc.pid, signal.SIGTERM)
    assert proc.wait(10) == 0
    assert time.monotonic() - started < 5
    assert status(status_file)["state"] == "stopped" and status(status_file)["restarts"] == 1


def test_the_status_path_follows_the_config(tmp_path):
    cfg = gs_config.load(env={"GAITSTREAM_SUPERVISE_STATUS_DIR": str(tmp_path)})
    assert supervise.status_path(cfg, "bridge") == tmp_path / "bridge-supervisor.json"
