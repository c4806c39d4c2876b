"""Kafka health: produce one record with ``acks=all`` to a health topic, then read it back.

The record is read by partition and offset (no consumer group), so the check leaves no group
state behind. :func:`ensure_topic` is also what ``stack/kafka.sh`` uses to create the pipeline's
topics (the broker does not auto-create topics).
"""

from __future__ import annotations

import os
import time
import uuid

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from gaitstream import endpoints
from gaitstream.config import Config

HEALTH_TOPIC = "gs.health"
TIMEOUT_MS = 3000


def bootstrap(cfg: Config) -> str:
    return endpoints.kafka_bootstrap(cfg)


def _common(cfg: Config) -> dict:
    # api_version is probed once per client; a short probe keeps a down broker's check quick.
    return {
        "bootstrap_servers": bootstrap(cfg),
        "request_timeout_ms": TIMEOUT_MS,
        "api_version_auto_timeout_ms": TIMEOUT_MS,
        "client_id": f"gs-health-{os.getpid()}",
        **endpoints.kafka_python_security(cfg),
    }


def new_topic(cfg: Config, name: str, partitions: int = 1) -> NewTopic:
    """``name`` as the project creates every topic: ``kafka.replication_factor`` copies and
    ``kafka.min_insync_replicas`` (an ``acks=all`` write needs that many in-sync copies)."""
    replicas, min_insync = cfg.kafka.replication_factor, cfg.kafka.min_insync_replicas
    if not 1 <= min_insync <= replicas:
        raise ValueError(
            f"kafka.min_insync_replicas={min_insync} must be between 1 and kafka.replication_factor={replicas}"
        )
    return NewTopic(
        name,
        num_partitions=partitions,
        replication_factor=replicas,
        topic_configs={"min.insync.replicas": str(min_insync)},
    )


def ensure_topic(cfg: Config, name: str, partitions: int = 1) -> bool:
    """Create ``name`` (:func:`new_topic`) unless it exists; True when it was created.

    An existing topic is left as it is (change its settings with kafka-configs.sh)."""
    topic = new_topic(cfg, name, partitions)
    admin = KafkaAdminClient(**_common(cfg))
    try:
        if name in admin.list_topics():
            return False
        try:
            admin.create_topics([topic], timeout_ms=TIMEOUT_MS)
        except TopicAlreadyExistsError:
            return False
        return True
    finally:
        admin.close()


def produce(cfg: Config, topic: str, value: bytes, partition: int = 0, key: bytes | None = None) -> int:
    """Send one record with ``acks=all`` and wait for it; returns its offset."""
    producer = KafkaProducer(acks="all", max_block_ms=5000, retries=5, linger_ms=0, **_common(cfg))
    try:
        meta = producer.send(topic, value=value, key=key, partition=partition).get(timeout=10)
        return meta.offset
    finally:
        producer.close(timeout=5)


def read_at(cfg: Config, topic: str, partition: int, offset: int, timeout_s: float = 10.0) -> bytes:
    """The value of the record at ``topic``/``partition``/``offset``; raises if not read in time."""
    consumer = KafkaConsumer(group_id=None, enable_auto_commit=False, **_common(cfg))
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, offset)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for record in consumer.poll(timeout_ms=500).get(tp, []):
                if record.offset == offset:
                    return record.value
                if record.offset > offset:
                    raise RuntimeError(f"offset {offset} of {topic}/{partition} is gone (got {record.offset})")
        raise TimeoutError(f"record {topic}/{partition}@{offset} not read within {timeout_s}s")
    finally:
        consumer.close()


def check(cfg: Config) -> str:
    ensure_topic(cfg, HEALTH_TOPIC, 1)
    token = uuid.uuid4().hex.encode()
    offset = produce(cfg, HEALTH_TOPIC, token)
    got = read_at(cfg, HEALTH_TOPIC, 0, offset, timeout_s=5.0)
    if got != token:
        raise RuntimeError(f"read back {got!r} at offset {offset}, wrote {token!r}")
    return f"kafka {cfg.kafka.version} round-trip ok (topic {HEALTH_TOPIC} offset {offset})"
