"""Replay → Mosquitto → bridge → Kafka on the real brokers: nothing lost, order kept per walk,
faults survived, malformed payloads dead-lettered with a reason, bad credentials refused."""

from __future__ import annotations

import json
import random
import signal
import time

import pytest

from bridge import replay
from gaitstream import clients, gaitpdb
from tests.conftest import run_stack
from tests.integration.pipeline import BridgeProcess, expected_pairs, isolated_config, read_topic, replay_in_thread

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def walks(stack):
    folder = stack.path("data.gaitpdb_dir")
    refs, _missing = gaitpdb.list_walks(folder)
    return folder, refs


def _assert_exactly_once_in_order(contents, per_walk):
    expected = expected_pairs(per_walk)
    got = contents.distinct()
    assert not expected - got, f"{len(expected - got)} samples lost, e.g. {sorted(expected - got)[:5]}"
    assert not got - expected, f"unexpected samples {sorted(got - expected)[:5]}"
    for walk, count in per_walk.items():
        assert contents.first_occurrence_order(walk) == list(range(count)), f"{walk} out of order"


def _wait_all(cfg, per_walk, timeout=240):
    expected = expected_pairs(per_walk)
    return read_topic(cfg, cfg.kafka.samples_topic, until=lambda c: expected <= c.distinct(), timeout=timeout)


def test_every_sample_arrives_exactly_once_in_order(stack, walks, tmp_path):
    folder, refs = walks
    cfg, env = isolated_config()
    chosen = replay.select_walks(refs, studies=["Si"])[:10]
    bridge = BridgeProcess(env, tmp_path / "bridge.log").start()
    report = replay.replay(cfg, chosen, speed=0, batch_size=10, data_dir=folder, progress=False)
    assert report.samples >= 100_000 and not report.interrupted
    contents = _wait_all(cfg, report.per_walk)
    _assert_exactly_once_in_order(contents, report.per_walk)
    assert bridge.kill(signal.SIGTERM) == 0, bridge.log()[-2000:]
    assert "stopped:" in bridge.log()
    bridge.stop()


def test_sigkill_of_the_bridge_mid_replay_loses_nothing(stack, walks, tmp_path):
    folder, refs = walks
    cfg, env = isolated_config()
    chosen = replay.select_walks(refs, studies=["Ju"])[:5]
    bridge = BridgeProcess(env, tmp_path / "bridge.log").start()
    # Throttled (8x real time, ~12 s a walk), so the kill lands mid-stream with messages in flight.
    thread, result = replay_in_thread(cfg, chosen, folder, speed=8.0)
    time.sleep(4)
    assert thread.is_alive(), "the replay ended before the kill: the fault would hit nothing"
    bridge.kill(signal.SIGKILL)
    time.sleep(2)
    bridge.start()
    thread.join(300)
    report = result["report"]
    contents = _wait_all(cfg, report.per_walk)
    _assert_exactly_once_in_order(contents, report.per_walk)
    # The kill hit unacknowledged messages: the broker sent them again (DUP) to the new session.
    stats = _stats_when(cfg, lambda c: c.get("received", 0) > 0)
    assert stats["redelivered"] > 0, stats
    print(
        f"after SIGKILL: {stats['redelivered']} messages redelivered, {contents.records} records for "
        f"{len(contents.distinct())} samples "
        f"({sum(len(s) for s in contents.arrivals.values()) - len(contents.distinct())} duplicates)"
    )
    bridge.stop()


def _stats_when(cfg, ready, timeout: float = 30) -> dict:
    """The bridge's counters (its stats file) once ``ready(counters)`` holds."""
    path = cfg.path("bridge.stats_file")
    deadline = time.monotonic() + timeout
    counters: dict = {}
    while time.monotonic() < deadline:
        try:
            data = json.loads(path.read_text())
            counters = data.get("counters", data)
        except (OSError, ValueError):
            counters = {}
        if ready(counters):
            return counters
        time.sleep(0.5)
    raise AssertionError(f"bridge stats not ready after {timeout}s: {counters}")


