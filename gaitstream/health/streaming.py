"""Streaming job health: its status file is fresh and lists active queries without errors."""
from __future__ import annotations

import json
import time

from gaitstream.config import Config


def check(cfg: Config) -> str:
    path = cfg.path("streaming.status_file")
    try:
        status = json.loads(path.read_text())
    except FileNotFoundError:
        raise RuntimeError(f"no status file yet at {path}") from None
    updated = float(status.get("updated_at_ms", 0)) / 1000.0
    age = time.time() - float(updated)
    if age > 4 * float(cfg.streaming["status_interval_seconds"]) + 10:
        raise RuntimeError(f"status file is {age:.0f}s old: job stalled or stopped")
    queries = status.get("queries", [])
    if not queries:
        raise RuntimeError("no active query")
    names = ", ".join(str(q.get("name")) for q in queries)
    return f"streaming job up, queries: {names}"
