"""The MQTT → Kafka bridge: the only process between the two brokers.

Delivery contract: an MQTT message is acknowledged (PUBACK) only after Kafka has confirmed the
record with ``acks=all``. If the bridge dies, the broker redelivers every unacknowledged message
of its persistent session (MQTT 3.1.1, clean_session=False, fixed client id): at-least-once.
Duplicates are removed downstream by (walk, sequence number).

A payload that fails :func:`bridge.payload.validate`, whose ``sent_at_ms`` is too far from the
bridge's clock (``clock_skew``) or that would open one walk too many for its subject
(``too_many_walks``, :class:`bridge.limits.OpenWalks`) goes to the dead-letter topic with its
original bytes as the value (cut at ``bridge.dead_letter_max_bytes``; ``original_length`` and
``original_sha256`` headers describe the whole) and the reason and MQTT topic as headers, then is
acknowledged. A record Kafka refuses for what it is (too large, invalid) is never resent: it is
dead-lettered (``kafka_refused``); only failures that can heal (Kafka down, timeouts) are resent.
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from kafka import KafkaProducer
from kafka.errors import (
    CorruptRecordError,
    InvalidRecordError,
    KafkaError,
    MessageSizeTooLargeError,
    NoBrokersAvailable,
    RecordListTooLargeError,
    UnsupportedForMessageFormatError,
)
from tenacity import before_sleep_log, retry, retry_if_exception_type, wait_exponential

from bridge import metrics
from bridge import payload as payload_schema
from bridge.limits import OpenWalks
from gaitstream import clients, endpoints, heartbeats
from gaitstream.config import Config

log = logging.getLogger("gaitstream.bridge")

# Kafka refuses the record itself: sending the same bytes again can never succeed.
RECORD_REFUSED = (
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    InvalidRecordError,
    CorruptRecordError,
    UnsupportedForMessageFormatError,
)
# Mosquitto's count of messages it dropped (a client's queue beyond mqtt.max_queued_messages), a
# retained $SYS value re-published every sys_interval when it changes.
SYS_DROPPED_TOPIC = "$SYS/broker/publish/messages/dropped"
# A dead letter Kafka refused is sent once more with at most this much of the payload.
LAST_RESORT_BYTES = 1024
HEADER_MAX_BYTES = 1024


@dataclass
class BridgeStats:
    """Counters shared by the MQTT and Kafka threads (ints: updates are atomic under the GIL)."""

    received: int = 0
    forwarded: int = 0
    dead_lettered: int = 0
    resent: int = 0
    clock_skew: int = 0  # dead-lettered: sent_at_ms too far from the bridge's clock
    too_many_walks: int = 0  # dead-lettered: one walk more than bridge.max_open_walks_per_subject
    kafka_refused: int = 0  # records Kafka refused as such (too large, invalid), dead-lettered instead
    truncated: int = 0  # dead letters stored cut at bridge.dead_letter_max_bytes
    dead_letter_failed: int = 0  # acknowledged though even the last-resort dead letter was refused
    open_walks: int = 0  # walks seen within bridge.walk_idle_seconds (at the last stats line)
    redelivered: int = 0  # messages the broker sent again (MQTT DUP flag): unacknowledged when a session ended
    broker_dropped: int = 0  # Mosquitto's count of messages it dropped since it started (a queue overflowed)
    started: float = field(default_factory=time.monotonic)

    @property
    def pending(self) -> int:
        return self.received - self.forwarded - self.dead_lettered - self.dead_letter_failed

    def line(self, since: BridgeStats | None, seconds: float) -> str:
        rate = (self.forwarded - (since.forwarded if since else 0)) / max(seconds, 1e-9)
        return (
            f"received {self.received} msgs, to Kafka {self.forwarded} ({rate:.0f}/s), "
            f"dead-lettered {self.dead_lettered} (clock skew {self.clock_skew}, too many walks "
            f"{self.too_many_walks}, refused by Kafka {self.kafka_refused}, truncated {self.truncated}), "
            f"resent {self.resent}, awaiting Kafka {self.pending}"
            + (f", BROKER DROPPED {self.broker_dropped}" if self.broker_dropped else "")
        )

    def counters(self) -> dict[str, int]:
        """Every counter, for the stats file."""
        return {name: value for name, value in self.__dict__.items() if name != "started"}


def dead_letter_record(
    raw: bytes, reason: str, mqtt_topic: str, bridge_id: str, max_bytes: int, received_at_ms: int | None = None
) -> tuple[bytes, list[tuple[str, bytes]]]:
    """The dead letter of ``raw``: (value, headers), the value cut at ``max_bytes``.

    Headers: ``reason``, ``mqtt_topic``, ``received_at_ms``, ``bridge``, ``original_length`` and
    ``original_sha256`` (of the whole payload), and ``truncated`` = ``1`` when the value was cut.
    Text headers are cut at 1 KiB, so a dead letter's size is bounded whatever came in.
    """
    received_at_ms = int(time.time() * 1000) if received_at_ms is None else received_at_ms
    headers = [
        ("reason", reason.encode()[:HEADER_MAX_BYTES]),
        ("mqtt_topic", mqtt_topic.encode()[:HEADER_MAX_BYTES]),
        ("received_at_ms", str(received_at_ms).encode()),
        ("bridge", bridge_id.encode()[:HEADER_MAX_BYTES]),
        ("original_length", str(len(raw)).encode()),
        ("original_sha256", hashlib.sha256(raw).hexdigest().encode()),
    ]
    if len(raw) > max_bytes:
        headers.append(("truncated", b"1"))
        return raw[:max_bytes], headers
    return raw, headers


@retry(
    retry=retry_if_exception_type(NoBrokersAvailable),
    wait=wait_exponential(max=10),
    before_sleep=before_sleep_log(log, logging.WARNING),
)
def make_producer(cfg: Config) -> KafkaProducer:
    """An idempotent, acks=all producer; waits (with backoff) until Kafka is reachable."""
    return clients.kafka_producer(
        cfg,
        acks="all",
        enable_idempotence=True,
        retries=2**31 - 1,
        max_in_flight_requests_per_connection=1,  # kafka-python requires 1 for idempotence
        linger_ms=5,
        batch_size=512 * 1024,
        delivery_timeout_ms=cfg.bridge.delivery_timeout * 1000,
        request_timeout_ms=10_000,
        reconnect_backoff_max_ms=2_000,
        client_id=cfg.bridge.client_id,
    )


class Bridge:
    """Subscribes to the sensor topics and forwards each message to Kafka before acking it."""

    def __init__(
        self,
        cfg: Config,
        client_id: str | None = None,
        shared_group: str | None = None,
        producer: KafkaProducer | None = None,
        mqtt_client: mqtt.Client | None = None,
    ):
        """``producer`` and ``mqtt_client`` are for tests (in-memory fakes); by default :meth:`run`
        makes the producer and the paho client is built here."""
        self.cfg = cfg
        self.client_id = client_id or cfg.bridge.client_id
        group = cfg.bridge.shared_group if shared_group is None else shared_group
        # Exactly <prefix>/<study>/<subject>/<walk>: deeper topics (another deployment's or a test's
        # prefix below ours) are not this bridge's traffic.
        pattern = f"{cfg.mqtt.topic_prefix}/+/+/+"
        self.subscription = f"$share/{group}/{pattern}" if group else pattern
        self.samples_topic = cfg.kafka.samples_topic
        self.dead_letter_topic = cfg.kafka.dead_letter_topic
        b = cfg.bridge
        self.dead_letter_max_bytes = b.dead_letter_max_bytes
        self.max_clock_ahead_s = b.max_clock_ahead_seconds
        self.max_clock_behind_s = b.max_clock_behind_seconds
        self.open_walks = OpenWalks(b.max_open_walks_per_subject, b.walk_idle_seconds)
        self.stats = BridgeStats()
        self.stopping = threading.Event()
        self.connected = threading.Event()
        self.refused = False
        self.producer: KafkaProducer | None = producer
        self.mqtt = (
            mqtt_client
            if mqtt_client is not None
            else clients.mqtt_client(cfg, "bridge", self.client_id, clean_session=False, manual_ack=True)
        )
        self.mqtt.reconnect_delay_set(min_delay=1, max_delay=10)
        self.mqtt.on_connect = self._on_connect
        self.mqtt.on_disconnect = self._on_disconnect
        self.mqtt.on_message = self._on_message

    # --- MQTT side -------------------------------------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            log.error("MQTT connection refused: %s", reason_code)
            if reason_code.value in (4, 5, 134, 135):  # bad credentials / not authorised
                self.refused = True
                self.stopping.set()
            return
        log.info(
            "connected to MQTT %s:%s as %s (session present: %s); subscribing %s",
            self.cfg.mqtt.host,
            clients.mqtt_port(self.cfg),
            self.client_id,
            flags.session_present,
            self.subscription,
        )
        client.subscribe([(self.subscription, 1), (SYS_DROPPED_TOPIC, 0)])
        self.connected.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self.connected.clear()
        if not self.stopping.is_set():
            log.warning("MQTT disconnected (%s); reconnecting", reason_code)

    def _on_message(self, client, userdata, message: mqtt.MQTTMessage):
        if message.topic == SYS_DROPPED_TOPIC:
            self._broker_dropped(message.payload)
            return
        if self.stopping.is_set():
            return  # not acknowledged: the broker redelivers it to the next session
        self.stats.received += 1
        self.stats.redelivered += bool(message.dup)
        received_at_ms = int(time.time() * 1000)
        raw = bytes(message.payload)
        try:
            batch = payload_schema.validate(
                raw,
                max_bytes=self.cfg.bridge.max_payload_bytes,
                max_samples=self.cfg.bridge.max_samples_per_message,
                mqtt_topic=message.topic,
                topic_prefix=self.cfg.mqtt.topic_prefix,
            )
        except payload_schema.InvalidPayload as exc:
            self._dead_letter(message, raw, str(exc), received_at_ms)
            return
        try:
            payload_schema.check_clock_skew(
                batch, received_at_ms, max_ahead_s=self.max_clock_ahead_s, max_behind_s=self.max_clock_behind_s
            )
        except payload_schema.InvalidPayload as exc:
            self.stats.clock_skew += 1
            self._dead_letter(message, raw, str(exc), received_at_ms)
            return
        if not self.open_walks.admit(batch.subject_id, batch.walk_id):
            self.stats.too_many_walks += 1
            self._dead_letter(
                message,
                raw,
                f"too_many_walks: subject {batch.subject_id} already has "
                f"{self.open_walks.max_per_subject} open walks (idle < "
                f"{self.open_walks.idle_seconds:g} s); walk {batch.walk_id} refused",
                received_at_ms,
            )
            return
        self._send(self.samples_topic, payload_schema.kafka_key(batch), raw, None, message, "sample")

    def _broker_dropped(self, payload: bytes) -> None:
        """Queue overflow in the broker is never silent: counted, logged as an error, alarmed by
        the bridge's health check and the dashboard."""
        try:
            dropped = int(payload)
        except ValueError:
            return
        if dropped > self.stats.broker_dropped:
            log.error(
                "Mosquitto dropped %d messages since it started (a queue beyond mqtt.max_queued_messages)", dropped
            )
        self.stats.broker_dropped = dropped

    # --- Kafka side ------------------------------------------------------------------------
    def _dead_letter(
        self,
        message: mqtt.MQTTMessage,
        raw: bytes,
        reason: str,
        received_at_ms: int | None = None,
        last_resort: bool = False,
    ) -> None:
        value, headers = dead_letter_record(
            raw,
            reason,
            message.topic,
            self.client_id,
            LAST_RESORT_BYTES if last_resort else self.dead_letter_max_bytes,
            received_at_ms,
        )
        if len(value) < len(raw):
            self.stats.truncated += 1
        log.debug("dead letter from %s: %s", message.topic, reason)
        self._send(
            self.dead_letter_topic,
            message.topic.encode()[:HEADER_MAX_BYTES],
            value,
            headers,
            message,
            "last resort" if last_resort else "dead letter",
            raw,
        )

    def _send(
        self,
        topic: str,
        key: bytes,
        value: bytes,
        headers,
        message: mqtt.MQTTMessage,
        kind: str,
        original: bytes | None = None,
    ) -> None:
        """Produce, and acknowledge the MQTT message from the delivery callback.

        ``kind`` is ``sample`` (``sample again`` after one refusal), ``dead letter`` or ``last
        resort``. A failure that can heal is resent after a second; a record Kafka refuses as such
        goes to the dead letter (a refused dead letter once more, cut to 1 KiB), so every message
        is eventually acknowledged.
        """
        assert self.producer is not None
        future = self.producer.send(topic, key=key, value=value, headers=headers)

        def delivered(_metadata):
            if kind.startswith("sample"):
                self.stats.forwarded += 1
            else:
                self.stats.dead_lettered += 1
            if message.qos > 0:
                self.mqtt.ack(message.mid, message.qos)

        def failed(exc: Exception):
            if isinstance(exc, RECORD_REFUSED):
                # Not in Kafka's I/O thread: producing from there could wait on itself for metadata.
                threading.Thread(
                    target=self._refused, args=(exc, topic, key, value, headers, message, kind, original), daemon=True
                ).start()
                return
            self.stats.resent += 1
            log.warning(
                "Kafka did not confirm a record for %s (%s: %s); sending it again",
                message.topic,
                type(exc).__name__,
                exc,
            )
            if not self.stopping.is_set():
                threading.Timer(1.0, self._send, (topic, key, value, headers, message, kind, original)).start()

        future.add_callback(delivered)
        future.add_errback(failed)

    def _refused(
        self,
        exc: Exception,
        topic: str,
        key: bytes,
        value: bytes,
        headers,
        message: mqtt.MQTTMessage,
        kind: str,
        original: bytes | None,
    ) -> None:
        """Kafka refused the record itself: dead-letter it instead of sending it again.

        A sample record gets one more try first: the broker refuses a whole batch when the batch
        is too large, so a valid record may have been refused for its neighbours (kafka-python does
        not split batches). That cannot happen while the producer's batch_size (512 KiB) plus
        ``bridge.max_payload_bytes`` stays below the topic's max.message.bytes.
        """
        why = f"{type(exc).__name__}: {exc}"
        if kind == "sample":
            log.info("Kafka refused a record from %s (%s); sending it once more", message.topic, why)
            self._send(topic, key, value, headers, message, "sample again", original)
            return
        self.stats.kafka_refused += 1
        if kind == "sample again":
            log.warning("Kafka refused a record from %s (%s); dead-lettering it", message.topic, why)
            self._dead_letter(message, value, f"kafka_refused: {why}")
        elif kind == "dead letter":
            first = dict(headers).get("reason", b"").decode(errors="replace")
            log.error(
                "Kafka refused a dead letter from %s (%s); sending its first %d bytes",
                message.topic,
                why,
                LAST_RESORT_BYTES,
            )
            self._dead_letter(
                message,
                original if original is not None else value,
                f"kafka_refused: {why}; dead-letter reason: {first}",
                last_resort=True,
            )
        else:
            self.stats.dead_letter_failed += 1
            log.error(
                "Kafka refused even the last-resort dead letter from %s (%s); acknowledging it: this message is lost",
                message.topic,
                why,
            )
            if message.qos > 0:
                self.mqtt.ack(message.mid, message.qos)

    # --- lifecycle -------------------------------------------------------------------------
    def run(self) -> int:
        """Connect both sides and forward until SIGTERM/SIGINT; returns the exit status."""
        k = self.cfg.kafka
        log.info("waiting for Kafka at %s", endpoints.kafka_bootstrap(self.cfg))
        if self.producer is None:
            self.producer = make_producer(self.cfg)
        for topic in (self.samples_topic, self.dead_letter_topic):
            clients.ensure_topic(self.cfg, topic, k.partitions)
        self.mqtt.connect_async(self.cfg.mqtt.host, clients.mqtt_port(self.cfg), keepalive=self.cfg.bridge.keepalive)
        self.mqtt.loop_start()
        interval = float(self.cfg.bridge.stats_interval)
        last, last_t = BridgeStats(**{**self.stats.__dict__}), time.monotonic()
        self.write_stats(0.0)
        try:
            while not self.stopping.wait(interval):
                now = time.monotonic()
                rate = (self.stats.forwarded - last.forwarded) / max(now - last_t, 1e-9)
                _subjects, self.stats.open_walks = self.open_walks.sweep()
                log.info(self.stats.line(last, now - last_t))
                self.write_stats(rate)
                last, last_t = BridgeStats(**{**self.stats.__dict__}), now
        finally:
            self.shutdown()
        return 1 if self.refused else 0

    def write_stats(self, rate: float) -> None:
        """Atomically rewrite the stats file (a heartbeat: its timestamp says the bridge is alive)."""
        path = heartbeats.bridge(self.cfg).path
        doc = {
            "client_id": self.client_id,
            "pid": os.getpid(),
            "updated_at": time.time(),
            "mqtt_connected": self.connected.is_set(),
            **self.stats.counters(),
            "pending": self.stats.pending,
            "forwarded_per_s": round(rate, 1),
        }
        heartbeats.write(path, doc)
        metrics.write_textfile(path, doc)  # the same numbers in Prometheus text format, <stem>.prom

    def request_stop(self, *_args) -> None:
        self.stopping.set()

    def shutdown(self) -> None:
        """Stop taking messages, let Kafka confirm what is in flight, send those acks, disconnect."""
        self.stopping.set()
        if self.producer is not None:
            try:
                self.producer.flush(timeout=30)
            except KafkaError as exc:
                log.warning("flush incomplete (%s): unacknowledged messages will be redelivered", exc)
        time.sleep(0.5)  # let the network loop write the last PUBACKs
        self.mqtt.disconnect()
        self.mqtt.loop_stop()
        if self.producer is not None:
            self.producer.close(timeout=10)
        log.info("stopped: %s", self.stats.line(None, time.monotonic() - self.stats.started))


def run_bridge(cfg: Config, client_id: str | None = None, shared_group: str | None = None) -> int:
    bridge = Bridge(cfg, client_id=client_id, shared_group=shared_group)
    signal.signal(signal.SIGTERM, bridge.request_stop)
    signal.signal(signal.SIGINT, bridge.request_stop)
    return bridge.run()
