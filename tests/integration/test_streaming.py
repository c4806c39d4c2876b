"""The streaming job on the real stack: replay → bridge → Kafka → spark-submit.sh → Cassandra + HDFS.

One job process for the main run (windows, features, archive, dead letters, SIGTERM), two more
for the fault run (kill -9 of the driver mid-stream, restart from the checkpoint), which must
leave the windows and features tables identical to the fault-free run.
"""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from pathlib import Path

import numpy as np
import psutil
import pytest

from bridge import payload, replay
from gaitstream import clients, endpoints, gaitpdb, heartbeats
from gaitstream.clients import hdfs as hdfs_client
from model import features
from streaming import job
from tests.integration.pipeline import REPO_ROOT, isolated_config, read_topic, replay_into_kafka

pytestmark = pytest.mark.integration

# Lengths 8700 (whole windows only), 4803, 5505 and 12119 samples.
WALKS = ("JuPt28_05", "JuPt03_05", "JuPt02_01", "SiCo01_01")
IDLE_TIMEOUT_S = 5
_BASELINE: dict = {}  # the fault-free run's tables, compared by the fault test
_CREATED: list[tuple[str, str]] = []  # (keyspace, HDFS folder) of each job run, removed at the end


def job_env(base_env: dict[str, str], tmp: Path, tag: str, **extra: str) -> dict[str, str]:
    """One job's isolated keyspace, HDFS paths, checkpoints and status file."""
    _CREATED.append((f"t_stream_{tag}", f"/test/streaming/{tag}"))
    return {
        **base_env,
        "GAITSTREAM_CASSANDRA_KEYSPACE": f"t_stream_{tag}",
        "GAITSTREAM_HDFS_ARCHIVE_PATH": f"/test/streaming/{tag}/raw",
        "GAITSTREAM_STREAMING_DEADLETTER_PATH": f"/test/streaming/{tag}/deadletter",
        "GAITSTREAM_SPARK_CHECKPOINT_DIR": str(tmp / f"checkpoints-{tag}"),
        "GAITSTREAM_STREAMING_STATUS_FILE": str(tmp / f"status-{tag}.json"),
        "GAITSTREAM_STREAMING_IDLE_TIMEOUT_SECONDS": str(IDLE_TIMEOUT_S),
        "GAITSTREAM_STREAMING_STATUS_INTERVAL_SECONDS": "1",
        "GAITSTREAM_SPARK_UI_PORT": "0",
        **extra,
    }


