"""The MQTT → Kafka bridge: the only process between the two brokers.

Delivery contract: an MQTT message is acknowledged (PUBACK) only after Kafka has confirmed the
record with ``acks=all``. If the bridge dies, the broker redelivers every unacknowledged message
of its persistent session (MQTT 3.1.1, clean_session=False, fixed client id): at-least-once.
Duplicates are removed downstream by (walk, sequence number).

A payload that fails :func:`bridge.payload.validate` goes to the dead-letter topic with its
original bytes as the value and the reason and MQTT topic as headers, then is acknowledged.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from kafka import KafkaProducer
from kafka.errors import KafkaError, NoBrokersAvailable
from tenacity import before_sleep_log, retry, retry_if_exception_type, wait_exponential

from bridge import payload as payload_schema
from gaitstream import endpoints
from gaitstream.config import Config
from gaitstream.health.kafka import ensure_topic

log = logging.getLogger("gaitstream.bridge")


@dataclass
class BridgeStats:
    """Counters shared by the MQTT and Kafka threads (ints: updates are atomic under the GIL)."""

    received: int = 0
    forwarded: int = 0
    dead_lettered: int = 0
    resent: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def pending(self) -> int:
        return self.received - self.forwarded - self.dead_lettered

    def line(self, since: "BridgeStats | None", seconds: float) -> str:
        rate = (self.forwarded - (since.forwarded if since else 0)) / max(seconds, 1e-9)
        return (f"received {self.received} msgs, to Kafka {self.forwarded} ({rate:.0f}/s), "
                f"dead-lettered {self.dead_lettered}, resent {self.resent}, awaiting Kafka {self.pending}")


@retry(retry=retry_if_exception_type(NoBrokersAvailable), wait=wait_exponential(max=10),
       before_sleep=before_sleep_log(log, logging.WARNING))
def make_producer(cfg: Config) -> KafkaProducer:
    """An idempotent, acks=all producer; waits (with backoff) until Kafka is reachable."""
    return KafkaProducer(
        bootstrap_servers=endpoints.kafka_bootstrap(cfg),
        **endpoints.kafka_python_security(cfg),
        acks="all",
        enable_idempotence=True,
        retries=2**31 - 1,
        max_in_flight_requests_per_connection=1,  # kafka-python requires 1 for idempotence
        linger_ms=5,
        batch_size=512 * 1024,
        delivery_timeout_ms=int(cfg.bridge["delivery_timeout"]) * 1000,
        request_timeout_ms=10_000,
        reconnect_backoff_max_ms=2_000,
        client_id=cfg.bridge["client_id"],
    )


class Bridge:
    """Subscribes to the sensor topics and forwards each message to Kafka before acking it."""

    def __init__(self, cfg: Config, client_id: str | None = None, shared_group: str | None = None):
        self.cfg = cfg
        self.client_id = client_id or cfg.bridge["client_id"]
        group = cfg.bridge["shared_group"] if shared_group is None else shared_group
        # Exactly <prefix>/<study>/<subject>/<walk>: deeper topics (another deployment's or a test's
        # prefix below ours) are not this bridge's traffic.
        pattern = f"{cfg.mqtt['topic_prefix']}/+/+/+"
        self.subscription = f"$share/{group}/{pattern}" if group else pattern
        self.samples_topic = cfg.kafka["samples_topic"]
        self.dead_letter_topic = cfg.kafka["dead_letter_topic"]
        self.stats = BridgeStats()
        self.stopping = threading.Event()
        self.connected = threading.Event()
        self.refused = False
        self.producer: KafkaProducer | None = None
        self.mqtt = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id,
                                protocol=mqtt.MQTTv311, clean_session=False, manual_ack=True)
        self.mqtt.username_pw_set(cfg.mqtt["bridge_user"], cfg.mqtt["bridge_password"])
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
        log.info("connected to MQTT %s:%s as %s (session present: %s); subscribing %s",
                 self.cfg.mqtt["host"], self.cfg.mqtt["port"], self.client_id,
                 flags.session_present, self.subscription)
        client.subscribe(self.subscription, qos=1)
        self.connected.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self.connected.clear()
        if not self.stopping.is_set():
            log.warning("MQTT disconnected (%s); reconnecting", reason_code)

    def _on_message(self, client, userdata, message: mqtt.MQTTMessage):
        if self.stopping.is_set():
            return  # not acknowledged: the broker redelivers it to the next session
        self.stats.received += 1
        raw = bytes(message.payload)
        try:
            batch = payload_schema.validate(
                raw, max_bytes=int(self.cfg.bridge["max_payload_bytes"]),
                max_samples=int(self.cfg.bridge["max_samples_per_message"]),
                mqtt_topic=message.topic, topic_prefix=self.cfg.mqtt["topic_prefix"])
        except payload_schema.InvalidPayload as exc:
            self._dead_letter(message, raw, str(exc))
            return
        self._send(self.samples_topic, payload_schema.kafka_key(batch), raw, None, message, dead=False)

    # --- Kafka side ------------------------------------------------------------------------
    def _dead_letter(self, message: mqtt.MQTTMessage, raw: bytes, reason: str) -> None:
        headers = [("reason", reason.encode()), ("mqtt_topic", message.topic.encode()),
                   ("received_at_ms", str(int(time.time() * 1000)).encode()),
                   ("bridge", self.client_id.encode())]
        log.debug("dead letter from %s: %s", message.topic, reason)
        self._send(self.dead_letter_topic, message.topic.encode()[:1024], raw, headers, message, dead=True)

    def _send(self, topic: str, key: bytes, value: bytes, headers, message: mqtt.MQTTMessage, dead: bool) -> None:
        """Produce, and acknowledge the MQTT message from the delivery callback; resend on failure."""
        assert self.producer is not None
        future = self.producer.send(topic, key=key, value=value, headers=headers)

        def delivered(_metadata):
            if dead:
                self.stats.dead_lettered += 1
            else:
                self.stats.forwarded += 1
            if message.qos > 0:
                self.mqtt.ack(message.mid, message.qos)

        def failed(exc: Exception):
            self.stats.resent += 1
            log.warning("Kafka did not confirm a record for %s (%s: %s); sending it again",
                        message.topic, type(exc).__name__, exc)
            if not self.stopping.is_set():
                threading.Timer(1.0, self._send, (topic, key, value, headers, message, dead)).start()

        future.add_callback(delivered)
        future.add_errback(failed)

    # --- lifecycle -------------------------------------------------------------------------
    def run(self) -> int:
        """Connect both sides and forward until SIGTERM/SIGINT; returns the exit status."""
        k = self.cfg.kafka
        log.info("waiting for Kafka at %s", endpoints.kafka_bootstrap(self.cfg))
        self.producer = make_producer(self.cfg)
        for topic in (self.samples_topic, self.dead_letter_topic):
            ensure_topic(self.cfg, topic, int(k["partitions"]))
        self.mqtt.connect_async(self.cfg.mqtt["host"], int(self.cfg.mqtt["port"]),
                                keepalive=int(self.cfg.bridge["keepalive"]))
        self.mqtt.loop_start()
        interval = float(self.cfg.bridge["stats_interval"])
        last, last_t = BridgeStats(**{**self.stats.__dict__}), time.monotonic()
        self.write_stats(0.0)
        try:
            while not self.stopping.wait(interval):
                now = time.monotonic()
                rate = (self.stats.forwarded - last.forwarded) / max(now - last_t, 1e-9)
                log.info(self.stats.line(last, now - last_t))
                self.write_stats(rate)
                last, last_t = BridgeStats(**{**self.stats.__dict__}), now
        finally:
            self.shutdown()
        return 1 if self.refused else 0

    def write_stats(self, rate: float) -> None:
        """Atomically rewrite the stats file (a heartbeat: its timestamp says the bridge is alive)."""
        path = self.cfg.path("bridge.stats_file")
        path.parent.mkdir(parents=True, exist_ok=True)
        doc = {"client_id": self.client_id, "pid": os.getpid(), "updated_at": time.time(),
               "mqtt_connected": self.connected.is_set(), "received": self.stats.received,
               "forwarded": self.stats.forwarded, "dead_lettered": self.stats.dead_lettered,
               "resent": self.stats.resent, "pending": self.stats.pending, "forwarded_per_s": round(rate, 1)}
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, path)

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
