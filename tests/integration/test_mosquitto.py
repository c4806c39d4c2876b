"""Mosquitto: authenticated QoS 1 round trip, refused credentials, queued messages survive a restart."""

from __future__ import annotations

import threading
import uuid

import paho.mqtt.client as mqtt
import pytest

from gaitstream import clients
from gaitstream.health import mosquitto as mosquitto_health
from tests.conftest import run_stack

pytestmark = pytest.mark.integration


def _connected(cfg, user: str, password: str, client_id: str, clean_session: bool) -> mqtt.Client:
    """An MQTT 3.1.1 client: mosquitto 2.0 restores 3.1.1 persistent sessions after a restart
    (MQTT 5 sessions with an expiry interval are dropped on restore), so the bridge uses 3.1.1."""
    client = clients.mqtt_client(cfg, "bridge", client_id, clean_session=clean_session)
    client.username_pw_set(user, password)
    done = threading.Event()
    client.on_connect = lambda *args: done.set()
    clients.mqtt_connect(cfg, client)
    client.loop_start()
    assert done.wait(5), "no CONNACK"
    return client


def _close(client: mqtt.Client) -> None:
    client.disconnect()
    client.loop_stop()


def test_round_trip(stack):
    assert "round-trip ok" in mosquitto_health.check(stack)


def test_wrong_password_is_refused(stack):
    with pytest.raises(PermissionError, match="refused"):
        mosquitto_health.check(stack, password="not-the-password")


def test_unknown_user_is_refused(stack):
    with pytest.raises(PermissionError):
        mosquitto_health.check(stack, user="mallory", password="x")


def test_queued_qos1_messages_survive_broker_restart(stack):
    """A persistent subscriber that is offline gets every QoS 1 message, even across a restart."""
    m = stack.mqtt
    topic = f"{m.topic_prefix}/test/{uuid.uuid4().hex}"
    sub_id = f"test-sub-{uuid.uuid4().hex[:8]}"
    n = 2000

    sub = _connected(stack, m.bridge_user, m.bridge_password, sub_id, clean_session=False)
    subscribed = threading.Event()
    sub.on_subscribe = lambda *args: subscribed.set()
    sub.subscribe(topic, qos=1)
    assert subscribed.wait(5)
    _close(sub)

    pub = _connected(stack, m.replay_user, m.replay_password, f"test-pub-{uuid.uuid4().hex[:8]}", True)
    for info in [pub.publish(topic, str(i).encode(), qos=1) for i in range(n)]:
        info.wait_for_publish(10)
    _close(pub)

    run_stack("mosquitto.sh", "restart")

    received: set[int] = set()
    all_in = threading.Event()

    def on_message(client, userdata, message):
        received.add(int(message.payload))
        if len(received) == n:
            all_in.set()

    sub = clients.mqtt_client(stack, "bridge", sub_id, clean_session=False)
    sub.on_message = on_message
    clients.mqtt_connect(stack, sub)
    sub.loop_start()
    all_in.wait(20)
    _close(sub)
    assert sorted(received) == list(range(n))


def test_replayer_cannot_read_sensor_topics(stack):
    """ACL: the replayer publishes, only the bridge reads (the bridge receiving is the control)."""
    m = stack.mqtt
    topic = f"{m.topic_prefix}/test/{uuid.uuid4().hex}"
    subscribers, inboxes, arrived = {}, {}, threading.Event()
    for role in ("replay", "bridge"):
        client = _connected(stack, *clients.mqtt_credentials(stack, role), f"{role}-{uuid.uuid4().hex[:8]}", True)
        inboxes[role] = []
        subscribed = threading.Event()
        client.on_subscribe = lambda *args, ev=subscribed: ev.set()
        client.on_message = lambda c, u, msg, box=inboxes[role], role=role: (
            box.append(msg.payload),
            role == "bridge" and arrived.set(),
        )
        client.subscribe(topic, qos=1)
        assert subscribed.wait(5)
        subscribers[role] = client
    pub = _connected(stack, m.replay_user, m.replay_password, f"pub-{uuid.uuid4().hex[:8]}", True)
    pub.publish(topic, b"sample", qos=1).wait_for_publish(5)
    assert arrived.wait(5), "the bridge user did not receive the message"
    for client in (pub, *subscribers.values()):
        _close(client)
    assert inboxes["bridge"] == [b"sample"]
    assert inboxes["replay"] == []
