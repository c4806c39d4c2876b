"""End to end under faults, at real-time speed: replay → bridge → Kafka → streaming job → Cassandra,
killing -9 in turn the bridge, the Spark driver and the Kafka broker, restarting each.

At the end Cassandra's windows and final features must equal the fault-free result exactly (the
offline computation from the source files, which the fault-free streaming test also matches):
0 windows lost, 0 samples counted twice.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid

import numpy as np
import pytest

from bridge import replay
from gaitstream import config as gs_config
from gaitstream import gaitpdb
from model import features
from streaming import schema
from tests.conftest import run_stack
from tests.integration.pipeline import BridgeProcess, drop_keyspace, isolated_config
from tests.integration.test_streaming import JobProcess, cassandra_rows, job_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# 87 s, 48 s and 55 s of walking at 100 Hz.
WALKS = ("JuPt28_05", "JuPt03_05", "JuPt02_01")
FAULTS_AT_S = {"bridge": 12, "driver": 28, "kafka": 46}


def kill_kafka_hard(cfg) -> None:
    """kill -9 the broker's whole process group (what a crash looks like), then start it again."""
    pid = int((cfg.runtime_dir / "run" / "kafka.pid").read_text())
    os.killpg(pid, signal.SIGKILL)
    time.sleep(2)
    run_stack("kafka.sh", "start")


def offline(folder, walks=WALKS) -> tuple[dict, dict]:
    """The fault-free reference: windows and final features computed from the source files."""
    refs = {ref.walk_id: ref for ref in gaitpdb.list_walks(folder)[0]}
    windows, finals = {}, {}
    for walk_id in walks:
        walk = gaitpdb.read_walk(refs[walk_id])
        for row in features.window_means(np.arange(len(walk)), walk.forces):
            windows[(walk_id, row["window_index"])] = row
        finals[walk_id] = {k: v for k, v in features.gait_features(walk.time, walk.forces).items() if np.isfinite(v)}
    return windows, finals


def test_bridge_driver_and_kafka_killed_nothing_lost_nothing_doubled(stack, tmp_path):
    cfg, env = isolated_config()
    tag = uuid.uuid4().hex[:8]
    run_env = job_env(env, tmp_path, f"e2e{tag}")
    run_cfg = gs_config.load(env=run_env)
    keyspace = run_cfg.cassandra.keyspace
    schema.create(run_cfg)
    folder = cfg.path("data.gaitpdb_dir")
    refs = replay.select_walks(gaitpdb.list_walks(folder)[0], walks=WALKS)
    expected_windows, expected_features = offline(folder)

    job = JobProcess(run_env, tmp_path / "job.log")
    status_file = run_cfg.path("streaming.status_file")
    deadline = time.monotonic() + 240
    while not status_file.exists():
        assert job.alive() and time.monotonic() < deadline, job.log()[-4000:]
        time.sleep(1)
    bridge = BridgeProcess(env, tmp_path / "bridge.log").start()

    result: dict = {}
    thread = threading.Thread(
        target=lambda: result.update(
            report=replay.replay(cfg, refs, speed=1.0, batch_size=10, data_dir=folder, progress=False)
        ),
        daemon=True,
    )
    t0 = time.monotonic()
    thread.start()
    restarts = {"bridge": 0, "driver": 0, "kafka": 0, "job exits": 0}
    done: set[str] = set()
    while thread.is_alive() or len(done) < len(FAULTS_AT_S):
        elapsed = time.monotonic() - t0
        if "bridge" not in done and elapsed >= FAULTS_AT_S["bridge"]:
            bridge.kill(signal.SIGKILL)
            bridge.start()
            restarts["bridge"] += 1
            done.add("bridge")
        if "driver" not in done and elapsed >= FAULTS_AT_S["driver"]:
            job.kill_everything()
            job = JobProcess(run_env, tmp_path / "job.log")
            restarts["driver"] += 1
            done.add("driver")
        if "kafka" not in done and elapsed >= FAULTS_AT_S["kafka"]:
            kill_kafka_hard(cfg)
            restarts["kafka"] += 1
            done.add("kafka")
        if not job.alive():  # a query that failed while Kafka was away: restart, as a supervisor would
            job = JobProcess(run_env, tmp_path / "job.log")
            restarts["job exits"] += 1
        time.sleep(0.5)
    thread.join()
    report = result["report"]
    assert not report.interrupted and sorted(report.per_walk) == sorted(WALKS)

    # Wait until every expected window and every final feature row is there.
    deadline = time.monotonic() + 420
    while True:
        if not job.alive():
            job = JobProcess(run_env, tmp_path / "job.log")
            restarts["job exits"] += 1
        windows, walk_features = cassandra_rows(run_cfg, keyspace)
        got = {(w.walk_id, w.window_index): w for w in windows}
        finals = {f.walk_id: f for f in walk_features if f.final and f.samples == report.per_walk[f.walk_id]}
        complete = all(k in got and got[k].sample_count == e["sample_count"] for k, e in expected_windows.items())
        if complete and set(finals) == set(WALKS):
            break
        assert time.monotonic() < deadline, (
            f"{len(got)}/{len(expected_windows)} windows, {len(finals)} finals\n{job.log()[-3000:]}"
        )
        time.sleep(3)

    lost = sorted(set(expected_windows) - set(got))
    extra = sorted(set(got) - set(expected_windows))
    doubled = [k for k, e in expected_windows.items() if got[k].sample_count != e["sample_count"]]
    mismatched = [
        k
        for k, e in expected_windows.items()
        if any(abs(getattr(got[k], ch) - e[ch]) > 1e-6 for ch in gaitpdb.FORCE_CHANNELS)
    ]
    print(
        f"\nfaults: {restarts}; windows expected {len(expected_windows)}, stored {len(got)}, "
        f"lost {len(lost)}, extra {len(extra)}, miscounted {len(doubled)}, means differing {len(mismatched)}"
    )
    assert (lost, extra, doubled, mismatched) == ([], [], [], [])
    for walk_id, expected in expected_features.items():
        stored = finals[walk_id].features
        assert set(stored) == set(expected), walk_id
        for name, value in expected.items():
            assert stored[name] == pytest.approx(value, rel=1e-9, abs=1e-12), (walk_id, name)

    job.proc.send_signal(signal.SIGTERM)
    job.proc.wait(120)
    bridge.stop()
    drop_keyspace(cfg, keyspace)
