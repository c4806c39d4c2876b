"""End-to-end benchmark: replay → Mosquitto → bridge → Kafka → streaming job → Cassandra.

Prints, in one run, beside the previous streaming core's figures (commit 9f0b9fe, same bench):
1. backfill: samples/s from the first publish until Cassandra holds every window of the replayed
   walks (all 280 walks, ~3.0M samples, by default), as fast as the pipeline takes it;
2. real time: the cohort of one walk per subject (159 walks at 100 Hz = 15.9k samples/s, batch
   10), each walk replayed again as soon as it ends (each round renamed ``…r<k>``) for
   ``--realtime-seconds`` (10 minutes by default) after ``--warmup-seconds`` of the same load
   that is not measured, prolonged until the job has caught up with it (a new job's first
   micro-batches start its Python workers, JIT-compile and open the Cassandra connector's session,
   and leave a backlog: a running job has done that long ago); p50/p95/p99
   latency from publish (a window's newest ``sent_at_ms``) to its row being written in Cassandra
   (``WRITETIME``);
3. every process's resident memory sampled every 30 s during the real-time phase: peak and slope
   (MiB/min, least squares) over the whole phase and over its second half (a JVM heap growing
   towards -Xmx and the archive's dedupe state filling its window are start-up, not leaks).
Targets (streaming-core issue): backfill < 90 s; real time p95 < 3 s and p99 < 5 s; no upward trend.

Needs the stack up. Each phase uses its own Kafka topic, keyspace and checkpoint.
    var/venv/bin/python bench/e2e.py [--walks 280] [--realtime-seconds 600]

``--profile cluster`` measures the running cluster-local profile instead (``stack/up --profile
cluster``: 3 Kafka brokers, 3 Cassandra nodes at LOCAL_QUORUM, 2 bridges, the job on YARN with 2
executors): the same two phases through its own bridges and job, into its keyspace, the walks renamed
with a run tag so they are new to it; memory is the profile's every process, by kind. Its figures
are printed beside the last single-node run's on this machine (each run saves its figures in
``<runtime.dir>/bench/e2e.json``), then the per-core costs a sizing estimate starts from.
"""

from __future__ import annotations

import argparse
import json
import os
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
from gaitstream import (
    clients,  # noqa: E402
    footprint,  # noqa: E402
    gaitpdb,  # noqa: E402
)
from gaitstream import config as gs_config  # noqa: E402
from streaming import schema  # noqa: E402
from tests.integration.pipeline import BridgeProcess, drop_keyspace, isolated_config  # noqa: E402
from tests.integration.test_streaming import JobProcess, job_env  # noqa: E402


class MemorySampler(threading.Thread):
    """Samples the RSS of named process trees every ``interval`` seconds (MiB), keeping the series."""

    def __init__(self, interval: float = 30.0):
        super().__init__(daemon=True)
        self.interval = interval
        self.roots: dict[str, int] = {}
        self.series: dict[str, list[tuple[float, float]]] = {}
        self.stop = threading.Event()

    @staticmethod
    def tree_rss(pid: int) -> float:
        root = psutil.Process(pid)
        total = 0
        for process in [root] + root.children(recursive=True):
            try:
                total += process.memory_info().rss
            except psutil.Error:  # ended between the listing and the reading
                continue
        return total / 2**20

    def sample(self) -> None:
        """Each tree's RSS, the smaller of two readings a second apart. The job's JVM spawns ~9
        children a second (chmod and readlink: Hadoop's local file system, without its native
        library, under the checkpoints), and a child shares the JVM's memory until it execs: a
        reading that caught one counted the JVM twice (one 10-minute run: a 3.8 GiB "peak" for a
        2.3 GiB job, +187 MiB/min over its second half)."""
        now = time.monotonic()
        first = self.readings()
        time.sleep(1.0)
        for name, rss in self.readings().items():
            if name in first:
                self.series.setdefault(name, []).append((now, min(first[name], rss)))

    def readings(self) -> dict[str, float]:
        """Every tree's RSS now (MiB); a tree whose root has gone is left out."""
        out = {}
        for name, pid in list(self.roots.items()):
            try:
                out[name] = self.tree_rss(pid)
            except psutil.Error:
                continue
        return out

    def run(self):
        self.sample()
        while not self.stop.wait(self.interval):
            self.sample()

    def report(self) -> list[tuple[str, float, float, float]]:
        """(name, peak MiB, slope MiB/min, slope over the second half MiB/min) per process. A JVM's
        heap grows towards its -Xmx and a dedupe state fills its window during the first minutes:
        the second half tells that warm-up from a leak."""

        def slope(t: np.ndarray, rss: np.ndarray) -> float:
            return float(np.polyfit((t - t[0]) / 60, rss, 1)[0]) if len(t) >= 3 else float("nan")

        out = []
        for name, points in sorted(self.series.items()):
            t, rss = np.array(points).T
            half = len(t) // 2
            out.append((name, float(rss.max()), slope(t, rss), slope(t[half:], rss[half:])))
        return out


