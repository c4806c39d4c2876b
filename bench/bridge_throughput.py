"""Benchmark the MQTT → Kafka leg on this machine, printed side by side with its ceiling.

1. Ceiling: raw Mosquitto → paho throughput (QoS 1 payloads of the replay's shape, no Kafka).
2. replay → bridge → Kafka, as fast as possible, at batch sizes 1, 10 and 100 (samples/s
   counted when the last sample is readable in Kafka).
3. Real-time cohort: one walk per subject (159 walks at 100 Hz = 15.9k samples/s) for a bounded
   duration, p50/p95 latency from publish (payload sent_at_ms) to the record being read from Kafka.

Needs the stack up (stack/up mosquitto kafka). Usage:
    var/venv/bin/python bench/bridge_throughput.py [--walks 12] [--realtime-seconds 60]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bridge import replay  # noqa: E402
from gaitstream import clients, gaitpdb  # noqa: E402
from tests.integration.pipeline import BridgeProcess, expected_pairs, isolated_config, read_topic  # noqa: E402


def ceiling(cfg, messages: int, batch_size: int) -> float:
    """Messages/s a plain paho subscriber receives from Mosquitto (QoS 1, auto-ack)."""
    m = cfg.mqtt
    topic = f"{m.topic_prefix}/Ga/GaCo01/GaCo01_01"
    body = json.dumps(
        {
            "v": 1,
            "study": "Ga",
            "subject_id": "GaCo01",
            "walk_id": "GaCo01_01",
            "seq": 0,
            "sent_at_ms": 0,
            "samples": [[0.01 * i] + [123.45] * 18 for i in range(batch_size)],
        }
    ).encode()
    got, done = [0], threading.Event()

    def on_message(client, userdata, message):
        got[0] += 1
        if got[0] >= messages:
            done.set()

    sub = clients.mqtt_client(cfg, "bridge", f"bench-sub-{time.time_ns()}")
    sub.on_message = on_message
    subscribed = threading.Event()
    sub.on_subscribe = lambda *a: subscribed.set()
    clients.mqtt_connect(cfg, sub)
    sub.loop_start()
    sub.subscribe(topic, qos=1)
    subscribed.wait(5)
    pub = clients.mqtt_client(cfg, "replay", f"bench-pub-{time.time_ns()}")
    pub.max_inflight_messages_set(1000)
    clients.mqtt_connect(cfg, pub)
    pub.loop_start()
    t0 = time.monotonic()
    for _ in range(messages):
        pub.publish(topic, body, qos=1)
    done.wait(120)
    seconds = time.monotonic() - t0
    for client in (pub, sub):
        client.disconnect()
        client.loop_stop()
    return got[0] / seconds


def through_bridge(refs, folder, batch_size: int, log_dir: Path) -> tuple[float, int]:
    """Samples/s from the first publish until every sample is readable in Kafka."""
    cfg, env = isolated_config()
    bridge = BridgeProcess(env, log_dir / f"bridge-{batch_size}.log").start()
    try:
        t0 = time.monotonic()
        report = replay.replay(cfg, refs, speed=0, batch_size=batch_size, data_dir=folder, progress=False)
        expected = expected_pairs(report.per_walk)
        read_topic(cfg, cfg.kafka.samples_topic, until=lambda c: expected <= c.distinct(), timeout=900)
        return report.samples / (time.monotonic() - t0), report.samples
    finally:
        bridge.stop()


def realtime_latency(refs, folder, seconds: float, batch_size: int, log_dir: Path) -> tuple[np.ndarray, float]:
    """Publish-to-Kafka-readable latencies (ms) of a real-time replay cut after ``seconds``."""
    cfg, env = isolated_config()
    bridge = BridgeProcess(env, log_dir / "bridge-realtime.log").start()
    latencies: list[float] = []
    stop_reading = threading.Event()

    def reader():
        consumer = clients.kafka_consumer(
            cfg, cfg.kafka.samples_topic, auto_offset_reset="earliest", consumer_timeout_ms=500
        )
        while not stop_reading.is_set():
            for batch in consumer.poll(timeout_ms=200).values():
                now_ms = time.time() * 1000
                for record in batch:
                    latencies.append(now_ms - json.loads(record.value)["sent_at_ms"])
        consumer.close()

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    time.sleep(2)
    stop = threading.Event()
    threading.Timer(seconds, stop.set).start()
    report = replay.replay(cfg, refs, speed=1.0, batch_size=batch_size, data_dir=folder, progress=False, stop=stop)
    time.sleep(3)
    stop_reading.set()
    thread.join(10)
    bridge.stop()
    return np.asarray(latencies), report.samples / report.seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--walks", type=int, default=12, help="walks for the as-fast-as-possible runs")
    parser.add_argument("--realtime-seconds", type=float, default=60)
    parser.add_argument("--ceiling-messages", type=int, default=30_000)
    args = parser.parse_args()
    cfg, _ = isolated_config()
    folder = cfg.path("data.gaitpdb_dir")
    refs, _ = gaitpdb.list_walks(folder)
    log_dir = Path(tempfile.mkdtemp(prefix="gs-bench-"))
    rows = []
    for batch in (1, 10, 100):
        rate = ceiling(cfg, args.ceiling_messages, batch)
        rows.append((f"ceiling: Mosquitto→paho, batch {batch}", f"{rate:,.0f} msg/s = {rate * batch:,.0f} samples/s"))
        print(rows[-1], flush=True)
    chosen = replay.select_walks(refs, studies=["Si"])[: args.walks]
    for batch in (1, 10, 100):
        walks = chosen[: max(2, args.walks // (4 if batch == 1 else 1))]
        rate, n = through_bridge(walks, folder, batch, log_dir)
        rows.append(
            (
                f"replay→bridge→Kafka, batch {batch} ({n:,} samples)",
                f"{rate:,.0f} samples/s = {rate / batch:,.0f} msg/s",
            )
        )
        print(rows[-1], flush=True)
    cohort = replay.select_walks(refs, one_per_subject=True)
    lat, sent_rate = realtime_latency(cohort, folder, args.realtime_seconds, 10, log_dir)
    rows.append(
        (
            f"real time, {len(cohort)} walks, batch 10, {args.realtime_seconds:.0f}s",
            f"sent {sent_rate:,.0f} samples/s; publish→Kafka p50 {np.percentile(lat, 50):.0f} ms, "
            f"p95 {np.percentile(lat, 95):.0f} ms, max {lat.max():.0f} ms ({len(lat):,} msgs)",
        )
    )
    print("\n| measurement | result |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    print("targets: real-time cohort (15.9k samples/s) with p95 < 500 ms; ≥ 50k samples/s at batch 10")
    return 0


if __name__ == "__main__":
    sys.exit(main())
