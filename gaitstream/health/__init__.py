"""Real health checks, one module per service, each a ``check(cfg) -> str`` that round-trips data.

A check raises on failure and returns a one-line summary on success; ``stack/*.sh`` waits on
``python -m gaitstream.health <service>`` and the API reuses :func:`check`.
"""

from __future__ import annotations

import importlib

from gaitstream.config import Config

SERVICES = ("mosquitto", "kafka", "cassandra", "hdfs", "ferretdb")
# The pipeline's own processes, started by stack/{bridge,streaming,api}.sh.
COMPONENTS = ("bridge", "streaming", "api")


def check(service: str, cfg: Config) -> str:
    """Run one service's check; raises ``ValueError`` for an unknown service."""
    if service not in SERVICES + COMPONENTS + ("yarn",):
        raise ValueError(f"unknown service {service!r}; known: {', '.join(SERVICES)}")
    module = importlib.import_module(f"gaitstream.health.{service}")
    return module.check(cfg)
