"""Bad devices end to end (issue 12, "done when"): one device, over TLS with its own certificate,
sends a real walk through Mosquitto, the bridge, Kafka and the streaming job, with a clock a day
ahead, a clock a day behind, a 9.7 MB payload, a seq bomb and a publish to another subject's topic
mixed in; once the walk is finalized and its state has expired, it sends the whole walk again.
A record with a clock a day ahead is also put straight into Kafka first (as a bridge with a wider
skew bound would let it through): the archive must not lose anyone's later samples to it.

Afterwards every sample is accounted for: stored once (Cassandra windows equal to numpy, the final
features to the offline ones, the Parquet archive once per seq) or dead-lettered with its reason
(the bridge's Kafka dead letters: clock skew, oversized; the job's Parquet dead letters: seq jump,
closed walk), the refused publish counted by the device, the finalized walk unchanged by its
replay, and the bridge idle.
"""

from __future__ import annotations

import signal
import time
import uuid

import numpy as np
import pytest

from bridge import payload
from bridge.replay import DeviceFleet, ReplayReport
from gaitstream import clients, endpoints, gaitpdb
from gaitstream.clients import hdfs as hdfs_client
from model import features
from streaming import job
from tests.integration.pipeline import BridgeProcess, isolated_config
from tests.integration.test_bad_devices import _cpu_seconds, _dead_letters, _reason, _stats, _topic
from tests.integration.test_streaming import JobProcess, cassandra_rows, job_env

pytestmark = pytest.mark.integration

WALK_SAMPLES = 1_234  # 12 whole windows and a partial one
BATCH = 10  # samples per message
BOMB_SEQ = 50_000_000  # inside the bridge's seq range, far past the walk's next window
DAY_MS = 24 * 3600 * 1000
IDLE_S, EXPIRY_S = 5, 3  # the walk is flushed 5 s after its last sample, its state closed 3 s later


def _messages(subject: str, walk: gaitpdb.Walk, sent_at_ms: int | None = None) -> list[tuple[int, bytes]]:
    """The first WALK_SAMPLES samples of a real walk as subject ``subject``'s walk 01: (seq, body)."""
    rows = np.column_stack([walk.time, walk.forces])[:WALK_SAMPLES]
    out = []
    for seq in range(0, len(rows), BATCH):
        batch = payload.SampleBatch(
            v=1,
            study="Ga",
            subject_id=subject,
            walk_id=f"{subject}_01",
            seq=seq,
            sent_at_ms=int(time.time() * 1000) if sent_at_ms is None else sent_at_ms,
            samples=rows[seq : seq + BATCH].tolist(),
        )
        out.append((seq, payload.encode(batch)))
    return out


def _wait(what: str, check, job_process: JobProcess, timeout: float = 420, every: float = 2.0):
    """Poll ``check()`` until it returns something truthy; fail with the job's log tail otherwise."""
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        assert job_process.alive(), f"job exited while waiting for {what}:\n{job_process.log()[-4000:]}"
        try:
            last = check()
        except Exception as exc:  # tables or files not created yet
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(every)
    pytest.fail(f"no {what} after {timeout:.0f}s (last: {last!r}):\n{job_process.log()[-3000:]}")


def _walk_rows(cfg, keyspace: str, walk_id: str):
    windows, walk_features = cassandra_rows(cfg, keyspace)
    return (
        sorted((w for w in windows if w.walk_id == walk_id), key=lambda w: w.window_index),
        [f for f in walk_features if f.walk_id == walk_id],
    )


def _comparable(windows, finals) -> tuple:
    return (
        [tuple(v for k, v in w._asdict().items() if k != "max_sent_at_ms") for w in windows],
        [(f.samples, f.final, tuple(sorted(f.features.items()))) for f in finals],
    )


