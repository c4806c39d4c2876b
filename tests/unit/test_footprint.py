"""A profile's memory and CPU by kind of process (gaitstream.footprint)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil

from gaitstream import footprint


def test_processes_are_told_apart_by_their_command_line():
    assert footprint.kind_of("java -Xss256k org.apache.cassandra.service.CassandraDaemon") == "Cassandra nodes"
    assert footprint.kind_of("java kafka.Kafka /var/cluster/kafka/node2/server.properties") == "Kafka brokers"
    assert footprint.kind_of("java org.apache.spark.executor.YarnCoarseGrainedExecutorBackend") == (
        "Spark executors + AM"
    )
    assert footprint.kind_of("java org.apache.hadoop.yarn.server.nodemanager.NodeManager") == "HDFS + YARN daemons"
    assert footprint.kind_of("python -m cli.main bridge") == "bridges"
    assert footprint.kind_of("sleep 10") == "other"


def test_a_process_outside_the_runtime_folder_counts_when_named(tmp_path: Path):
    assert footprint.rss_by_kind(tmp_path / "nothing-runs-here") == {}
    mine = footprint.rss_by_kind(tmp_path / "nothing-runs-here", (os.getpid(),))
    assert sum(mine.values()) > 10  # this interpreter, in MiB


def test_cores_by_kind_counts_the_cpu_a_process_burnt_between_two_snapshots(tmp_path):
    me = (os.getpid(),)
    before = footprint.cpu_seconds(tmp_path / "nothing-runs-here", me)
    started, cpu = time.monotonic(), time.process_time()
    while time.process_time() - cpu < 0.3:  # burn 0.3 s of CPU, however busy the machine is
        pass
    after = footprint.cpu_seconds(tmp_path / "nothing-runs-here", me)
    elapsed = time.monotonic() - started
    cores = footprint.cores_by_kind(before, after, elapsed)
    # /proc counts CPU in clock ticks (10 ms): each snapshot may round down by up to one tick.
    assert 0.3 - 2 * 0.01 <= cores["other"] * elapsed < 0.5
    assert cores["other"] <= 1.2
    # A process seen only in the second snapshot counts from zero; a vanished one is not counted.
    assert footprint.cores_by_kind({}, {1: ("bridges", 2.0)}, 4.0) == {"bridges": 0.5}
    assert footprint.cores_by_kind({1: ("bridges", 2.0)}, {}, 4.0) == {}


def test_a_profile_process_s_children_count_wherever_they_run(tmp_path):
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    # The parent names the runtime folder; its child runs elsewhere under a plain command line.
    parent = subprocess.Popen(
        [sys.executable, "-c", "import subprocess, sys; subprocess.run(['sleep', '30'], cwd='/')", str(runtime)]
    )
    try:
        deadline = time.monotonic() + 10
        while not psutil.Process(parent.pid).children() and time.monotonic() < deadline:
            time.sleep(0.05)
        pids = {process.pid for _kind, process in footprint.profile_processes(runtime)}
        child = psutil.Process(parent.pid).children()[0]
        assert {parent.pid, child.pid} <= pids
    finally:
        for process in psutil.Process(parent.pid).children(recursive=True):
            process.kill()
        parent.kill()
        parent.wait()
