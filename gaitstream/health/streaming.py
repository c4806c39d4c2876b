"""Streaming job health: its status file is fresh and lists active queries."""

from __future__ import annotations

from gaitstream import heartbeats
from gaitstream.config import Config


def check(cfg: Config) -> str:
    status = heartbeats.streaming(cfg).read_fresh()
    queries = status.get("queries", [])
    if not queries:
        raise RuntimeError("no active query")
    names = ", ".join(str(q.get("name")) for q in queries)
    return f"streaming job up, queries: {names}"