class JobProcess:
    """``spark-submit.sh`` as a subprocess in its own session (so a kill reaches every process)."""

    def __init__(self, env: dict[str, str], log_path: Path):
        self.env, self.log_path = env, log_path
        log = open(log_path, "ab")
        self.proc = subprocess.Popen(
            [str(REPO_ROOT / "spark-submit.sh")],
            env=env,
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill_everything(self) -> None:
        """kill -9 the wrapper, spark-submit's JVM and the Python driver at once (a crash)."""
        tree = [psutil.Process(self.proc.pid)]
        tree += tree[0].children(recursive=True)
        for process in tree:
            try:
                process.kill()
            except psutil.NoSuchProcess:
                pass
        self.proc.wait(30)


def expected_windows(folder: Path) -> dict[str, list[dict]]:
    refs = {ref.walk_id: ref for ref in gaitpdb.list_walks(folder)[0]}
    out = {}
    for walk_id in WALKS:
        walk = gaitpdb.read_walk(refs[walk_id])
        out[walk_id] = features.window_means(np.arange(len(walk)), walk.forces)
    return out


def assert_windows_are_offline(windows, expected: dict[str, list[dict]]) -> None:
    """Every stored window equals numpy on the source file (counts, bounds, means to 1e-6)."""
    by_key = {(w.walk_id, w.window_index): w for w in windows}
    assert len(by_key) == sum(len(rows) for rows in expected.values())
    for walk_id, rows in expected.items():
        for e in rows:
            got = by_key[(walk_id, e["window_index"])]
            assert (got.sample_count, got.partial, got.first_seq, got.last_seq) == (
                e["sample_count"],
                e["partial"],
                e["first_seq"],
                e["last_seq"],
            )
            for channel in gaitpdb.FORCE_CHANNELS:
                assert getattr(got, channel) == pytest.approx(e[channel], abs=1e-6), (walk_id, e["window_index"])
        assert by_key[(walk_id, 0)].sample_count == 100


def assert_features_are_offline(cfg, walk_features, per_walk: dict[str, int]) -> None:
    """Each walk's final features equal ``gait_features`` on the whole file, to 1e-9."""
    finals = {f.walk_id: f for f in walk_features}
    assert set(finals) == set(WALKS) and all(
        f.final and f.feature_version == features.FEATURE_VERSION for f in finals.values()
    )
    refs = {ref.walk_id: ref for ref in gaitpdb.list_walks(cfg.path("data.gaitpdb_dir"))[0]}
    for walk_id, row in finals.items():
        assert row.samples == per_walk[walk_id]
        assert row.features["cadence"] > 0 and "stride_time_mean_l" in row.features
        walk = gaitpdb.read_walk(refs[walk_id])  # the streamed features are the offline ones
        offline = {k: v for k, v in features.gait_features(walk.time, walk.forces).items() if np.isfinite(v)}
        assert set(row.features) == set(offline)
        for name, value in offline.items():
            assert row.features[name] == pytest.approx(value, rel=1e-9, abs=1e-9), (walk_id, name)


def cassandra_rows(cfg, keyspace: str):
    cluster, session = clients.cassandra(cfg)
    try:
        windows = list(session.execute(f"SELECT * FROM {keyspace}.windows", timeout=30))
        walk_features = list(session.execute(f"SELECT * FROM {keyspace}.walk_features", timeout=30))
    finally:
        cluster.shutdown()
    return windows, walk_features


def window_counts(expected: dict[str, list[dict]]) -> dict[tuple[str, int], int]:
    return {(walk_id, e["window_index"]): e["sample_count"] for walk_id, rows in expected.items() for e in rows}


def wait_for_tables(
    cfg,
    keyspace: str,
    counts: dict[tuple[str, int], int],
    per_walk: dict[str, int],
    job_process: JobProcess,
    timeout: float = 420,
):
    """Poll Cassandra until every window holds its expected count and each walk has final features."""
    deadline = time.monotonic() + timeout
    windows, walk_features = [], []
    while time.monotonic() < deadline:
        assert job_process.alive(), f"job exited:\n{job_process.log()[-4000:]}"
        try:
            windows, walk_features = cassandra_rows(cfg, keyspace)
        except Exception:  # keyspace not created yet
            pass
        if {(w.walk_id, w.window_index): w.sample_count for w in windows} == counts and {
            f.walk_id: f.samples for f in walk_features if f.final
        } == per_walk:
            return windows, walk_features
        time.sleep(2)
    pytest.fail(
        f"{len(windows)}/{len(counts)} windows, {len(walk_features)} feature rows after {timeout}s:\n"
        f"{job_process.log()[-4000:]}"
    )


def wait_for_archive(reader, uri: str, total: int, job_process: JobProcess, timeout: float = 180) -> None:
    """The archive has its own, longer trigger: poll it (readers see only committed files) until complete."""
    deadline, count = time.monotonic() + timeout, 0
    while time.monotonic() < deadline:
        assert job_process.alive(), f"job exited:\n{job_process.log()[-4000:]}"
        try:
            count = reader.read.parquet(uri).count()
        except Exception:  # nothing committed yet
            count = 0
        if count >= total:
            return
        time.sleep(2)
    pytest.fail(f"archive holds {count}/{total} samples after {timeout}s")


@pytest.fixture(scope="module")
def topic(stack, tmp_path_factory):
    """The chosen walks replayed into a fresh Kafka topic, plus one duplicate and one garbage record."""
    tmp = tmp_path_factory.mktemp("streaming")
    cfg, env = isolated_config()
    folder = cfg.path("data.gaitpdb_dir")
    refs = replay.select_walks(gaitpdb.list_walks(folder)[0], walks=WALKS)
    report = replay_into_kafka(cfg, env, refs, folder, tmp / "bridge.log", timeout=240)
    # Kafka may hold a record twice (at-least-once bridge): resend the first one, byte for byte.
    first = read_topic(cfg, cfg.kafka.samples_topic, until=lambda c: c.records >= 1, decode_samples=False)
    producer = clients.kafka_producer(cfg)
    resent = payload.validate(first.values[0], max_bytes=1 << 20, max_samples=10_000)
    producer.send(cfg.kafka.samples_topic, first.values[0], key=payload.kafka_key(resent))
    producer.send(cfg.kafka.samples_topic, b"definitely not json", key=b"garbage")
    producer.flush()
    producer.close()
    yield cfg, env, tmp, report
    cluster, session = clients.cassandra(cfg)
    try:
        for keyspace, folder in _CREATED:
            session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=60)
            hdfs_client(cfg).delete(folder, recursive=True)
    finally:
        cluster.shutdown()