def test_kafka_restart_mid_replay_loses_nothing(stack, walks, tmp_path):
    folder, refs = walks
    cfg, env = isolated_config()
    chosen = replay.select_walks(refs, studies=["Ga"], groups=["Co"])[:5]
    bridge = BridgeProcess(env, tmp_path / "bridge.log").start()
    # Throttled (2x real time, about a minute a walk) so samples keep coming while Kafka is away.
    thread, result = replay_in_thread(cfg, chosen, folder, speed=2.0)
    time.sleep(3)
    assert thread.is_alive(), "the replay ended before the restart: the fault would hit nothing"
    before = _stats_when(cfg, lambda c: c.get("received", 0) > 0)
    run_stack("kafka.sh", "restart")
    assert thread.is_alive(), "the replay ended during the restart: make it slower"
    # Messages arrived while Kafka was away and were held unacknowledged, then forwarded.
    during = _stats_when(cfg, lambda c: c.get("received", 0) > before["received"])
    assert during["received"] > before["received"]
    thread.join(300)
    report = result["report"]
    contents = _wait_all(cfg, report.per_walk)
    _assert_exactly_once_in_order(contents, report.per_walk)
    assert bridge.alive(), bridge.log()[-3000:]
    bridge.stop()


def _fuzz_payloads(rng: random.Random, prefix: str, n: int) -> list[tuple[str, bytes]]:
    """``n`` malformed (topic, payload) pairs of many kinds, all on topics the bridge reads."""
    good = {
        "v": 1,
        "study": "Ga",
        "subject_id": "GaCo01",
        "walk_id": "GaCo01_01",
        "seq": 0,
        "sent_at_ms": 0,
        "samples": [[0.0] + [1.0] * 18],
    }
    topic = f"{prefix}/Ga/GaCo01/GaCo01_01"
    raw_good = json.dumps(good)
    kinds = [
        lambda: bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))),
        lambda: raw_good[: rng.randrange(1, len(raw_good) - 1)].encode(),
        lambda: json.dumps({**good, rng.choice(list(good)): rng.choice(["x", -1, None, [], {}, 1.5, True])}).encode(),
        lambda: (lambda drop: json.dumps({k: v for k, v in good.items() if k != drop}).encode())(
            rng.choice(list(good))
        ),
        lambda: json.dumps({**good, "v": rng.randrange(2, 99)}).encode(),
        lambda: raw_good.replace("1.0", rng.choice(["NaN", "Infinity", "-Infinity", "1e999"]), 1).encode(),
        lambda: json.dumps({**good, "samples": [[0.0] + [rng.choice([-1e5, 1e7])] * 18]}).encode(),
        lambda: json.dumps({**good, "samples": [[0.0] * rng.choice([0, 1, 18, 20, 40])]}).encode(),
        lambda: json.dumps({**good, "samples": []}).encode(),
        lambda: json.dumps({**good, "seq": rng.choice([-5, 10**12])}).encode(),
        lambda: json.dumps(rng.choice([[], 1, "s", None, True])).encode(),
        lambda: b"{" * rng.randrange(1, 5000),
        lambda: b" " * 300_000,  # over bridge.max_payload_bytes
        lambda: json.dumps({**good, "label": "PD"}).encode(),
    ]
    out = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        body = kind()
        if i % 17 == 0:  # a valid payload on the wrong walk's topic
            out.append((f"{prefix}/Ga/GaCo02/GaCo02_01", raw_good.encode()))
        else:
            out.append((topic, body))
    return out


