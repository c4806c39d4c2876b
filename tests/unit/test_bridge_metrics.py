"""The bridge's Prometheus textfile: every counter and gauge of the stats file, parseable."""

from __future__ import annotations

import json

from bridge.metrics import prometheus_text, write_textfile


def parse(text: str) -> dict[str, tuple[str, float]]:
    """name → (type, value), from HELP/TYPE comments and one sample line per metric."""
    types, samples = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            types[name] = kind
        elif line and not line.startswith("#"):
            name_labels, value = line.rsplit(" ", 1)
            samples[name_labels.split("{")[0]] = float(value)
    return {name: (types[name], value) for name, value in samples.items()}


def test_stats_become_prometheus_counters_and_gauges(tmp_path):
    stats = {
        "client_id": "gaitstream-bridge",
        "pid": 7,
        "updated_at": 1795900000.5,
        "mqtt_connected": True,
        "received": 120,
        "forwarded": 110,
        "dead_lettered": 4,
        "resent": 2,
        "clock_skew": 1,
        "too_many_walks": 0,
        "kafka_refused": 0,
        "truncated": 0,
        "dead_letter_failed": 0,
        "open_walks": 3,
        "pending": 6,
        "forwarded_per_s": 12.5,
    }
    stats_file = tmp_path / "bridge-stats.json"
    stats_file.write_text(json.dumps(stats))
    path = write_textfile(stats_file, stats)
    assert path == tmp_path / "bridge-stats.prom"
    metrics = parse(path.read_text())
    assert metrics["gaitstream_bridge_received_total"] == ("counter", 120)
    assert metrics["gaitstream_bridge_forwarded_total"] == ("counter", 110)
    assert metrics["gaitstream_bridge_dead_lettered_total"] == ("counter", 4)
    assert metrics["gaitstream_bridge_resent_total"] == ("counter", 2)
    assert metrics["gaitstream_bridge_pending"] == ("gauge", 6)
    assert metrics["gaitstream_bridge_mqtt_connected"] == ("gauge", 1)
    assert metrics["gaitstream_bridge_forwarded_per_second"] == ("gauge", 12.5)
    assert metrics["gaitstream_bridge_updated_timestamp_seconds"] == ("gauge", 1795900000.5)
    assert 'gaitstream_bridge_received_total{client_id="gaitstream-bridge"} 120' in path.read_text()
    assert "pid" not in path.read_text()


def test_missing_or_odd_values_are_left_out():
    text = prometheus_text({"received": 5, "forwarded": float("nan"), "resent": "x"})
    assert parse(text) == {"gaitstream_bridge_received_total": ("counter", 5)}