class ProfileMemory(MemorySampler):
    """RSS of every process of a running profile (:func:`gaitstream.footprint.rss_by_kind`), per
    kind and in total."""

    def __init__(self, runtime_dir: Path, interval: float = 30.0):
        super().__init__(interval)
        self.runtime_dir = runtime_dir

    def sample(self) -> None:
        now, totals = time.monotonic(), footprint.rss_by_kind(self.runtime_dir)
        totals["whole profile"] = sum(totals.values())
        for kind, rss in totals.items():
            self.series.setdefault(kind, []).append((now, rss))


class CpuMeter:
    """Cores used per kind of process over one phase (:func:`gaitstream.footprint.cpu_seconds`
    snapshots): the profile's processes, the ones the bench started (``memory.roots``), and this
    process, the replay, on a line of its own (the load generator, not part of a deployment)."""

    LOAD_GENERATOR = "replay (load generator)"

    def __init__(self, runtime_dir: Path, memory: MemorySampler):
        self.runtime_dir, self.memory = runtime_dir, memory
        self.started, self.before = 0.0, dict[int, tuple[str, float]]()

    def _snapshot(self) -> dict[int, tuple[str, float]]:
        pids = (*self.memory.roots.values(), os.getpid())
        snapshot = footprint.cpu_seconds(self.runtime_dir, pids)
        if os.getpid() in snapshot:
            snapshot[os.getpid()] = (self.LOAD_GENERATOR, snapshot[os.getpid()][1])
        return snapshot

    def start(self) -> None:
        self.started, self.before = time.monotonic(), self._snapshot()

    def stop(self) -> dict[str, float]:
        return footprint.cores_by_kind(self.before, self._snapshot(), time.monotonic() - self.started)


