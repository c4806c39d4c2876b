"""The bridge's counters in Prometheus text format (exposition format 0.0.4), for a scraper.

Written atomically next to the stats file, as ``<stats_file stem>.prom`` (the stats file's
directory can be node_exporter's ``--collector.textfile.directory``), every ``bridge.stats_interval``:
no port to open, and the file's ``gaitstream_bridge_updated_timestamp_seconds`` says how fresh it is.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

COUNTERS = {
    "received": "MQTT messages received",
    "forwarded": "messages Kafka confirmed (acks=all)",
    "dead_lettered": "messages sent to the dead-letter topic",
    "resent": "messages resent to Kafka after a failed send",
    "redelivered": "messages the broker sent again (MQTT DUP flag)",
    "clock_skew": "dead-lettered: sent_at_ms too far from the bridge's clock",
    "too_many_walks": "dead-lettered: a walk beyond bridge.max_open_walks_per_subject",
    "kafka_refused": "records Kafka refused as such, dead-lettered instead",
    "truncated": "dead letters stored cut at bridge.dead_letter_max_bytes",
    "dead_letter_failed": "messages acknowledged though even their dead letter was refused",
    "broker_dropped": "messages Mosquitto dropped since it started (a queue overflowed)",
}
GAUGES = {
    "pending": "messages received and not yet confirmed by Kafka",
    "open_walks": "walks seen within bridge.walk_idle_seconds",
    "forwarded_per_s": "messages confirmed by Kafka per second over the last stats interval",
    "mqtt_connected": "1 while the MQTT session is up",
    "updated_at": "when these numbers were written (Unix time)",
}
GAUGE_NAMES = {"forwarded_per_s": "forwarded_per_second", "updated_at": "updated_timestamp_seconds"}


def prometheus_text(stats: dict[str, Any]) -> str:
    """The stats file's document as Prometheus text: ``gaitstream_bridge_<counter>_total`` and gauges."""
    labels = f'{{client_id="{stats["client_id"]}"}}' if stats.get("client_id") else ""
    lines = []
    for key, kind, help_text in [(k, "counter", h) for k, h in COUNTERS.items()] + [
        (k, "gauge", h) for k, h in GAUGES.items()
    ]:
        value = stats.get(key)
        if isinstance(value, bool):
            value = int(value)
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            continue
        name = (
            f"gaitstream_bridge_{key}_total" if kind == "counter" else f"gaitstream_bridge_{GAUGE_NAMES.get(key, key)}"
        )
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", f"{name}{labels} {value}"]
    return "\n".join(lines) + "\n"


def textfile_path(stats_file: Path) -> Path:
    return Path(stats_file).with_suffix(".prom")


def write_textfile(stats_file: Path, stats: dict[str, Any]) -> Path:
    """Atomically (re)write the ``.prom`` file next to the stats file; returns its path."""
    path = textfile_path(stats_file)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(prometheus_text(stats))
    os.replace(tmp, path)
    return path