def test_fuzzed_payloads_all_go_to_dead_letter_with_a_reason(stack, tmp_path):
    cfg, env = isolated_config()
    bridge = BridgeProcess(env, tmp_path / "bridge.log").start()
    payloads = _fuzz_payloads(random.Random(20261126), cfg.mqtt.topic_prefix, 10_000)
    m = cfg.mqtt
    client = clients.mqtt_client(cfg, "replay", f"fuzz-{cfg.bridge.client_id}")
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    clients.mqtt_connect(cfg, client)
    client.loop_start()
    infos = [client.publish(topic, body, qos=1) for topic, body in payloads]
    # One valid message after the storm: the bridge must still forward.
    valid = json.dumps(
        {
            "v": 1,
            "study": "Ga",
            "subject_id": "GaCo01",
            "walk_id": "GaCo01_01",
            "seq": 7,
            "sent_at_ms": int(time.time() * 1000),
            "samples": [[0.07] + [1.0] * 18],
        }
    ).encode()
    infos.append(client.publish(f"{m.topic_prefix}/Ga/GaCo01/GaCo01_01", valid, qos=1))
    for info in infos:
        info.wait_for_publish(60)
    client.disconnect()
    client.loop_stop()

    dead = read_topic(
        cfg,
        cfg.kafka.dead_letter_topic,
        until=lambda c: c.records >= len(payloads),
        timeout=240,
        decode_samples=False,
        idle_after_done=2,
    )
    main = read_topic(cfg, cfg.kafka.samples_topic, until=lambda c: c.records >= 1, timeout=60, idle_after_done=2)
    assert bridge.alive(), bridge.log()[-3000:]
    assert dead.records == len(payloads)
    assert all(h.get("reason") and h.get("mqtt_topic") for h in dead.headers)
    # Original bytes kept, cut at bridge.dead_letter_max_bytes (the whole payload's length and sha256 in headers).
    limit = cfg.bridge.dead_letter_max_bytes
    assert sorted(dead.values) == sorted(body[:limit] for _topic, body in payloads)
    assert sorted(int(h["original_length"]) for h in dead.headers) == sorted(len(body) for _topic, body in payloads)
    assert sum(h.get("truncated") == b"1" for h in dead.headers) == sum(len(body) > limit for _t, body in payloads)
    reasons = {h["reason"].decode().split(":")[0].split(" ")[0] for h in dead.headers}
    assert len(reasons) >= 8, reasons
    assert main.records == 1 and main.distinct() == {("GaCo01_01", 7)}
    bridge.stop()


def test_wrong_credentials_are_refused(stack, walks, tmp_path):
    """On the plain loopback listener: wrong passwords."""
    folder, refs = walks
    cfg, env = isolated_config(
        GAITSTREAM_MQTT_USE_TLS="false",
        GAITSTREAM_REPLAY_AS_DEVICES="false",
        GAITSTREAM_MQTT_BRIDGE_PASSWORD="wrong",
        GAITSTREAM_MQTT_REPLAY_PASSWORD="wrong",
    )
    bridge = BridgeProcess(env, tmp_path / "bridge.log").start(wait_subscribed=False)
    assert bridge.proc.wait(60) == 1
    assert "refused" in bridge.log()
    with pytest.raises(ConnectionError, match="refused"):
        replay.replay(cfg, refs[:1], speed=0, batch_size=10, data_dir=folder, progress=False)


def test_a_bridge_without_a_certificate_does_not_start(stack, tmp_path):
    """Over TLS the bridge's identity is its client certificate: an account without one is a
    clear start-up error, not a retry loop."""
    cfg, env = isolated_config(GAITSTREAM_MQTT_BRIDGE_USER="nobody")
    bridge = BridgeProcess(env, tmp_path / "bridge.log").start(wait_subscribed=False)
    assert bridge.proc.wait(60) == 1
    assert "no MQTT client certificate for 'nobody'" in bridge.log()


def test_the_bridges_topics_take_replication_from_config(stack, tmp_path):
    """kafka.replication_factor and kafka.min_insync_replicas reach every topic the project creates."""
    from kafka.admin import ConfigResource, ConfigResourceType
    from kafka.errors import InvalidReplicationFactorError

    from gaitstream.clients import ensure_topic

    cfg, env = isolated_config()
    bridge = BridgeProcess(env, tmp_path / "bridge.log").start()
    bridge.stop()
    admin = clients.kafka_admin(cfg)
    try:
        topics = [cfg.kafka.samples_topic, cfg.kafka.dead_letter_topic]
        for topic in admin.describe_topics(topics):
            assert {len(p["replicas"]) for p in topic["partitions"]} == {cfg.kafka.replication_factor}
        for topic in topics:
            ((_code, _msg, _type, _name, entries),) = admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, topic)]
            )[0].resources
            value, source = next((e[1], e[3]) for e in entries if e[0] == "min.insync.replicas")
            # Set on the topic itself (source 1 = DYNAMIC_TOPIC_CONFIG), not inherited from the broker.
            assert (value, source) == (str(cfg.kafka.min_insync_replicas), 1)
    finally:
        admin.close()
    # Three copies on this one-broker stack: the broker refuses, so the setting does reach it.
    cfg3, _env = isolated_config(GAITSTREAM_KAFKA_REPLICATION_FACTOR="3", GAITSTREAM_KAFKA_MIN_INSYNC_REPLICAS="2")
    with pytest.raises(InvalidReplicationFactorError):
        ensure_topic(cfg3, cfg3.kafka.samples_topic, 1)
