"""The bridge's delivery contract with a fake producer and MQTT client: a message is acknowledged
only once Kafka confirmed its record (sample or dead letter), never before, never when Kafka failed.

The broker redelivers whatever was not acknowledged, so "not acked" is what keeps a message safe.
"""

from __future__ import annotations

import time
from typing import cast

import paho.mqtt.client as mqtt
import pytest
from kafka.errors import KafkaTimeoutError, MessageSizeTooLargeError

from bridge import payload as payload_schema
from bridge.bridge import Bridge
from gaitstream import config
from tests.unit.fakes import FakeMqttClient, FakeProducer

PREFIX = "unit-gs"  # set through the environment overrides below, so the test knows its topics
SUBJECT, WALK = "GaPt03", "GaPt03_01"
TOPIC = f"{PREFIX}/Ga/{SUBJECT}/{WALK}"


@pytest.fixture(scope="module")
def cfg():
    return config.load(env={"GAITSTREAM_MQTT_TOPIC_PREFIX": PREFIX})


@pytest.fixture
def make_bridge(cfg):
    """A bridge wired to fakes; stopped afterwards so no resend timer outlives the test."""
    bridges = []

    def make(producer: FakeProducer) -> tuple[Bridge, FakeMqttClient]:
        client = FakeMqttClient(events=producer.events)
        bridge = Bridge(
            cfg, client_id="unit-bridge", shared_group="", producer=producer, mqtt_client=cast(mqtt.Client, client)
        )
        bridges.append(bridge)
        return bridge, client

    yield make
    for bridge in bridges:
        bridge.stopping.set()


def sample_payload(seq: int = 0, sent_at_ms: int | None = None) -> bytes:
    samples = [[0.01 * (seq + i)] + [100.0] * (payload_schema.SAMPLE_WIDTH - 1) for i in range(10)]
    return payload_schema.encode(
        payload_schema.SampleBatch(
            v=payload_schema.SCHEMA_VERSION,
            study="Ga",
            subject_id=SUBJECT,
            walk_id=WALK,
            seq=seq,
            sent_at_ms=int(time.time() * 1000) if sent_at_ms is None else sent_at_ms,
            samples=samples,
        )
    )


def deliver(
    bridge: Bridge, client: FakeMqttClient, payload: bytes, mid: int = 7, topic: str = TOPIC, qos: int = 1
) -> mqtt.MQTTMessage:
    """What paho's network loop does with an incoming QoS 1 PUBLISH (manual ack mode)."""
    message = mqtt.MQTTMessage(mid, topic.encode())
    message.payload, message.qos = payload, qos
    bridge._on_message(client, None, message)
    return message


def test_sample_is_acked_only_after_kafka_confirms_it(make_bridge):
    producer = FakeProducer(hold=True)
    bridge, client = make_bridge(producer)
    raw = sample_payload()
    deliver(bridge, client, raw, mid=7)
    [record] = producer.sent
    assert record.topic == bridge.samples_topic and record.value == raw
    assert record.key == payload_schema.kafka_key(payload_schema.validate(raw, max_bytes=10**6, max_samples=1000))
    time.sleep(0.2)
    assert client.acks == [] and bridge.stats.pending == 1, "no PUBACK while Kafka has not confirmed"
    producer.confirm(record)
    assert client.acks == [(7, 1)]
    assert producer.events == [("send", bridge.samples_topic), ("confirmed", bridge.samples_topic), ("ack", 7)]
    assert bridge.stats.forwarded == 1 and bridge.stats.pending == 0


def test_failed_send_is_not_acked_and_is_sent_again_until_kafka_confirms(make_bridge):
    producer = FakeProducer(failures=[KafkaTimeoutError("Kafka down")])
    bridge, client = make_bridge(producer)
    raw = sample_payload()
    deliver(bridge, client, raw, mid=8)
    assert client.acks == [] and bridge.stats.resent == 1
    assert client.acked.wait(5), "the record is resent (after ~1 s) and then acknowledged"
    assert [r.value for r in producer.sent] == [raw, raw] and {r.topic for r in producer.sent} == {bridge.samples_topic}
    assert producer.events == [
        ("send", bridge.samples_topic),
        ("failed", bridge.samples_topic),
        ("send", bridge.samples_topic),
        ("confirmed", bridge.samples_topic),
        ("ack", 8),
    ]
    assert client.acks == [(8, 1)] and bridge.stats.forwarded == 1 and bridge.stats.dead_lettered == 0


def test_while_kafka_keeps_failing_the_message_stays_unacked_for_redelivery(make_bridge):
    producer = FakeProducer(failures=[KafkaTimeoutError("Kafka down")] * 100)
    bridge, client = make_bridge(producer)
    deliver(bridge, client, sample_payload(), mid=9)
    assert len(producer.sent) == 1 and client.acks == []
    bridge.request_stop()  # the resend armed by the failure (1 s) still goes out, and arms no other
    time.sleep(1.4)
    assert len(producer.sent) == 2 and bridge.stats.resent == 2, "tried again, then no resend loop after stop"
    assert client.acks == [] and bridge.stats.pending == 1, "unacknowledged: the broker redelivers it"


