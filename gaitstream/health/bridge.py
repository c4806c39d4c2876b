"""Bridge health: its stats file is fresh (a heartbeat) and it is connected to MQTT."""
from __future__ import annotations

import json
import time

from gaitstream.config import Config


def check(cfg: Config) -> str:
    path = cfg.path("bridge.stats_file")
    try:
        stats = json.loads(path.read_text())
    except FileNotFoundError:
        raise RuntimeError(f"no stats file yet at {path}") from None
    age = time.time() - stats["updated_at"]
    if age > 3 * float(cfg.bridge["stats_interval"]) + 5:
        raise RuntimeError(f"stats file is {age:.0f}s old: bridge stalled or stopped")
    if not stats["mqtt_connected"]:
        raise RuntimeError("not connected to MQTT")
    return (f"bridge {stats['client_id']} forwarded {stats['forwarded']} msgs "
            f"({stats['forwarded_per_s']}/s), dead-lettered {stats['dead_lettered']}, pending {stats['pending']}")
