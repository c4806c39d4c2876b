"""Resident memory and CPU of everything a runtime folder runs, by kind: what a profile costs.

A process belongs to the profile when its runtime folder (``runtime.dir``) is in its command line
or is its working directory: services, per-node JVMs, bridges, YARN daemons and their containers
(executors, the application master). Processes started elsewhere (a test's streaming job) are
added by pid with their children. ``stack/up`` prints the pid-file view of the same thing.
"""

from __future__ import annotations

from pathlib import Path

import psutil

# Kinds of process, by a word of the command line (first match wins).
KINDS = (
    ("Cassandra nodes", "CassandraDaemon"),
    ("Kafka brokers", "kafka.Kafka"),
    ("Spark executors + AM", "CoarseGrainedExecutorBackend"),
    ("Spark executors + AM", "ExecutorLauncher"),
    ("streaming driver", "SparkSubmit"),
    ("streaming driver", "spark-submit"),
    ("streaming driver", "streaming/job.py"),
    ("Spark Python workers", "pyspark"),
    ("Spark Python workers", "streaming.worker_daemon"),
    ("HDFS + YARN daemons", "org.apache.hadoop"),
    ("bridges", " bridge"),
    ("Mosquitto", "mosquitto"),
    ("FerretDB", "ferretdb"),
    ("API", "uvicorn"),
    ("API", "gaitstream api"),
)


def kind_of(command_line: str) -> str:
    return next((kind for kind, word in KINDS if word in command_line), "other")


def profile_processes(runtime_dir: Path, extra_pids: tuple[int, ...] = ()):
    """(kind, process) for every process of the profile and of ``extra_pids``' trees."""
    root, extra = str(runtime_dir), set(extra_pids)
    matched: dict[int, psutil.Process] = {}
    kinds: dict[int, str] = {}
    for process in psutil.process_iter():
        try:
            line = " ".join(process.cmdline())
            if process.pid in extra or root in line or process.cwd().startswith(root):
                matched[process.pid], kinds[process.pid] = process, kind_of(line)
        except psutil.Error:  # gone, or not ours to inspect
            continue
    # A matched process's children are the profile's too (a supervisor's bridge runs from the repo
    # root); a child whose command line names no kind (a uvicorn worker) takes its parent's.
    for process in list(matched.values()):
        try:
            matched.update({child.pid: child for child in process.children(recursive=True)})
        except psutil.Error:
            continue
    for pid in sorted(matched):
        process = matched[pid]
        try:
            kind = kinds.get(pid) or kind_of(" ".join(process.cmdline()))
            if kind == "other":
                parent = process.parent()
                kind = kinds.get(parent.pid, "other") if parent else "other"
            kinds[pid] = kind
            yield kind, process
        except psutil.Error:
            continue


def rss_by_kind(runtime_dir: Path, extra_pids: tuple[int, ...] = ()) -> dict[str, float]:
    """MiB per kind of every process of the profile (and of ``extra_pids``' trees)."""
    totals: dict[str, float] = {}
    for kind, process in profile_processes(runtime_dir, extra_pids):
        try:
            totals[kind] = totals.get(kind, 0.0) + process.memory_info().rss / 2**20
        except psutil.Error:
            continue
    return totals


def cpu_seconds(runtime_dir: Path, extra_pids: tuple[int, ...] = ()) -> dict[int, tuple[str, float]]:
    """Per pid: its kind and the user + system CPU seconds it used so far (a snapshot; two of them
    give the cores each kind used in between, :func:`cores_by_kind`)."""
    seen: dict[int, tuple[str, float]] = {}
    for kind, process in profile_processes(runtime_dir, extra_pids):
        try:
            times = process.cpu_times()
            seen[process.pid] = (kind, times.user + times.system)
        except psutil.Error:
            continue
    return seen


def cores_by_kind(
    before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]], seconds: float
) -> dict[str, float]:
    """Average cores per kind between two :func:`cpu_seconds` snapshots ``seconds`` apart. A process
    started in between counts from zero; one that ended in between is not counted (a lower bound)."""
    cores: dict[str, float] = {}
    for pid, (kind, used) in after.items():
        start = before.get(pid, (kind, 0.0))[1]
        cores[kind] = cores.get(kind, 0.0) + max(0.0, used - start) / seconds
    return cores
