"""Mosquitto health: publish a QoS 1 message as the bridge and receive it back (over TLS with the
bridge's client certificate when ``mqtt.use_tls``, the default)."""

from __future__ import annotations

import threading
import uuid

from paho.mqtt.reasoncodes import ReasonCode

from gaitstream import clients
from gaitstream.config import Config

TIMEOUT_S = 3.0


def check(cfg: Config, user: str | None = None, password: str | None = None, transport: str | None = None) -> str:
    """``user``/``password``: another account on the plain listener (tests check a wrong one is refused)."""
    m = cfg.mqtt
    if user or password:
        transport = "tcp"
    topic = f"gs-health/{uuid.uuid4().hex}"
    payload = uuid.uuid4().bytes
    connected, received = threading.Event(), threading.Event()
    result: dict[str, ReasonCode] = {}

    def on_connect(client, userdata, flags, reason_code, properties):
        result["connect"] = reason_code
        if not reason_code.is_failure:
            client.subscribe(topic, qos=1)
        connected.set()

    def on_subscribe(client, userdata, mid, reason_codes, properties):
        client.publish(topic, payload, qos=1)

    def on_message(client, userdata, message):
        if message.payload == payload:
            received.set()

    client = clients.mqtt_client(cfg, "bridge", f"gs-health-{uuid.uuid4().hex[:8]}", transport=transport)
    if user or password:
        client.username_pw_set(user or m.bridge_user, password or m.bridge_password)
    client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, on_message
    clients.mqtt_connect(cfg, client, keepalive=10, transport=transport)
    client.loop_start()
    try:
        if not connected.wait(TIMEOUT_S):
            raise TimeoutError("no CONNACK")
        if result["connect"].is_failure:
            raise PermissionError(f"connection refused: {result['connect']}")
        if not received.wait(TIMEOUT_S):
            raise TimeoutError(f"QoS 1 message on {topic} not received back")
    finally:
        client.disconnect()
        client.loop_stop()
    kind = clients.mqtt_transport(cfg, transport)
    return f"mosquitto {m.host}:{clients.mqtt_port(cfg, transport)} ({kind}) QoS 1 round-trip ok"
