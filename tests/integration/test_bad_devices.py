"""Bad devices through the real Mosquitto and Kafka (issue 12, bridge side): a clock a day off
either way, a 9.7 MB payload, a payload Kafka itself refuses, foreign and malformed payloads and a
walk-id bomb each end in the dead letter with their reason, are acknowledged (never resent, the
bridge idles afterwards), and valid traffic keeps flowing.

Every test runs its own bridge on its own MQTT prefix and Kafka topics (``isolated_config``), with
subject ids unique to the run.
"""

from __future__ import annotations

import hashlib
import json
import signal
import time
import uuid

import psutil
import pytest
from kafka.admin import NewTopic

from bridge import payload
from bridge.replay import ReplayReport
from gaitstream import clients
from gaitstream import config as gs_config
from tests.integration.pipeline import BridgeProcess, isolated_config, read_topic

pytestmark = pytest.mark.integration

DAY_MS = 24 * 3600 * 1000


@pytest.fixture
def device_bridge(stack, tmp_path):
    """(cfg, bridge, subject_id): a bridge of its own and a subject id no other run uses."""
    cfg, env = isolated_config()
    bridge = BridgeProcess(env, tmp_path / "bridge.log").start()
    yield cfg, bridge, f"Bd{uuid.uuid4().hex[:8]}"
    bridge.stop()


def _body(subject_id: str, walk: str = "01", seq: int = 0, samples: int = 10, sent_at_ms: int | None = None) -> bytes:
    return json.dumps(
        {
            "v": 1,
            "study": "Ga",
            "subject_id": subject_id,
            "walk_id": f"{subject_id}_{walk}",
            "seq": seq,
            "sent_at_ms": int(time.time() * 1000) if sent_at_ms is None else sent_at_ms,
            "samples": [[0.01 * (seq + i)] + [100.0 + i % 7] * 18 for i in range(samples)],
        }
    ).encode()


def _topic(cfg: gs_config.Config, subject_id: str, walk: str = "01") -> str:
    return payload.topic_for(cfg.mqtt.topic_prefix, "Ga", subject_id, f"{subject_id}_{walk}")


def _publish(cfg: gs_config.Config, messages: list[tuple[str, bytes]]) -> None:
    """Publish with QoS 1 as the replay user; returns once Mosquitto has every PUBACK."""
    client = clients.mqtt_client(cfg, "replay", f"bad-device-{uuid.uuid4().hex[:8]}")
    clients.mqtt_connect(cfg, client)
    client.loop_start()
    try:
        infos = [client.publish(topic, body, qos=1) for topic, body in messages]
        for info in infos:
            info.wait_for_publish(120)
            assert info.is_published()
    finally:
        client.disconnect()
        client.loop_stop()


def _dead_letters(cfg: gs_config.Config, count: int, timeout: float = 120, idle: float = 3.0):
    """(value, headers) of the test's dead-letter topic, once ``count`` are there (and ``idle`` s more)."""
    dead = read_topic(
        cfg,
        cfg.kafka.dead_letter_topic,
        until=lambda c: c.records >= count,
        timeout=timeout,
        decode_samples=False,
        idle_after_done=idle,
    )
    return list(zip(dead.values, dead.headers, strict=True))


def _samples(cfg: gs_config.Config, pairs: set[tuple[str, int]], timeout: float = 60):
    return read_topic(
        cfg, cfg.kafka.samples_topic, until=lambda c: pairs <= c.distinct(), timeout=timeout, idle_after_done=2
    )


