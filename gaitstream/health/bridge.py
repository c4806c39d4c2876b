"""Bridge health: its stats file is fresh (a heartbeat), it is connected to MQTT, and the broker
has dropped nothing (a queue overflow is an alarm until Mosquitto restarts)."""

from __future__ import annotations

from gaitstream import heartbeats
from gaitstream.config import Config


def check(cfg: Config) -> str:
    stats = heartbeats.bridge(cfg).read_fresh()
    if not stats["mqtt_connected"]:
        raise RuntimeError("not connected to MQTT")
    if stats.get("broker_dropped"):
        raise RuntimeError(
            f"Mosquitto dropped {stats['broker_dropped']} messages (a queue beyond mqtt.max_queued_messages)"
        )
    return (
        f"bridge {stats['client_id']} forwarded {stats['forwarded']} msgs "
        f"({stats['forwarded_per_s']}/s), dead-lettered {stats['dead_lettered']}, pending {stats['pending']}"
    )
