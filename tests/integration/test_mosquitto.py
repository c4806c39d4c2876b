"""Mosquitto: QoS 1 round trip over TLS, refused credentials and certificates, per-device ACL,
queued messages survive a restart."""

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
    client = clients.mqtt_client(cfg, "bridge", client_id, clean_session=clean_session, transport="tcp")
    client.username_pw_set(user, password)
    done = threading.Event()
    client.on_connect = lambda *args: done.set()
    clients.mqtt_connect(cfg, client, transport="tcp")
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

    sub = clients.mqtt_client(stack, "bridge", sub_id, clean_session=False, transport="tcp")
    sub.on_message = on_message
    clients.mqtt_connect(stack, sub, transport="tcp")
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


# ------------------------------------------------------------------ TLS and device identities


def _device_publish(cfg, device: str, topics: list[str]) -> list[str]:
    """Publish one QoS 1 message to each topic as ``device``; the PUBACK reason of each."""
    client = clients.mqtt_client(cfg, "device", f"dev-{device}-{uuid.uuid4().hex[:6]}", device=device)
    reasons: dict[int, str] = {}
    connected = threading.Event()
    client.on_connect = lambda *args: connected.set()
    client.on_publish = lambda c, u, mid, reason_code, props: reasons.__setitem__(mid, str(reason_code))
    clients.mqtt_connect(cfg, client)
    client.loop_start()
    try:
        assert connected.wait(5), "no CONNACK"
        infos = [client.publish(topic, b"{}", qos=1) for topic in topics]
        for info in infos:
            info.wait_for_publish(5)
        return [reasons[info.mid] for info in infos]
    finally:
        _close(client)


def test_a_device_publishes_only_to_its_own_subject(stack, tmp_path):
    """`gaitstream devices add` issues a certificate whose CN is the subject; the ACL refuses
    another subject's topic (MQTT 5 "Not authorized"), and the bridge never sees it."""
    from click.testing import CliRunner

    from cli.main import main as cli_main

    mine, other = f"Dv{uuid.uuid4().hex[:8]}", f"Dv{uuid.uuid4().hex[:8]}"
    result = CliRunner().invoke(cli_main, ["devices", "add", mine])
    assert result.exit_code == 0 and "issued" in result.output, result.output
    again = CliRunner().invoke(cli_main, ["devices", "add", mine])
    assert "exists" in again.output  # idempotent
    ns = "/+" * stack.mqtt.acl_namespace_levels  # the test stack's one namespace level
    prefix = f"{stack.mqtt.topic_prefix}{'/ns' if ns else ''}"
    own, foreign = f"{prefix}/Ga/{mine}/{mine}_01", f"{prefix}/Ga/{other}/{other}_01"

    sub = clients.mqtt_client(stack, "bridge", f"acl-{uuid.uuid4().hex[:8]}")
    seen: list[str] = []
    subscribed = threading.Event()
    sub.on_subscribe = lambda *args: subscribed.set()
    sub.on_message = lambda c, u, msg: seen.append(msg.topic)
    clients.mqtt_connect(stack, sub)
    sub.loop_start()
    sub.subscribe(f"{prefix}/#", qos=1)
    assert subscribed.wait(5)
    try:
        reasons = _device_publish(stack, mine, [foreign, own, f"{stack.mqtt.topic_prefix}/x"])
        deadline = threading.Event()
        deadline.wait(1.0)
    finally:
        _close(sub)
    assert reasons[0] == "Not authorized" and reasons[2] == "Not authorized", reasons
    assert reasons[1] in ("Success", "No matching subscribers"), reasons
    assert seen == [own]


def test_tls_refuses_a_client_without_a_certificate_or_from_another_ca(stack, tmp_path):
    import ssl
    import subprocess

    from gaitstream import pki

    def connects(**tls) -> bool:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"intruder-{uuid.uuid4().hex[:6]}")
        client.tls_set(ca_certs=str(pki.ca_file(stack)), **tls)
        ok = threading.Event()
        client.on_connect = lambda c, u, f, rc, p: (not rc.is_failure) and ok.set()
        try:
            client.connect(stack.mqtt.host, stack.mqtt.tls_port)
        except (ssl.SSLError, OSError):
            return False
        client.loop_start()
        try:
            return ok.wait(3)
        finally:
            _close(client)

    assert not connects()  # no client certificate
    key, crt = tmp_path / "rogue.key", tmp_path / "rogue.crt"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", str(key), "-out", str(crt), "-days", "1", "-subj", f"/CN={stack.mqtt.bridge_user}"],
        check=True, capture_output=True,
    )  # fmt: skip
    assert not connects(certfile=str(crt), keyfile=str(key))  # self-signed, named like the bridge
    ident = pki.service_identity(stack, stack.mqtt.bridge_user)
    assert connects(certfile=str(ident.cert), keyfile=str(ident.key))  # the control


def test_a_device_name_that_is_not_a_subject_id_is_refused(stack):
    from gaitstream import pki

    for bad in ("a/b", "+", "#", stack.mqtt.bridge_user, ""):
        try:
            pki.add_device(stack, bad)
        except pki.PkiError:
            continue
        raise AssertionError(f"device name {bad!r} was accepted")