def _stats(cfg: gs_config.Config, settle: float) -> dict:
    """The bridge's stats file as rewritten at least ``settle`` seconds from now."""
    path = cfg.path("bridge.stats_file")
    wanted = time.time() + settle
    deadline = wanted + 30
    while time.time() < deadline:
        try:
            doc = json.loads(path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            doc = {}
        if doc.get("updated_at", 0) >= wanted:
            return doc
        time.sleep(0.5)
    raise AssertionError(f"stats file {path} not rewritten")


def _cpu_seconds(bridge: BridgeProcess, over: float) -> float:
    proc = psutil.Process(bridge.proc.pid)
    before = proc.cpu_times()
    time.sleep(over)
    after = proc.cpu_times()
    return (after.user + after.system) - (before.user + before.system)


def _reason(headers: dict) -> str:
    return headers["reason"].decode()


def test_a_clock_a_day_off_either_way_is_dead_lettered(device_bridge):
    cfg, bridge, subject = device_bridge
    now = int(time.time() * 1000)
    ahead, behind = _body(subject, seq=0, sent_at_ms=now + DAY_MS), _body(subject, seq=10, sent_at_ms=now - DAY_MS)
    _publish(
        cfg,
        [(_topic(cfg, subject), ahead), (_topic(cfg, subject), behind), (_topic(cfg, subject), _body(subject, seq=20))],
    )
    dead = _dead_letters(cfg, 2)
    assert sorted(value for value, _ in dead) == sorted([ahead, behind])  # original bytes, whole
    reasons = {value: _reason(headers) for value, headers in dead}
    assert reasons[ahead].startswith("clock_skew:") and " ahead " in reasons[ahead], reasons[ahead]
    assert reasons[behind].startswith("clock_skew:") and " behind " in reasons[behind], reasons[behind]
    forwarded = _samples(cfg, {(f"{subject}_01", 20 + i) for i in range(10)})
    assert forwarded.distinct() == {(f"{subject}_01", 20 + i) for i in range(10)}  # only the good clock
    stats = _stats(cfg, settle=2.5)
    assert (stats["clock_skew"], stats["dead_lettered"], stats["forwarded"], stats["pending"]) == (2, 2, 1, 0)


def test_a_payload_bigger_than_kafka_allows_is_stored_cut_and_acknowledged(device_bridge, tmp_path):
    cfg, bridge, subject = device_bridge
    huge = _body(subject, samples=80_000)  # a valid-looking payload of ~9.7 MB
    assert 9_000_000 < len(huge) < 11_000_000
    _publish(cfg, [(_topic(cfg, subject), huge)])
    _publish(cfg, [(_topic(cfg, subject), _body(subject, seq=i * 10)) for i in range(5)])  # traffic goes on

    ((value, headers),) = _dead_letters(cfg, 1, idle=5)
    limit = cfg.bridge.dead_letter_max_bytes
    assert _reason(headers).startswith("oversized:")
    assert value == huge[:limit]
    assert headers["truncated"] == b"1"
    assert int(headers["original_length"]) == len(huge)
    assert headers["original_sha256"].decode() == hashlib.sha256(huge).hexdigest()
    _samples(cfg, {(f"{subject}_01", seq) for seq in range(50)})

    stats = _stats(cfg, settle=2.5)
    assert stats["truncated"] == 1 and stats["dead_lettered"] == 1 and stats["pending"] == 0
    assert stats["resent"] <= 2, stats  # no resend loop (a couple allowed if Kafka blipped)
    assert stats["forwarded"] == 5
    cpu = _cpu_seconds(bridge, over=5.0)
    assert cpu < 0.5, f"bridge busy while idle: {cpu:.2f} s CPU in 5 s"
    assert "sending it again" not in bridge.log()

    # Acknowledged: the next bridge on the same persistent session gets nothing redelivered.
    assert bridge.kill(signal.SIGTERM) == 0
    bridge.start()
    time.sleep(5)
    assert len(_dead_letters(cfg, 1, idle=2)) == 1
    stats = _stats(cfg, settle=2.5)
    assert stats["pid"] == bridge.proc.pid and stats["received"] == 0, stats


def test_a_record_kafka_refuses_is_dead_lettered_not_resent(stack, tmp_path):
    """Payloads the bridge accepts but Kafka refuses: one over the producer's 1 MiB request limit
    (refused by the client), one over the topic's max.message.bytes (refused by the broker)."""
    cfg, env = isolated_config(
        GAITSTREAM_BRIDGE_MAX_PAYLOAD_BYTES="4000000", GAITSTREAM_BRIDGE_MAX_SAMPLES_PER_MESSAGE="100000"
    )
    admin = clients.kafka_admin(cfg)
    try:
        admin.create_topics([NewTopic(cfg.kafka.samples_topic, 1, 1, topic_configs={"max.message.bytes": "100000"})])
    finally:
        admin.close()
    subject = f"Bd{uuid.uuid4().hex[:8]}"
    bridge = BridgeProcess(env, tmp_path / "bridge.log").start()
    try:
        broker_refused, client_refused = _body(subject, samples=1_500), _body(subject, samples=15_000)
        assert 100_000 < len(broker_refused) < 1_000_000 < len(client_refused) < 4_000_000
        _publish(cfg, [(_topic(cfg, subject), broker_refused), (_topic(cfg, subject), client_refused)])
        dead = _dead_letters(cfg, 2, idle=5)
        assert len(dead) == 2, [_reason(h) for _, h in dead]
        by_length = {int(h["original_length"]): (value, h) for value, h in dead}
        assert set(by_length) == {len(broker_refused), len(client_refused)}
        for raw in (broker_refused, client_refused):
            value, headers = by_length[len(raw)]
            assert _reason(headers).startswith("kafka_refused: MessageSizeTooLargeError"), _reason(headers)
            assert value == raw[: cfg.bridge.dead_letter_max_bytes]
            assert headers["original_sha256"].decode() == hashlib.sha256(raw).hexdigest()
        _publish(cfg, [(_topic(cfg, subject), _body(subject, seq=20_000))])  # valid traffic still flows
        _samples(cfg, {(f"{subject}_01", 20_000 + i) for i in range(10)})
        stats = _stats(cfg, settle=2.5)
        assert stats["kafka_refused"] == 2 and stats["pending"] == 0 and stats["resent"] <= 2, stats
        assert _cpu_seconds(bridge, over=3.0) < 0.5
    finally:
        bridge.stop()


def test_foreign_and_malformed_payloads_are_dead_lettered_with_their_reason(device_bridge):
    cfg, bridge, subject = device_bridge
    other = f"Bd{uuid.uuid4().hex[:8]}"
    cases = {
        "foreign": (_topic(cfg, other), _body(subject, seq=0), "topic "),  # another subject's topic
        "bad json": (_topic(cfg, subject), b'{"v": 1, "study": ', "bad JSON"),
        "binary": (_topic(cfg, subject), bytes(range(256)) * 4, "bad JSON"),
        "schema": (_topic(cfg, subject), json.dumps({"v": 1, "hello": "world"}).encode(), "schema"),
        "version": (_topic(cfg, subject), json.dumps({"v": 7}).encode(), "unknown schema version 7"),
        "NaN": (_topic(cfg, subject), _body(subject, seq=30).replace(b"100.0", b"NaN", 1), "bad JSON"),
    }
    _publish(
        cfg, [(topic, body) for topic, body, _ in cases.values()] + [(_topic(cfg, subject), _body(subject, seq=40))]
    )
    dead = {value: _reason(headers) for value, headers in _dead_letters(cfg, len(cases))}
    assert len(dead) == len(cases)
    for name, (_, body, reason) in cases.items():
        assert dead[body].startswith(reason), f"{name}: {dead[body]}"
    forwarded = _samples(cfg, {(f"{subject}_01", 40 + i) for i in range(10)})
    assert forwarded.records == 1


def test_a_device_publishing_to_another_subjects_topic_is_refused_and_counted(device_bridge):
    """Over TLS with its own certificate (issued as `gaitstream devices add` does), a device may
    publish only under its own subject: the broker refuses the foreign topic (MQTT 5 "Not
    authorized"), the device counts it, nothing reaches Kafka, and its own traffic flows."""
    from bridge.replay import DeviceFleet

    cfg, bridge, subject = device_bridge
    other = f"Bd{uuid.uuid4().hex[:8]}"
    fleet = DeviceFleet(cfg, max_outstanding=10)
    assert fleet.as_devices and fleet.ensure_credentials([subject]) == 1
    device = fleet.for_subject(subject)
    device.publish(_topic(cfg, other), _body(other, seq=0))  # posing as another subject
    device.publish(_topic(cfg, other), _body(subject, seq=0))  # its own payload, foreign topic
    device.publish(_topic(cfg, subject), _body(subject, seq=0))
    assert device.drain(30)
    report = ReplayReport()
    fleet.close(report)
    assert report.refused == {"Not authorized": 2} and report.devices == 1
    forwarded = _samples(cfg, {(f"{subject}_01", i) for i in range(10)})
    assert forwarded.records == 1 and {w for w, _ in forwarded.distinct()} == {f"{subject}_01"}
    assert _stats(cfg, settle=2)["dead_lettered"] == 0


def test_a_walk_id_bomb_is_bounded_per_subject(device_bridge):
    cfg, bridge, subject = device_bridge
    bound = cfg.bridge.max_open_walks_per_subject
    walks = [f"{i:02d}" for i in range(bound + 5)]
    _publish(cfg, [(_topic(cfg, subject, walk), _body(subject, walk=walk)) for walk in walks])
    opened = {(f"{subject}_{walk}", seq) for walk in walks[:bound] for seq in range(10)}
    _samples(cfg, opened)
    dead = _dead_letters(cfg, 5)
    assert len(dead) == 5 and all(_reason(h).startswith("too_many_walks:") for _, h in dead)
    assert {json.loads(value)["walk_id"] for value, _ in dead} == {f"{subject}_{walk}" for walk in walks[bound:]}
    # An open walk goes on; the subject's other walks are untouched by the refusal.
    _publish(cfg, [(_topic(cfg, subject, walks[0]), _body(subject, walk=walks[0], seq=10))])
    _samples(cfg, {(f"{subject}_{walks[0]}", 10 + i) for i in range(10)})
    stats = _stats(cfg, settle=2.5)
    assert stats["too_many_walks"] == 5 and stats["open_walks"] == bound and stats["pending"] == 0, stats
