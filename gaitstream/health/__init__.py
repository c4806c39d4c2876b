"""Real health checks, one module per service, each a ``check(cfg) -> str`` that round-trips data.

A check raises on failure and returns a one-line summary on success; ``stack/*.sh`` waits on
``python -m gaitstream.health <service>`` and the API reuses :func:`check`.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping

from gaitstream.config import Config

SERVICES = ("mosquitto", "kafka", "cassandra", "hdfs", "ferretdb")
# The pipeline's own processes, started by stack/{bridge,streaming,api}.sh.
COMPONENTS = ("bridge", "streaming", "api")


def print_node_states(states: Mapping[str, tuple[bool, str]]) -> int:
    """One ``ADDRESS ok|bad TEXT`` line per node (the per-node commands of the hdfs and yarn
    checks, read by stack/hdfs.sh); 0 when every node is ok."""
    for address, (ok, text) in states.items():
        print(f"{address}\t{'ok' if ok else 'bad'}\t{text}")
    return 0 if all(ok for ok, _ in states.values()) else 1


def node_problem(states: Mapping[str, tuple[bool, str]], good: str) -> tuple[str | None, int]:
    """(why some listed nodes are not ``good`` or None, how many are): the multi-node verdict of
    the hdfs (DataNodes live) and yarn (NodeManagers RUNNING) checks."""
    bad = {address: text for address, (ok, text) in states.items() if not ok}
    count = len(states) - len(bad)
    if not bad:
        return None, count
    detail = "; ".join(f"{address}: {text}" for address, text in bad.items())
    return f"{count} of {len(states)} {good} ({detail})", count


def check(service: str, cfg: Config) -> str:
    """Run one service's check; raises ``ValueError`` for an unknown service."""
    if service not in SERVICES + COMPONENTS + ("yarn",):
        raise ValueError(f"unknown service {service!r}; known: {', '.join(SERVICES)}")
    module = importlib.import_module(f"gaitstream.health.{service}")
    return module.check(cfg)
