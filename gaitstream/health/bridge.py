"""Bridge health: its stats file is fresh (a heartbeat) and it is connected to MQTT."""

from __future__ import annotations

from gaitstream.config import Config
from gaitstream.health.heartbeat import read_fresh


def check(cfg: Config) -> str:
    stats = read_fresh(
        cfg.path("bridge.stats_file"),
        "stats file",
        3 * float(cfg.bridge.stats_interval) + 5,
        lambda doc: doc["updated_at"],
    )
    if not stats["mqtt_connected"]:
        raise RuntimeError("not connected to MQTT")
    return (
        f"bridge {stats['client_id']} forwarded {stats['forwarded']} msgs "
        f"({stats['forwarded_per_s']}/s), dead-lettered {stats['dead_lettered']}, pending {stats['pending']}"
    )