def test_every_sample_of_a_bad_device_is_stored_once_or_dead_lettered(stack, tmp_path, spark_reader):
    cfg, env = isolated_config()
    if not cfg.replay.as_devices:
        pytest.skip("this stack's device ACL has no room for an isolated topic prefix")
    tag = uuid.uuid4().hex[:8]
    run_env = job_env(
        env,
        tmp_path,
        f"bd{tag}",
        GAITSTREAM_STREAMING_IDLE_TIMEOUT_SECONDS=str(IDLE_S),
        GAITSTREAM_STREAMING_STATE_EXPIRY_SECONDS=str(EXPIRY_S),
    )
    run_cfg = job.gs_config.load(env=run_env)
    keyspace = run_cfg.cassandra.keyspace
    subject, other = f"Bd{uuid.uuid4().hex[:8]}", f"Bd{uuid.uuid4().hex[:8]}"
    walk_id = f"{subject}_01"
    refs = gaitpdb.list_walks(cfg.path("data.gaitpdb_dir"))[0]
    source = gaitpdb.read_walk(next(r for r in refs if r.walk_id == "GaPt03_01"))
    good = _messages(subject, source)
    now = int(time.time() * 1000)
    ahead = _messages(subject, source, sent_at_ms=now + DAY_MS)[3][1]
    behind = _messages(subject, source, sent_at_ms=now - DAY_MS)[4][1]
    bomb_rows = np.column_stack([source.time, source.forces])[:BATCH].tolist()
    bomb = payload.encode(payload.SampleBatch(1, "Ga", subject, walk_id, BOMB_SEQ, int(time.time() * 1000), bomb_rows))
    oversized = payload.encode(
        payload.SampleBatch(1, "Ga", subject, walk_id, 0, int(time.time() * 1000), bomb_rows * 10_000)
    )
    assert 9_000_000 < len(oversized) < 12_000_000, len(oversized)

    # A record whose device clock is a day ahead that got past a bridge (one with a wider skew
    # bound, or before the bound existed): straight into Kafka, first. The archive's dedupe runs on
    # Kafka's clock, so it must not hold back anyone's later samples.
    future_walk = f"{subject}_02"
    future = payload.SampleBatch(1, "Ga", subject, future_walk, 0, now + DAY_MS, bomb_rows)
    clients.ensure_topic(cfg, cfg.kafka.samples_topic, cfg.kafka.partitions)  # as the bridge makes it
    producer = clients.kafka_producer(cfg)
    try:
        producer.send(cfg.kafka.samples_topic, payload.encode(future), key=payload.kafka_key(future)).get(30)
    finally:
        producer.close()

    bridge = BridgeProcess(env, tmp_path / "bridge.log").start()
    job_process = JobProcess(run_env, tmp_path / "job.log")
    fleet = DeviceFleet(cfg, max_outstanding=20)
    report = ReplayReport()
    try:
        assert fleet.ensure_credentials([subject]) == 1
        device = fleet.for_subject(subject)
        topic = _topic(cfg, subject)
        for seq, body in good:
            device.publish(topic, body)
            if seq == 300:  # the bad ones mid-walk
                for bad in (ahead, behind, oversized, bomb):
                    device.publish(topic, bad)
                device.publish(_topic(cfg, other), good[0][1])  # another subject's topic
        assert device.drain(120)

        # The walk: every window equal to numpy, final features equal to the offline ones.
        n = len(source.time[:WALK_SAMPLES])
        expected = features.window_means(np.arange(n), source.forces[:n])

        def complete_walk():
            windows, finals = _walk_rows(cfg, keyspace, walk_id)
            return (windows, finals) if len(windows) == len(expected) and any(f.final for f in finals) else None

        windows, finals = _wait("complete walk in Cassandra", complete_walk, job_process)
        assert [(w.window_index, w.sample_count, w.partial, w.first_seq, w.last_seq) for w in windows] == [
            (e["window_index"], e["sample_count"], e["partial"], e["first_seq"], e["last_seq"]) for e in expected
        ]
        for got, e in zip(windows, expected, strict=True):
            for channel in gaitpdb.FORCE_CHANNELS:
                assert getattr(got, channel) == pytest.approx(e[channel], abs=1e-6), (e["window_index"], channel)
        (final,) = finals
        offline = {
            k: v for k, v in features.gait_features(source.time[:n], source.forces[:n]).items() if np.isfinite(v)
        }
        assert final.samples == n and set(final.features) == set(offline)
        for name, value in offline.items():
            assert final.features[name] == pytest.approx(value, rel=1e-9, abs=1e-9), name
        before = _comparable(windows, finals)

        # The finalized walk's state expires (idle flush, then EXPIRY_S): the device sends it again.
        time.sleep(IDLE_S + EXPIRY_S + 15)
        for _seq, body in _messages(subject, source):
            device.publish(topic, body)
        assert device.drain(120)

        deadletter_uri = endpoints.deadletter_uri(run_cfg)

        def job_dead_letters():
            rows = spark_reader.read.parquet(deadletter_uri).collect()
            closed = [r for r in rows if r.reason.startswith("walk_closed:")]
            return rows if len(closed) >= len(good) else None

        dead = _wait("the replayed walk's dead letters", job_dead_letters, job_process, timeout=300, every=3)
        reasons = sorted({r.reason.split(":")[0] for r in dead})
        assert reasons == ["seq_jump", "walk_closed"], [r.reason for r in dead]
        jumps = [r for r in dead if r.reason.startswith("seq_jump:")]
        assert [r.value for r in jumps] == [bomb.decode()]
        closed = {r.value for r in dead if r.reason.startswith("walk_closed:")}
        assert len(closed) == len(good), "each replayed record dead-lettered (a bridge resend may add a copy)"

        # The replay changed nothing stored.
        time.sleep(2 * cfg.streaming.trigger_seconds)
        assert _comparable(*_walk_rows(cfg, keyspace, walk_id)) == before

        # The archive: every sample once, the bomb's too (raw data is kept; the job said why it
        # is not windowed), nothing of the clock-skewed, oversized or replayed records.
        archive_uri = endpoints.archive_uri(run_cfg)
        want = {(walk_id, seq) for seq in [*range(n), *range(BOMB_SEQ, BOMB_SEQ + BATCH)]}
        want |= {(future_walk, seq) for seq in range(BATCH)}
        _wait(
            "complete archive", lambda: spark_reader.read.parquet(archive_uri).count() >= len(want), job_process, 300, 3
        )
        time.sleep(cfg.streaming.archive_trigger_seconds + 2)  # a late duplicate would land by now
        archived = spark_reader.read.parquet(archive_uri).select("walk_id", "seq").collect()
        assert sorted((r.walk_id, r.seq) for r in archived) == sorted(want)
        # The day-ahead walk itself: windowed like any other (one partial window, then flushed).
        (ahead_window,), _ = _walk_rows(cfg, keyspace, future_walk)
        assert (ahead_window.sample_count, ahead_window.partial) == (BATCH, True)

        # The bridge: the skewed clocks and the oversized payload in its dead letters, nothing pending.
        bridge_dead = {value: _reason(headers) for value, headers in _dead_letters(cfg, 3)}
        assert len(bridge_dead) == 3
        assert bridge_dead[ahead].startswith("clock_skew:") and bridge_dead[behind].startswith("clock_skew:")
        assert bridge_dead[oversized[: cfg.bridge.dead_letter_max_bytes]].startswith("oversized:")
        stats = _stats(cfg, settle=2.5)
        assert (stats["clock_skew"], stats["truncated"], stats["dead_lettered"], stats["pending"]) == (2, 1, 3, 0)
        assert stats["forwarded"] == 2 * len(good) + 1, stats  # the walk twice, the bomb once
        cpu = _cpu_seconds(bridge, over=5.0)
        assert cpu < 0.5, f"bridge busy while idle: {cpu:.2f} s CPU in 5 s"
    finally:
        fleet.close(report)
        job_process.proc.send_signal(signal.SIGTERM)
        try:
            job_process.proc.wait(120)
        except Exception:
            job_process.kill_everything()
        bridge.stop()
        cluster, session = clients.cassandra(cfg)
        try:
            session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=60)
        finally:
            cluster.shutdown()
        hdfs_client(cfg).delete(f"/test/streaming/bd{tag}", recursive=True)
    # The publish to another subject's topic: refused by the broker, counted by the device.
    assert report.refused == {"Not authorized": 1}, report.refused
