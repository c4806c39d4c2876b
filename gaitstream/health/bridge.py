"""Bridge health: its stats file is fresh (a heartbeat) and it is connected to MQTT."""

from __future__ import annotations

from gaitstream import heartbeats
from gaitstream.config import Config


def check(cfg: Config) -> str:
    stats = heartbeats.bridge(cfg).read_fresh()
    if not stats["mqtt_connected"]:
        raise RuntimeError("not connected to MQTT")
    return (
        f"bridge {stats['client_id']} forwarded {stats['forwarded']} msgs "
        f"({stats['forwarded_per_s']}/s), dead-lettered {stats['dead_lettered']}, pending {stats['pending']}"
    )
