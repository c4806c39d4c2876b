"""Test helpers for the MQTT → Kafka leg: isolated names, a bridge subprocess, a Kafka reader."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
from kafka import TopicPartition

from bridge import payload as payload_schema
from gaitstream import clients
from gaitstream import config as gs_config

REPO_ROOT = Path(__file__).resolve().parents[2]


def isolated_config(**extra: str) -> tuple[gs_config.Config, dict[str, str]]:
    """A config whose MQTT prefix, Kafka topics and bridge session are unique to one test."""
    tag = uuid.uuid4().hex[:10]
    env = {
        "GAITSTREAM_MQTT_TOPIC_PREFIX": f"gait/t{tag}",
        "GAITSTREAM_KAFKA_SAMPLES_TOPIC": f"test.samples.{tag}",
        "GAITSTREAM_KAFKA_DEAD_LETTER_TOPIC": f"test.deadletter.{tag}",
        "GAITSTREAM_BRIDGE_CLIENT_ID": f"test-bridge-{tag}",
        "GAITSTREAM_BRIDGE_STATS_INTERVAL": "2",
        "GAITSTREAM_BRIDGE_STATS_FILE": f"/tmp/gs-bridge-stats-{tag}.json",
        **extra,
    }
    full_env = {**os.environ, **env}
    if gs_config.load(env=full_env).mqtt.acl_namespace_levels < 1:
        # a stack whose device ACL has no room for gait/t<tag>/ (a bench on the default stack):
        # publish as the dev profile's all-subjects account instead of as devices
        full_env["GAITSTREAM_REPLAY_AS_DEVICES"] = "false"
    return gs_config.load(env=full_env), full_env


class BridgeProcess:
    """``gaitstream bridge`` as a real subprocess, with its log kept for assertions."""

    def __init__(self, env: dict[str, str], log_path: Path):
        self.env, self.log_path = env, log_path
        self.proc: subprocess.Popen | None = None

    def start(self, wait_subscribed: bool = True, timeout: float = 60) -> BridgeProcess:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "bridge"],
            env=self.env,
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        if wait_subscribed:
            deadline = time.monotonic() + timeout
            while "subscribing" not in self.log():
                assert self.proc.poll() is None, f"bridge exited early:\n{self.log()[-3000:]}"
                if time.monotonic() >= deadline:
                    self.kill(signal.SIGKILL)  # never leave a bridge running behind a failed test
                    raise AssertionError(f"bridge not subscribed after {timeout}s:\n{self.log()[-3000:]}")
                time.sleep(0.2)
            time.sleep(0.5)  # SUBACK
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self, sig: int = signal.SIGKILL, timeout: float = 60) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, keep_session: bool = False) -> None:
        """SIGTERM the bridge, then (unless ``keep_session``) end its persistent MQTT session so
        the broker frees its queue."""
        if self.alive():
            self.kill(signal.SIGTERM)
        if not keep_session:
            end_session(self.env)


def end_session(env: dict[str, str]) -> None:
    """Connect once with clean_session=True under the bridge's client id: the broker drops the session."""
    cfg = gs_config.load(env=env)
    client = clients.mqtt_client(cfg, "bridge", cfg.bridge.client_id, clean_session=True)
    connected = threading.Event()
    client.on_connect = lambda *args: connected.set()
    clients.mqtt_connect(cfg, client)
    client.loop_start()
    connected.wait(5)
    client.disconnect()
    client.loop_stop()


@dataclass
class TopicContents:
    """What a Kafka topic holds, decoded: (walk, seq) arrivals in offset order per walk."""

    records: int = 0
    arrivals: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    headers: list[dict[str, bytes]] = field(default_factory=list)
    values: list[bytes] = field(default_factory=list)

    def distinct(self) -> set[tuple[str, int]]:
        return {(walk, seq) for walk, seqs in self.arrivals.items() for seq in seqs}

    def first_occurrence_order(self, walk: str) -> list[int]:
        seen, order = set(), []
        for seq in self.arrivals[walk]:
            if seq not in seen:
                seen.add(seq)
                order.append(seq)
        return order


def read_topic(
    cfg: gs_config.Config,
    topic: str,
    *,
    until=lambda contents: False,
    timeout: float = 120,
    decode_samples: bool = True,
    idle_after_done: float = 0.0,
) -> TopicContents:
    """Read a topic from the beginning until ``until(contents)`` holds or ``timeout`` passes."""
    consumer = clients.kafka_consumer(cfg, consumer_timeout_ms=1000)
    contents = TopicContents()
    decoder = msgspec.json.Decoder(payload_schema.SampleBatch)
    try:
        deadline = time.monotonic() + timeout
        while not consumer.partitions_for_topic(topic):
            assert time.monotonic() < deadline, f"topic {topic} never appeared"
            time.sleep(0.5)
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        done_at = None
        while time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500, max_records=5000).values():
                for record in batch:
                    contents.records += 1
                    if decode_samples:
                        msg = decoder.decode(record.value)
                        contents.arrivals[msg.walk_id].extend(range(msg.seq, msg.seq + len(msg.samples)))
                    else:
                        contents.values.append(record.value)
                        contents.headers.append(dict(record.headers or []))
            if done_at is None and until(contents):
                done_at = time.monotonic()
            if done_at is not None and time.monotonic() - done_at >= idle_after_done:
                break
    finally:
        consumer.close()
    return contents


def expected_pairs(per_walk: dict[str, int]) -> set[tuple[str, int]]:
    return {(walk, seq) for walk, count in per_walk.items() for seq in range(count)}


def replay_into_kafka(cfg, env: dict[str, str], refs, data_dir, log_path: Path, timeout: float, batch_size: int = 10):
    """Replay walks through a bridge subprocess; returns the report once every sample is in Kafka."""
    from bridge import replay

    bridge = BridgeProcess(env, log_path).start()
    try:
        report = replay.replay(cfg, refs, speed=0, batch_size=batch_size, data_dir=data_dir, progress=False)
        everything = expected_pairs(report.per_walk)
        read_topic(cfg, cfg.kafka.samples_topic, until=lambda c: everything <= c.distinct(), timeout=timeout)
    finally:
        bridge.stop()
    return report


def drop_keyspace(cfg: gs_config.Config, keyspace: str) -> None:
    from gaitstream import clients

    cluster, session = clients.cassandra(cfg)
    try:
        session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=60)
    finally:
        cluster.shutdown()


def replay_in_thread(cfg, refs, data_dir, batch_size=10, speed=0.0):
    """Run a replay in a thread; returns (thread, result holder)."""
    from bridge import replay

    result: dict = {}

    def run():
        result["report"] = replay.replay(
            cfg, refs, speed=speed, batch_size=batch_size, data_dir=data_dir, progress=False
        )

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result