class RunningPipeline:
    """A deployment that is already up (the cluster profile): its bridges, its job, its keyspace.
    Nothing is started or stopped; a phase's walks carry a run tag, so they are new to it."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.tag = uuid.uuid4().hex[:4]
        status = cfg.path("streaming.status_file")
        if not status.exists():
            raise SystemExit(f"no streaming job status at {status}: start the profile (stack/up --profile cluster)")

    def start(self, tmp: Path, memory: MemorySampler, label: str):
        return self.cfg, self.cfg, None, None

    def stop(self, run_cfg, job, bridge) -> None:
        pass

    def walks(self, refs, round_no: int | str):
        return renamed(refs, f"{self.tag}{round_no}")


class OwnPipeline:
    """A bridge and a job of its own per phase, on isolated topics and keyspace (the dev stack)."""

    def start(self, tmp: Path, memory: MemorySampler, label: str):
        return start_pipeline(tmp, memory, label)

    def stop(self, run_cfg, job, bridge) -> None:
        stop_pipeline(run_cfg, job, bridge)

    def walks(self, refs, round_no: int | str):
        return renamed(refs, round_no) if round_no else list(refs)


def start_pipeline(tmp: Path, memory: MemorySampler, label: str):
    cfg, env = isolated_config()
    run_env = job_env(env, tmp, f"bench{label}{uuid.uuid4().hex[:6]}", GAITSTREAM_STREAMING_IDLE_TIMEOUT_SECONDS="10")
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
    drop_keyspace(run_cfg, run_cfg.cassandra.keyspace)


def count_windows(session, keyspace: str, walks) -> int:
    statement = session.prepare(f"SELECT COUNT(*) FROM {keyspace}.windows WHERE subject_id = ? AND walk_id = ?")
    return sum(session.execute(statement, (w.subject_id, w.walk_id)).one()[0] for w in walks)


def backfill(pipeline, tmp, memory, cpu: CpuMeter, refs, folder) -> tuple[int, float, dict[str, float]]:
    cfg, run_cfg, job, bridge = pipeline.start(tmp, memory, "backfill")
    refs = pipeline.walks(refs, 0)
    try:
        window = run_cfg.streaming.window_size
        t0 = time.monotonic()
        cpu.start()
        report = replay.replay(cfg, refs, speed=0, batch_size=50, data_dir=folder, progress=True)
        full = sum(n // window for n in report.per_walk.values())
        cluster, session = clients.cassandra(run_cfg, request_timeout=60)
        try:
            while count_windows(session, run_cfg.cassandra.keyspace, refs) < full:
                assert job is None or job.alive(), job.log()[-3000:]
                time.sleep(2)
        finally:
            cluster.shutdown()
        return report.samples, time.monotonic() - t0, cpu.stop()
    finally:
        pipeline.stop(run_cfg, job, bridge)


def renamed(refs, round_no: int | str):
    """The same walks under new ids (``GaCo01_01r2``): a new round is new walks to the pipeline."""
    return [
        gaitpdb.WalkRef(walk_id=f"{r.walk_id}r{round_no}", subject_id=r.subject_id, study=r.study, path=r.path)
        for r in refs
    ]


REPLAY_BATCH = 10  # samples per MQTT message in the real-time phase


def stream_continuously(pipeline, cfg, refs, folder, stop: threading.Event, tag: str) -> tuple[int, list, int]:
    """Each walk of ``refs`` streamed at 100 Hz, again and again as soon as it ends (round k renamed
    ``…r<tag><k>``) until ``stop``, so the cohort stays whole (a round of walks replayed together
    would thin out as its shorter walks end). Returns samples sent, the walks played, rounds."""
    played: list = []
    origin: dict[str, tuple] = {}  # a played walk's id → (the data set's walk, its round)

    def named(ref, round_no: int):
        new = pipeline.walks([ref], f"{tag}{round_no}" if tag else round_no)[0]
        origin[new.walk_id] = (ref, round_no)
        played.append(new)
        return new

    def again(walk: gaitpdb.Walk) -> gaitpdb.Walk:
        ref, round_no = origin[walk.ref.walk_id]
        return gaitpdb.Walk(named(ref, round_no + 1), walk.time, walk.forces)

    first = [named(ref, 1) for ref in refs]
    report = replay.replay(
        cfg, first, speed=1.0, batch_size=REPLAY_BATCH, data_dir=folder, progress=False, stop=stop, again=again
    )
    return report.samples, played, max(round_no for _, round_no in origin.values())


def windows_progress(run_cfg) -> dict | None:
    """The windows query's last progress in the job's status file (None until there is one)."""
    try:
        status = json.loads(run_cfg.path("streaming.status_file").read_text())
    except (OSError, ValueError):
        return None
    return next((q for q in status.get("queries", []) if q.get("name") == "windows"), None)


def wait_caught_up(run_cfg, done: threading.Event, min_s: float, rate: float, max_extra_s: float = 300.0) -> None:
    """Set ``done`` after ``min_s`` once the windows query has caught up with the load: three
    status readings in a row whose micro-batch held at most 4 s of records (a new job first works
    through the backlog its start-up left: JIT, Python workers, sessions). Gives up after
    ``max_extra_s`` more (said on stderr: the measured part then starts behind)."""
    started = time.monotonic()
    done.wait(min_s)
    streak, seen = 0, None
    while not done.is_set():
        progress = windows_progress(run_cfg)
        key = progress and (progress.get("run_id"), progress.get("batch_id"))
        if progress and key != seen:
            seen = key
            streak = streak + 1 if progress.get("num_input_rows", 0) <= 4 * rate else 0
            if streak >= 3:
                print(f"warm-up: caught up after {time.monotonic() - started:.0f} s", file=sys.stderr)
                break
        if time.monotonic() - started > min_s + max_extra_s:
            print(f"warm-up: not caught up after {time.monotonic() - started:.0f} s; measuring anyway", file=sys.stderr)
            break
        done.wait(1.0)
    done.set()


def realtime(
    pipeline, tmp, memory, cpu: CpuMeter, refs, folder, seconds: float, warmup_s: float = 0.0
) -> tuple[np.ndarray, float, int, dict[str, float], float]:
    """(latencies ms, sent samples/s, rounds, cores by kind, seconds the warm-up took)."""
    cfg, run_cfg, job, bridge = pipeline.start(tmp, memory, "realtime")
    warmed_s = 0.0
    try:
        if warmup_s > 0:  # the same load, not measured, until the job has caught up with it
            warm = threading.Event()
            rate = len(refs) * 100 / REPLAY_BATCH  # Kafka records per second
            waiter = threading.Thread(
                target=wait_caught_up, args=(run_cfg, warm, warmup_s, rate), name="warm-up", daemon=True
            )
            waiter.start()
            warm_started = time.monotonic()
            stream_continuously(pipeline, cfg, refs, folder, warm, "w")
            warmed_s = time.monotonic() - warm_started
        stop = threading.Event()
        threading.Timer(seconds, stop.set).start()
        memory.series.clear()
        memory.start()
        cpu.start()
        started = time.monotonic()
        samples, played, round_no = stream_continuously(pipeline, cfg, refs, folder, stop, "")
        sent_rate = samples / (time.monotonic() - started)
        cores = cpu.stop()
        memory.stop.set()
        time.sleep(10)  # the last complete windows reach Cassandra
        cluster, session = clients.cassandra(run_cfg, request_timeout=60)
        try:
            statement = session.prepare(
                f"SELECT max_sent_at_ms, WRITETIME(total_l) AS written_us, partial FROM "
                f"{run_cfg.cassandra.keyspace}.windows WHERE subject_id = ? AND walk_id = ?"
            )
            latencies = [
                row.written_us / 1000 - row.max_sent_at_ms
                for w in played
                for row in session.execute(statement, (w.subject_id, w.walk_id))
                if not row.partial
            ]
        finally:
            cluster.shutdown()
        return np.asarray(latencies), sent_rate, round_no, cores, warmed_s
    finally:
        pipeline.stop(run_cfg, job, bridge)


# "No upward trend": the second half's least-squares slope within this (sampling noise of a JVM's heap).
FLAT_MIB_PER_MIN = 5.0

# The previous streaming core (every sample in state), this bench at commit 9f0b9fe.
PREVIOUS = {"backfill": "3,001,585 in 226 s (13,300/s)", "latency": "p50 45 s, p95 51 s (60 s run)"}


def results_file(cfg) -> Path:
    return cfg.runtime_dir / "bench" / "e2e.json"


def single_node_results() -> dict | None:
    """The last single-node run's figures on this machine (the default profile's runtime folder)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GAITSTREAM_")}
    path = results_file(gs_config.load(gs_config.DEFAULT_FILE, env={**env, "GAITSTREAM_RUNTIME_SECRETS_FILE": ""}))
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def print_cluster_table(now: dict, single: dict | None) -> None:
    """The cluster profile's figures beside the single node's, then per-core costs."""

    def cell(r: dict | None, key: str) -> str:
        if not r:
            return "not measured (run bench/e2e.py on the default stack)"
        return {
            "backfill": lambda: (
                f"{r['samples']:,} in {r['backfill_s']:.0f} s ({r['samples'] / r['backfill_s']:,.0f}/s)"
            ),
            "latency": lambda: f"p50 {r['p50_s']:.2f} s, p95 {r['p95_s']:.2f} s, p99 {r['p99_s']:.2f} s",
            "memory": lambda: f"{r['peak_total_mib']:,.0f} MiB",
        }[key]()

    when = f" ({single['measured_at']}, {single['commit']})" if single else ""
    print(f"\n| measurement | single node{when} | cluster profile | \n|---|---|---|")
    print(f"| backfill, {now['walks']} walks, batch 50 | {cell(single, 'backfill')} | {cell(now, 'backfill')} |")
    print(f"| real time, {now['cohort']} walks at 100 Hz | {cell(single, 'latency')} | {cell(now, 'latency')} |")
    print(f"| peak resident memory, everything | {cell(single, 'memory')} | {cell(now, 'memory')} |")
    cores = os.cpu_count() or 1
    print(
        f"\nper-core cost on this machine ({cores} cores shared by every node and the job): "
        f"{now['samples'] / now['backfill_s'] / cores:,.0f} samples/s per core end to end (backfill); "
        f"real time needs {now['sent_rate'] / 100:,.0f} walks × 100 Hz = {now['sent_rate']:,.0f} samples/s"
    )


