"""A profile's memory by kind of process (gaitstream.footprint)."""

from __future__ import annotations

import os
from pathlib import Path

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
