"""Stop the streaming job mid-stream N times in a row: every stop must be clean, with no JVM crash.

The previous core once segfaulted inside RocksDB's native iterator when a query was stopped under
a running Python worker. Now the windows query keeps its state in the HDFS-backed store and every
query is stopped between micro-batches. This script keeps a real-time replay of a few walks
flowing through the bridge, then N times: starts ``spark-submit.sh`` on one checkpoint, waits
until both queries have run a batch, SIGTERMs it at a random moment, and checks the exit status,
the log and the JVM crash files (``-XX:ErrorFile`` under the runtime log folder).

Last line: ``stops: N, clean exits: C, JVM crash logs: K``.
Run (stack up): var/venv/bin/python bench/stop_cycles.py [--cycles 20] [--walks 10]
"""

from __future__ import annotations

import argparse
import random
import signal
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bridge import replay  # noqa: E402
from gaitstream import config as gs_config  # noqa: E402
from gaitstream import gaitpdb, heartbeats  # noqa: E402
from tests.integration.pipeline import BridgeProcess, drop_keyspace, isolated_config  # noqa: E402
from tests.integration.test_streaming import JobProcess, job_env  # noqa: E402


def crash_logs(cfg) -> set[Path]:
    return set((cfg.runtime_dir / "log").glob("*hs_err*"))


def running_batches(cfg) -> bool:
    try:
        current = heartbeats.streaming(cfg).read() or {}
    except Exception:
        return False
    queries = current.get("queries") or []
    return len(queries) == 2 and all(q.get("batch_id") is not None and q["batch_id"] >= 1 for q in queries)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--walks", type=int, default=10, help="walks streaming at real time meanwhile")
    args = parser.parse_args()
    cfg, env = isolated_config()
    tmp = Path(tempfile.mkdtemp(prefix="gs-stops-"))
    run_env = job_env(env, tmp, f"stops{uuid.uuid4().hex[:6]}", GAITSTREAM_STREAMING_ARCHIVE_TRIGGER_SECONDS="2")
    run_cfg = gs_config.load(env=run_env)
    before = crash_logs(cfg)
    bridge = BridgeProcess(run_env, tmp / "bridge.log").start()
    stop_replay = threading.Event()
    refs = replay.select_walks(gaitpdb.list_walks(cfg.path("data.gaitpdb_dir"))[0], one_per_subject=True)
    rounds = [0]

    def keep_streaming():
        while not stop_replay.is_set():
            renamed = [
                gaitpdb.WalkRef(f"{r.walk_id}s{rounds[0]}", r.subject_id, r.study, r.path) for r in refs[: args.walks]
            ]
            replay.replay(
                cfg,
                renamed,
                speed=1.0,
                batch_size=10,
                data_dir=cfg.path("data.gaitpdb_dir"),
                progress=False,
                stop=stop_replay,
            )
            rounds[0] += 1

    feeder = threading.Thread(target=keep_streaming, daemon=True)
    feeder.start()
    clean = 0
    job = None
    try:
        for cycle in range(1, args.cycles + 1):
            run_cfg.path("streaming.status_file").unlink(missing_ok=True)
            job = JobProcess(run_env, tmp / f"job-{cycle}.log")
            deadline = time.monotonic() + 300
            while not running_batches(run_cfg):
                if not job.alive() or time.monotonic() > deadline:
                    print(f"cycle {cycle}: job did not start:\n{job.log()[-2000:]}")
                    break
                time.sleep(0.5)
            time.sleep(random.uniform(0, 3))  # anywhere in a trigger interval, batches in flight
            job.proc.send_signal(signal.SIGTERM)
            started = time.monotonic()
            code = job.proc.wait(180)
            log = job.log()
            ok = code == 0 and "SIGSEGV" not in log and "A fatal error has been detected" not in log
            clean += ok
            print(
                f"cycle {cycle:>2}: exit {code} {time.monotonic() - started:.1f} s after SIGTERM, "
                f"{'clean' if ok else 'NOT clean'}",
                flush=True,
            )
    finally:
        if job is not None and job.alive():
            job.kill_everything()
        stop_replay.set()
        feeder.join(60)
        bridge.stop()
        drop_keyspace(run_cfg, run_cfg.cassandra.keyspace)
    crashes = crash_logs(cfg) - before
    for path in sorted(crashes):
        print(f"JVM crash log: {path}")
    print(f"stops: {args.cycles}, clean exits: {clean}, JVM crash logs: {len(crashes)}")
    return 0 if clean == args.cycles and not crashes else 1


if __name__ == "__main__":
    sys.exit(main())