def test_message_arriving_while_stopping_is_neither_sent_nor_acked(make_bridge):
    producer = FakeProducer()
    bridge, client = make_bridge(producer)
    bridge.request_stop()
    deliver(bridge, client, sample_payload())
    assert producer.sent == [] and client.acks == [] and bridge.stats.received == 0


@pytest.mark.parametrize(
    "payload, topic, reason",
    [
        (b"not json", TOPIC, "bad JSON"),
        (b'{"v": 99}', TOPIC, "unknown schema version 99"),
        (None, f"{PREFIX}/Ga/GaPt04/GaPt04_01", "does not match payload"),
        ("stale", TOPIC, "clock_skew"),
    ],
)
def test_bad_payload_goes_to_the_dead_letter_topic_with_its_reason_then_is_acked(make_bridge, payload, topic, reason):
    raw = sample_payload() if payload is None else sample_payload(sent_at_ms=0) if payload == "stale" else payload
    producer = FakeProducer(hold=True)
    bridge, client = make_bridge(producer)
    deliver(bridge, client, raw, mid=11, topic=topic)
    [letter] = producer.sent
    assert letter.topic == bridge.dead_letter_topic and producer.to(bridge.samples_topic) == []
    assert letter.value == raw and letter.key == topic.encode()
    assert reason in letter.header["reason"].decode()
    assert letter.header["mqtt_topic"] == topic.encode() and letter.header["bridge"] == b"unit-bridge"
    assert client.acks == [], "a dead letter is acknowledged only once Kafka holds it"
    producer.confirm(letter)
    assert client.acks == [(11, 1)] and bridge.stats.dead_lettered == 1 and bridge.stats.forwarded == 0


def test_oversized_payload_is_dead_lettered_cut_with_its_length_and_digest(make_bridge):
    producer = FakeProducer()
    bridge, client = make_bridge(producer)
    raw = b"x" * (bridge.dead_letter_max_bytes + 1000)
    deliver(bridge, client, raw, mid=12)
    [letter] = producer.to(bridge.dead_letter_topic)
    assert letter.value == raw[: bridge.dead_letter_max_bytes] and letter.header["truncated"] == b"1"
    assert letter.header["original_length"] == str(len(raw)).encode()
    assert client.acks == [(12, 1)] and bridge.stats.truncated == 1


def test_record_kafka_refuses_is_dead_lettered_not_resent_forever(make_bridge):
    """Too large for Kafka: one more try (its batch may have been the problem), then a dead letter."""
    producer = FakeProducer(failures=[MessageSizeTooLargeError("too big"), MessageSizeTooLargeError("too big")])
    bridge, client = make_bridge(producer)
    raw = sample_payload()
    deliver(bridge, client, raw, mid=13)
    assert client.acked.wait(5)
    assert [r.topic for r in producer.sent] == [bridge.samples_topic, bridge.samples_topic, bridge.dead_letter_topic]
    letter = producer.sent[-1]
    assert letter.value == raw and letter.header["reason"].startswith(b"kafka_refused: MessageSizeTooLargeError")
    assert client.acks == [(13, 1)]
    assert bridge.stats.kafka_refused == 1 and bridge.stats.resent == 0 and bridge.stats.dead_lettered == 1


def test_qos0_message_is_forwarded_without_an_ack(make_bridge):
    producer = FakeProducer()
    bridge, client = make_bridge(producer)
    deliver(bridge, client, sample_payload(), qos=0)
    assert len(producer.to(bridge.samples_topic)) == 1 and client.acks == []


def test_the_brokers_drop_counter_is_counted_not_forwarded(make_bridge, caplog):
    """$SYS/broker/publish/messages/dropped (QoS 0) is Mosquitto's queue-overflow count: it goes to
    the stats and an error line, never to Kafka, and is not a received sample."""
    from bridge.bridge import SYS_DROPPED_TOPIC

    producer = FakeProducer()
    bridge, client = make_bridge(producer)
    deliver(bridge, client, b"0", mid=0, topic=SYS_DROPPED_TOPIC, qos=0)
    assert bridge.stats.broker_dropped == 0 and "dropped" not in caplog.text
    deliver(bridge, client, b"150", mid=0, topic=SYS_DROPPED_TOPIC, qos=0)
    assert bridge.stats.broker_dropped == 150 and "Mosquitto dropped 150 messages" in caplog.text
    assert producer.sent == [] and bridge.stats.received == 0
    assert "BROKER DROPPED 150" in bridge.stats.line(None, 1.0)
