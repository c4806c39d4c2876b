"""End-to-end benchmark: replay → Mosquitto → bridge → Kafka → streaming job → Cassandra.

Prints, in one run:
1. backfill: samples/s from the first publish until Cassandra holds every window of the replayed
   walks (all 280 walks, ~3.0M samples, by default), as fast as the pipeline takes it;
2. real time: the cohort of one walk per subject (159 walks at 100 Hz = 15.9k samples/s) for a
   bounded duration, p50/p95 latency from publish (window's newest ``sent_at_ms``) to the window
   row being written in Cassandra (``WRITETIME``);
3. peak resident memory of each process (services, bridge, Spark JVM and Python driver).
Targets (issue 5/8): real time with p95 < 3 s; backfill of ~3.0M samples in < 60 s.

Needs the stack up. Each phase uses its own Kafka topic, keyspace and checkpoint.
    var/venv/bin/python bench/e2e.py [--walks 280] [--realtime-seconds 60]
"""
from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bridge import replay  # noqa: E402
from gaitstream import config as gs_config  # noqa: E402
from gaitstream import gaitpdb  # noqa: E402
from gaitstream.health.cassandra import connect  # noqa: E402
from streaming import schema  # noqa: E402
from tests.integration.pipeline import BridgeProcess, drop_keyspace, isolated_config  # noqa: E402
from tests.integration.test_streaming import JobProcess, job_env  # noqa: E402


class PeakMemory(threading.Thread):
    """Samples the RSS of named process trees every second; keeps each one's peak (MiB)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.roots: dict[str, int] = {}
        self.peak: dict[str, float] = {}
        self.stop = threading.Event()

    def run(self):
        while not self.stop.wait(1.0):
            for name, pid in list(self.roots.items()):
                try:
                    root = psutil.Process(pid)
                    procs = [root] + root.children(recursive=True)
                    rss = sum(p.memory_info().rss for p in procs if p.is_running()) / 2**20
                except psutil.Error:
                    continue
                self.peak[name] = max(self.peak.get(name, 0.0), rss)


def start_pipeline(tmp: Path, memory: PeakMemory, label: str):
    cfg, env = isolated_config()
    run_env = job_env(env, tmp, f"bench{label}{uuid.uuid4().hex[:6]}",
                      GAITSTREAM_STREAMING_IDLE_TIMEOUT_SECONDS="10")
    run_cfg = gs_config.load(env=run_env)
    schema.create(run_cfg)
    job = JobProcess(run_env, tmp / f"job-{label}.log")
    deadline = time.monotonic() + 300
    while not run_cfg.path("streaming.status_file").exists():
        assert job.alive() and time.monotonic() < deadline, job.log()[-3000:]
        time.sleep(1)
    bridge = BridgeProcess(run_env, tmp / f"bridge-{label}.log").start()
    memory.roots.update({"bridge": bridge.proc.pid, "streaming job (JVM + Python)": job.proc.pid})
    return cfg, run_cfg, job, bridge


def stop_pipeline(run_cfg, job, bridge):
    job.proc.send_signal(signal.SIGTERM)
    job.proc.wait(120)
    bridge.stop()
    drop_keyspace(run_cfg, run_cfg.cassandra["keyspace"])


def count_windows(session, keyspace: str, walks) -> int:
    statement = session.prepare(f"SELECT COUNT(*) FROM {keyspace}.windows WHERE subject_id = ? AND walk_id = ?")
    return sum(session.execute(statement, (w.subject_id, w.walk_id)).one()[0] for w in walks)


def backfill(tmp, memory, refs, folder) -> tuple[int, float]:
    cfg, run_cfg, job, bridge = start_pipeline(tmp, memory, "backfill")
    try:
        window = int(run_cfg.streaming["window_size"])
        t0 = time.monotonic()
        report = replay.replay(cfg, refs, speed=0, batch_size=50, data_dir=folder, progress=True)
        full = sum(n // window for n in report.per_walk.values())
        cluster, session = connect(run_cfg, request_timeout=60)
        try:
            while count_windows(session, run_cfg.cassandra["keyspace"], refs) < full:
                assert job.alive(), job.log()[-3000:]
                time.sleep(2)
        finally:
            cluster.shutdown()
        return report.samples, time.monotonic() - t0
    finally:
        stop_pipeline(run_cfg, job, bridge)


def realtime(tmp, memory, refs, folder, seconds: float) -> tuple[np.ndarray, float]:
    cfg, run_cfg, job, bridge = start_pipeline(tmp, memory, "realtime")
    try:
        stop = threading.Event()
        threading.Timer(seconds, stop.set).start()
        report = replay.replay(cfg, refs, speed=1.0, batch_size=10, data_dir=folder, progress=False, stop=stop)
        time.sleep(10)  # the last complete windows reach Cassandra
        cluster, session = connect(run_cfg, request_timeout=60)
        try:
            statement = session.prepare(
                f"SELECT max_sent_at_ms, WRITETIME(total_l) AS written_us, partial FROM "
                f"{run_cfg.cassandra['keyspace']}.windows WHERE subject_id = ? AND walk_id = ?")
            latencies = [row.written_us / 1000 - row.max_sent_at_ms
                         for w in refs for row in session.execute(statement, (w.subject_id, w.walk_id))
                         if not row.partial]
        finally:
            cluster.shutdown()
        return np.asarray(latencies), report.samples / report.seconds
    finally:
        stop_pipeline(run_cfg, job, bridge)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--walks", type=int, default=280, help="walks for the backfill (all by default)")
    parser.add_argument("--realtime-seconds", type=float, default=60)
    args = parser.parse_args()
    cfg = gs_config.load()
    folder = cfg.path("data.gaitpdb_dir")
    refs = gaitpdb.list_walks(folder)[0]
    tmp = Path(tempfile.mkdtemp(prefix="gs-e2e-"))
    memory = PeakMemory()
    for service in ("mosquitto", "kafka", "cassandra", "hdfs", "ferretdb"):
        pidfile = cfg.runtime_dir / "run" / f"{service}.pid"
        if pidfile.exists():
            memory.roots[service] = int(pidfile.read_text())
    memory.start()
    samples, seconds = backfill(tmp, memory, refs[: args.walks], folder)
    cohort = replay.select_walks(refs, one_per_subject=True)
    latencies, sent_rate = realtime(tmp, memory, cohort, folder, args.realtime_seconds)
    memory.stop.set()
    print("\n| measurement | result | target |\n|---|---|---|")
    print(f"| backfill, {args.walks} walks, batch 50 | {samples:,} samples in {seconds:.0f}s = "
          f"{samples / seconds:,.0f} samples/s end to end | ~3.0M in < 60 s |")
    print(f"| real time, {len(cohort)} walks, {args.realtime_seconds:.0f}s | sent {sent_rate:,.0f} samples/s; "
          f"publish→Cassandra p50 {np.percentile(latencies, 50) / 1000:.2f}s, p95 {np.percentile(latencies, 95) / 1000:.2f}s "
          f"({len(latencies)} windows) | 15.9k samples/s, p95 < 3 s |")
    for name, peak in sorted(memory.peak.items()):
        print(f"| peak RSS: {name} | {peak:,.0f} MiB | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
