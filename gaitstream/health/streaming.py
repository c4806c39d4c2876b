"""Streaming job health: its status file is fresh and lists active queries."""

from __future__ import annotations

from gaitstream.config import Config
from gaitstream.health.heartbeat import read_fresh


def check(cfg: Config) -> str:
    status = read_fresh(
        cfg.path("streaming.status_file"),
        "status file",
        4 * cfg.streaming.status_interval_seconds + 10,
        lambda doc: float(doc.get("updated_at_ms", 0)) / 1000.0,
    )
    queries = status.get("queries", [])
    if not queries:
        raise RuntimeError("no active query")
    names = ", ".join(str(q.get("name")) for q in queries)
    return f"streaming job up, queries: {names}"
