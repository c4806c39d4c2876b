"""Kafka health: produce one record with ``acks=all`` to a health topic, then read it back.

The record is read by partition and offset (no consumer group), so the check leaves no group
state behind. Clients and topic creation come from :mod:`gaitstream.clients`. With ``kafka.nodes``
(several brokers) every configured broker must first be in the cluster metadata, at its address;
the check fails naming the ones that are not.
"""

from __future__ import annotations

import time
import uuid

from kafka import TopicPartition

from gaitstream import clients, kafka_nodes
from gaitstream.config import Config

HEALTH_TOPIC = "gs.health"


def produce(cfg: Config, topic: str, value: bytes, partition: int = 0, key: bytes | None = None) -> int:
    """Send one record with ``acks=all`` and wait for it; returns its offset."""
    producer = clients.kafka_producer(cfg, max_block_ms=5000, retries=5, linger_ms=0)
    try:
        meta = producer.send(topic, value=value, key=key, partition=partition).get(timeout=10)
        return meta.offset
    finally:
        producer.close(timeout=5)


def read_at(cfg: Config, topic: str, partition: int, offset: int, timeout_s: float = 10.0) -> bytes:
    """The value of the record at ``topic``/``partition``/``offset``; raises if not read in time."""
    consumer = clients.kafka_consumer(cfg)
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


def check_members(cfg: Config) -> str:
    """For ``kafka.nodes``: every configured broker is in the cluster metadata (raises naming the
    missing ones); returns a summary, empty for a single broker."""
    if not cfg.kafka.nodes:
        return ""
    present = kafka_nodes.members(cfg)
    gone = kafka_nodes.missing(cfg, present)
    if gone:
        listed = ", ".join(f"{i} ({present[i]})" for i in sorted(present)) or "none"
        raise RuntimeError(f"not in the cluster metadata: {', '.join(str(n) for n in gone)} (brokers listed: {listed})")
    return f", {len(present)} brokers in the cluster"


def check(cfg: Config) -> str:
    brokers = check_members(cfg)
    clients.ensure_topic(cfg, HEALTH_TOPIC, 1)
    token = uuid.uuid4().hex.encode()
    offset = produce(cfg, HEALTH_TOPIC, token)
    got = read_at(cfg, HEALTH_TOPIC, 0, offset, timeout_s=5.0)
    if got != token:
        raise RuntimeError(f"read back {got!r} at offset {offset}, wrote {token!r}")
    return f"kafka {cfg.kafka.version} round-trip ok (topic {HEALTH_TOPIC} offset {offset}{brokers})"