def print_cpu(now: dict) -> None:
    """Cores per kind of process in each phase, then the estimate a sizing table starts from."""
    cores = os.cpu_count() or 1
    kinds = sorted(
        set(now["backfill_cores"]) | set(now["realtime_cores"]), key=lambda k: -now["realtime_cores"].get(k, 0)
    )
    walks = now["sent_rate"] / 100  # walks actually streamed at 100 Hz (the replay may fall short of the cohort)
    print(
        f"\n| CPU, cores used (this machine: {cores}) | backfill | real time, {walks:.0f} walks streamed | "
        f"estimate per 1,000 walks at 100 Hz |\n|---|---|---|---|"
    )
    for kind in kinds:
        backfill_c, realtime_c = now["backfill_cores"].get(kind, 0.0), now["realtime_cores"].get(kind, 0.0)
        print(f"| {kind} | {backfill_c:.2f} | {realtime_c:.2f} | {realtime_c * 1000 / walks:.1f} |")
    deployed = [
        sum(v for k, v in now[phase].items() if k != CpuMeter.LOAD_GENERATOR)
        for phase in ("backfill_cores", "realtime_cores")
    ]
    print(
        f"| everything but the load generator | {deployed[0]:.2f} | {deployed[1]:.2f} "
        f"| {deployed[1] * 1000 / walks:.1f} |"
    )
    print(
        "(estimate = real-time cores × 1,000 / walks streamed (sent samples/s / 100), linear, ignoring fixed "
        "costs; a lower bound for any kind that was short of CPU, as the streaming job is here when its p95 "
        "misses the target)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--walks", type=int, default=280, help="walks for the backfill (all by default)")
    parser.add_argument("--realtime-seconds", type=float, default=600)
    parser.add_argument(
        "--warmup-seconds",
        type=float,
        default=60,
        help="real-time load before the measured part (not measured), at least this long and until the job has "
        "caught up with it (at most 300 s more)",
    )
    parser.add_argument("--skip-backfill", action="store_true", help="only the real-time part")
    parser.add_argument("--memory-interval", type=float, default=30.0, help="seconds between RSS samples")
    parser.add_argument(
        "--profile", choices=["cluster"], help="measure the running cluster-local profile (stack/up --profile cluster)"
    )
    args = parser.parse_args()
    if args.profile == "cluster":
        os.environ["GAITSTREAM_CONFIG"] = str(gs_config.REPO_ROOT / "conf" / "templates" / "cluster-local.toml")
    cfg = gs_config.load()
    folder = cfg.path("data.gaitpdb_dir")
    refs = gaitpdb.list_walks(folder)[0]
    tmp = Path(tempfile.mkdtemp(prefix="gs-e2e-"))
    if args.profile == "cluster":
        pipeline: RunningPipeline | OwnPipeline = RunningPipeline(cfg)
        memory: MemorySampler = ProfileMemory(cfg.runtime_dir, args.memory_interval)
    else:
        pipeline, memory = OwnPipeline(), MemorySampler(args.memory_interval)
        for service in ("mosquitto", "kafka", "cassandra", "hdfs", "ferretdb"):
            pidfile = cfg.runtime_dir / "run" / f"{service}.pid"
            if pidfile.exists():
                memory.roots[service] = int(pidfile.read_text())
    cpu = CpuMeter(cfg.runtime_dir, memory)
    samples, seconds, backfill_cores = (
        (0, float("nan"), {})
        if args.skip_backfill
        else backfill(pipeline, tmp, memory, cpu, refs[: args.walks], folder)
    )
    cohort = replay.select_walks(refs, one_per_subject=True)
    latencies, sent_rate, rounds, realtime_cores, warmed_s = realtime(
        pipeline, tmp, memory, cpu, cohort, folder, args.realtime_seconds, args.warmup_seconds
    )
    p50, p95, p99 = (np.percentile(latencies, q) / 1000 for q in (50, 95, 99))
    report = memory.report()
    peak_total = (
        max(row[1] for row in report if row[0] == "whole profile") if args.profile else sum(row[1] for row in report)
    )
    commit = os.popen(f"git -C {gs_config.REPO_ROOT} rev-parse --short HEAD 2>/dev/null").read().strip()
    now = {
        "profile": args.profile or "single node",
        "measured_at": time.strftime("%Y-%m-%d"),
        "commit": commit,
        "walks": args.walks,
        "samples": samples,
        "backfill_s": seconds,
        "cohort": len(cohort),
        "rounds": rounds,
        "sent_rate": sent_rate,
        "p50_s": p50,
        "p95_s": p95,
        "p99_s": p99,
        "windows": len(latencies),
        "peak_total_mib": peak_total,
        "backfill_cores": backfill_cores,
        "realtime_cores": realtime_cores,
    }
    results_file(cfg).parent.mkdir(parents=True, exist_ok=True)
    results_file(cfg).write_text(json.dumps(now, indent=1))
    if args.profile == "cluster":
        for name, peak, slope, late in report:
            print(f"RSS {name}: peak {peak:,.0f} MiB, slope {slope:+.2f} MiB/min, second half {late:+.2f} MiB/min")
        print_cluster_table(now, single_node_results())
        print_cpu(now)
        return 0
    print("\n| measurement | previous design | new design | target | met |\n|---|---|---|---|---|")
    print(
        f"| backfill, {args.walks} walks, batch 50 | {PREVIOUS['backfill']} | {samples:,} in {seconds:.0f} s "
        f"({samples / seconds:,.0f}/s) | < 90 s | {'met' if seconds < 90 else 'NOT met'} |"
    )
    print(
        f"| real time, {len(cohort)} walks × {rounds} rounds, {args.realtime_seconds:.0f} s, sent {sent_rate:,.0f} "
        f"samples/s, after {warmed_s:.0f} s of warm-up | {PREVIOUS['latency']} "
        f"| p50 {p50:.2f} s, p95 {p95:.2f} s, p99 {p99:.2f} s "
        f"({len(latencies):,} windows) | p95 < 3 s, p99 < 5 s | {'met' if p95 < 3 and p99 < 5 else 'NOT met'} |"
    )
    for name, peak, slope, late in report:
        print(
            f"| RSS {name} (every {args.memory_interval:.0f} s) | | peak {peak:,.0f} MiB, slope {slope:+.2f} MiB/min, "
            f"second half {late:+.2f} MiB/min | flat | {'met' if late <= FLAT_MIB_PER_MIN else 'NOT met'} |"
        )
    print_cpu(now)
    return 0


if __name__ == "__main__":
    sys.exit(main())