def test_windows_features_archive_and_dead_letters(stack, topic, spark_reader):
    cfg, env, tmp, report = topic
    assert sorted(report.per_walk) == sorted(WALKS)
    expected = expected_windows(cfg.path("data.gaitpdb_dir"))
    for walk_id, rows in expected.items():
        n = report.per_walk[walk_id]
        assert len(rows) == n // 100 + (1 if n % 100 else 0)
    tag = uuid.uuid4().hex[:8]
    run_env = job_env(env, tmp, tag)
    run_cfg = job.gs_config.load(env=run_env)
    started = time.monotonic()
    process = JobProcess(run_env, tmp / f"job-{tag}.log")
    counts = window_counts(expected)
    windows, walk_features = wait_for_tables(cfg, run_cfg.cassandra.keyspace, counts, report.per_walk, process)
    print(f"all {len(counts)} windows in Cassandra {time.monotonic() - started:.0f}s after spark-submit")

    assert_windows_are_offline(windows, expected)
    assert_features_are_offline(cfg, walk_features, report.per_walk)

    # Monitoring: the status file names the two queries and their progress (the archive starts after
    # the windows query's first batch, on its own longer trigger: wait for its first batch).
    deadline = time.monotonic() + 120
    while True:
        current = heartbeats.streaming(run_cfg).read()
        if all(q["active"] and q["batch_id"] is not None for q in current["queries"]) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert current["state"] == "running" and current["ui_url"]
    assert {q["name"] for q in current["queries"]} == {"archive", "windows"}
    assert all(q["active"] and q["batch_id"] is not None for q in current["queries"]), current["queries"]

    # SIGTERM: queries stopped cleanly, exit 0.
    wait_for_archive(spark_reader, endpoints.archive_uri(run_cfg), sum(report.per_walk.values()), process)
    process.proc.send_signal(signal.SIGTERM)
    assert process.proc.wait(120) == 0, process.log()[-4000:]
    assert "query windows stopped" in process.log()
    assert heartbeats.streaming(run_cfg).read()["state"] == "stopped"

    archive = spark_reader.read.parquet(endpoints.archive_uri(run_cfg))
    total = sum(report.per_walk.values())
    assert archive.count() == total
    assert archive.select("walk_id", "seq").distinct().count() == total
    assert set(archive.columns) >= {"study", "date", "walk_id", "seq", "time", "total_l"}
    dead = spark_reader.read.parquet(endpoints.deadletter_uri(run_cfg)).collect()
    assert [d.value for d in dead] == ["definitely not json"] and dead[0].reason.startswith("bad JSON")
    _BASELINE.update(windows=windows, walk_features=walk_features, counts=counts)


@pytest.mark.slow
def test_kill_9_mid_stream_then_restart_ends_identical(stack, topic, spark_reader):
    """Stands alone (compares with the offline computation); run after the fault-free test it also
    compares the two jobs' tables row for row."""
    cfg, env, tmp, report = topic
    expected = expected_windows(cfg.path("data.gaitpdb_dir"))
    counts = window_counts(expected)
    tag = uuid.uuid4().hex[:8]
    # Small micro-batches so the job is killed with part of the stream processed.
    run_env = job_env(env, tmp, tag, GAITSTREAM_STREAMING_MAX_OFFSETS_PER_TRIGGER="150")
    run_cfg = job.gs_config.load(env=run_env)
    keyspace = run_cfg.cassandra.keyspace
    first = JobProcess(run_env, tmp / f"job-{tag}-1.log")
    deadline = time.monotonic() + 300
    while True:
        assert first.alive() and time.monotonic() < deadline, first.log()[-4000:]
        try:
            windows, _ = cassandra_rows(cfg, keyspace)
        except Exception:
            windows = []
        if len(windows) >= 20:
            break
        time.sleep(1)
    assert len(windows) < len(counts), "stream finished before the kill: make batches smaller"
    first.kill_everything()
    second = JobProcess(run_env, tmp / f"job-{tag}-2.log")
    try:
        windows, walk_features = wait_for_tables(cfg, keyspace, counts, report.per_walk, second)
        wait_for_archive(spark_reader, endpoints.archive_uri(run_cfg), sum(report.per_walk.values()), second)
    except BaseException:  # a failed wait must not leave the job running under the next tests
        if second.alive():
            second.kill_everything()
        raise
    second.proc.send_signal(signal.SIGTERM)
    assert second.proc.wait(120) == 0, second.log()[-4000:]

    def comparable_windows(rows):
        return sorted(tuple((k, v) for k, v in row._asdict().items() if k != "max_sent_at_ms") for row in rows)

    def comparable_features(rows):
        return sorted(
            (r.subject_id, r.walk_id, r.study, r.samples, r.final, r.feature_version, tuple(sorted(r.features.items())))
            for r in rows
        )

    assert_windows_are_offline(windows, expected)
    assert_features_are_offline(cfg, walk_features, report.per_walk)
    if _BASELINE:  # the fault-free run of this session: identical tables
        assert comparable_windows(windows) == comparable_windows(_BASELINE["windows"])
        assert comparable_features(walk_features) == comparable_features(_BASELINE["walk_features"])
    archive = spark_reader.read.parquet(endpoints.archive_uri(run_cfg))
    total = sum(report.per_walk.values())
    assert archive.count() == total and archive.select("walk_id", "seq").distinct().count() == total
