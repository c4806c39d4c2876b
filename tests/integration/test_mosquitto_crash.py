"""kill -9 of Mosquitto while devices stream (issue 12, item 6): what it loses, and that the devices'
resend window makes it nothing.

Mosquitto acknowledges a QoS 1 publish once the message is in its memory and writes its state to
disk every ``mqtt.autosave_interval_seconds``: a kill -9 forgets what arrived since, including
messages not yet delivered to the bridge. A device keeps what it sent in the last
``replay.resend_window_seconds`` and sends it again after any reconnect; duplicates are removed
downstream. Measured here through the real broker and bridge, with the accounting done on Kafka:
(a) the bridge up, (b) the bridge down with a backlog, and (b) again with the window off, the
control that shows the fault really loses messages. And a queue overflow is counted and alarmed.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from bridge import replay
from gaitstream.health import bridge as bridge_health
from tests.conftest import run_stack
from tests.integration.pipeline import (
    BridgeProcess,
    expected_pairs,
    isolated_config,
    read_topic,
    replay_in_thread,
)

pytestmark = pytest.mark.integration

SPEED = 4.0  # 8 walks at 4x real time: ~25 s of traffic, 3,200 samples/s


@pytest.fixture(scope="module")
def walks(stack):
    from gaitstream import gaitpdb

    folder = stack.path("data.gaitpdb_dir")
    return folder, gaitpdb.list_walks(folder)[0]


def kill_mosquitto_hard(cfg) -> None:
    """kill -9 the broker (what a crash looks like), then start it again from its last autosave."""
    pid = int((cfg.runtime_dir / "run" / "mosquitto.pid").read_text())
    os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    run_stack("mosquitto.sh", "start")


def _chosen(walks):
    folder, refs = walks
    return folder, replay.select_walks(refs, studies=["Ga"], one_per_subject=True)[:8]


def _lost(cfg, report) -> set[tuple[str, int]]:
    everything = expected_pairs(report.per_walk)
    contents = read_topic(cfg, cfg.kafka.samples_topic, until=lambda c: everything <= c.distinct(), timeout=120)
    return everything - contents.distinct()


def test_bridge_up_a_broker_crash_loses_nothing(stack, walks, tmp_path):
    folder, chosen = _chosen(walks)
    cfg, env = isolated_config()
    bridge = BridgeProcess(env, tmp_path / "bridge.log").start()
    try:
        thread, result = replay_in_thread(cfg, chosen, folder, batch_size=10, speed=SPEED)
        threading.Event().wait(8)  # mid-stream
        kill_mosquitto_hard(cfg)
        thread.join(300)
        report = result["report"]
        lost = _lost(cfg, report)
        print(f"(a) bridge up: {len(lost)} of {report.samples} samples lost, {report.resent} messages resent")
    finally:
        bridge.stop()
    assert report.reconnects >= len(chosen), "the crash did not hit the devices mid-stream"
    assert report.resent > 0 and not report.interrupted
    assert not lost, f"{len(lost)} samples lost, e.g. {sorted(lost)[:5]}"


@pytest.mark.parametrize("window", ["default", "0"])
def test_bridge_down_a_broker_crash_loses_only_what_the_window_does_not_cover(stack, walks, tmp_path, window):
    """The backlog since the last autosave dies with the broker: with the window (default) the
    devices send it again and nothing is lost; without it (the control) samples are lost."""
    folder, chosen = _chosen(walks)
    extra = {} if window == "default" else {"GAITSTREAM_REPLAY_RESEND_WINDOW_SECONDS": "0"}
    cfg, env = isolated_config(**extra)
    # the bridge's persistent session (kept) queues the backlog while it is down
    BridgeProcess(env, tmp_path / "bridge.log").start().stop(keep_session=True)
    thread, result = replay_in_thread(cfg, chosen, folder, batch_size=10, speed=SPEED)
    threading.Event().wait(8)
    kill_mosquitto_hard(cfg)
    thread.join(300)
    report = result["report"]
    bridge = BridgeProcess(env, tmp_path / "bridge.log").start()
    try:
        lost = _lost(cfg, report) if window == "default" else None
        if lost is None:  # the control: wait for the backlog to drain, then count
            everything = expected_pairs(report.per_walk)
            contents = read_topic(
                cfg, cfg.kafka.samples_topic, until=lambda c: len(c.distinct()) > 0, timeout=120, idle_after_done=15
            )
            lost = everything - contents.distinct()
        print(f"(b) bridge down, window {window}: {len(lost)} of {report.samples} samples lost, {report.resent} resent")
    finally:
        bridge.stop()
    assert report.reconnects >= len(chosen)
    if window == "default":
        assert report.resent > 0
        assert not lost, f"{len(lost)} samples lost, e.g. {sorted(lost)[:5]}"
    else:
        assert report.resent == 0
        assert lost, "the control lost nothing: the crash did not hit unsaved messages"


def test_a_queue_overflow_is_counted_and_alarmed(stack, tmp_path, monkeypatch):
    """A persistent subscriber offline beyond mqtt.max_queued_messages: Mosquitto drops the rest;
    the bridge reads the broker's drop counter, logs an error, and its health check fails."""
    import json
    import uuid

    from bridge.replay import DeviceFleet

    monkeypatch.setenv("GAITSTREAM_MQTT_MAX_QUEUED_MESSAGES", "50")
    run_stack("mosquitto.sh", "restart")
    try:
        cfg, env = isolated_config()
        BridgeProcess(env, tmp_path / "bridge.log").start().stop(keep_session=True)
        subject = f"Qo{uuid.uuid4().hex[:8]}"
        fleet = DeviceFleet(cfg, max_outstanding=50)
        fleet.ensure_credentials([subject])
        device = fleet.for_subject(subject)
        topic = f"{cfg.mqtt.topic_prefix}/Ga/{subject}/{subject}_01"
        for seq in range(0, 2000, 10):
            body = {
                "v": 1,
                "study": "Ga",
                "subject_id": subject,
                "walk_id": f"{subject}_01",
                "seq": seq,
                "sent_at_ms": int(time.time() * 1000),
                "samples": [[0.01 * (seq + i)] + [100.0] * 18 for i in range(10)],
            }
            device.publish(topic, json.dumps(body).encode())
        assert device.drain(30)
        fleet.close(replay.ReplayReport())
        bridge = BridgeProcess(env, tmp_path / "bridge.log").start()
        try:
            deadline = time.monotonic() + 30
            while "Mosquitto dropped" not in bridge.log():
                assert time.monotonic() < deadline, bridge.log()[-2000:]
                time.sleep(0.5)
            deadline = time.monotonic() + 15
            while True:
                try:
                    bridge_health.check(cfg)
                except RuntimeError as exc:
                    if "dropped" in str(exc):
                        break
                assert time.monotonic() < deadline, "the bridge's health check did not raise the alarm"
                time.sleep(0.5)
        finally:
            bridge.stop()
    finally:
        monkeypatch.delenv("GAITSTREAM_MQTT_MAX_QUEUED_MESSAGES")
        run_stack("mosquitto.sh", "restart")
