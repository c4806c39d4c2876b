"""Kafka (KRaft single node): round trip on a fresh topic, pipeline topics exist, acked records
survive `stack/kafka.sh restart`."""

from __future__ import annotations

import uuid

import pytest

from gaitstream import clients
from gaitstream.health import kafka as kafka_health
from tests.conftest import run_stack

pytestmark = pytest.mark.integration


def _topic() -> str:
    return f"gs.test.{uuid.uuid4().hex[:12]}"


def test_health_check(stack):
    assert "round-trip ok" in kafka_health.check(stack)


def test_round_trip_on_unique_topic(stack):
    topic = _topic()
    assert clients.ensure_topic(stack, topic, 2) is True
    assert clients.ensure_topic(stack, topic, 2) is False  # idempotent
    sent = {}
    for partition in (0, 1):
        for i in range(3):
            value = f"{topic}/{partition}/{i}".encode()
            sent[(partition, kafka_health.produce(stack, topic, value, partition=partition))] = value
    assert sorted(sent) == [(p, o) for p in (0, 1) for o in range(3)]
    for (partition, offset), value in sent.items():
        assert kafka_health.read_at(stack, topic, partition, offset) == value


def test_pipeline_topics_exist_with_configured_partitions(stack):
    k = stack.kafka
    admin = clients.kafka_admin(stack, timeout_ms=5000)
    try:
        described = {t["topic"]: t for t in admin.describe_topics([k.samples_topic, k.dead_letter_topic])}
    finally:
        admin.close()
    for name in (k.samples_topic, k.dead_letter_topic):
        assert described[name]["error_code"] == 0, described[name]
        assert len(described[name]["partitions"]) == k.partitions


def test_acked_record_survives_restart(stack):
    topic = _topic()
    clients.ensure_topic(stack, topic, 1)
    value = uuid.uuid4().hex.encode()
    offset = kafka_health.produce(stack, topic, value)
    run_stack("kafka.sh", "restart")
    assert kafka_health.read_at(stack, topic, 0, offset) == value
    # and the broker takes new writes after the restart, after the old record
    assert kafka_health.produce(stack, topic, b"after") == offset + 1
