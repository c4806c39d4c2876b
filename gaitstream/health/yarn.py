"""YARN health: the ResourceManager's REST API reports STARTED and enough RUNNING NodeManagers (each
listed one of ``hdfs.nodemanagers``, else at least one).

``python -m gaitstream.health.yarn nodemanagers [ADDRESS...]`` prints one line per listed
NodeManager (or the addresses given): ``ADDRESS<TAB>ok|bad<TAB>state`` as the ResourceManager sees
it, and exits 1 unless every one is RUNNING (``stack/hdfs.sh status`` and ``start-node``).
"""

from __future__ import annotations

import json
import sys
import urllib.request
from collections.abc import Iterable, Sequence
from typing import Any

from gaitstream.config import Config

TIMEOUT_S = 3


def _get(cfg: Config, path: str) -> dict:
    url = f"http://{cfg.hdfs.host}:{cfg.hdfs.yarn_web_port}{path}"
    req = urllib.request.Request(url, headers={"Accept": "application/json"})
    with urllib.request.urlopen(req, timeout=TIMEOUT_S) as resp:
        return json.load(resp)


def _nodes(cfg: Config) -> list[dict[str, Any]]:
    """Every NodeManager the ResourceManager knows, in any state (RUNNING, LOST, SHUTDOWN...)."""
    return list((_get(cfg, "/ws/v1/cluster/nodes").get("nodes") or {}).get("node") or [])


def nodemanager_states(nodes: list[dict[str, Any]], addresses: Iterable[str]) -> dict[str, tuple[bool, str]]:
    """Each address's NodeManager as the ResourceManager lists it: (RUNNING, description). Of several
    entries for one address (a NodeManager restarted on another port) a RUNNING one wins, else the
    latest."""
    states: dict[str, tuple[bool, str]] = {}
    for address in addresses:
        mine = [n for n in nodes if n.get("nodeHostName") == address]
        if not mine:
            states[address] = (False, "not registered with the ResourceManager")
            continue
        node = max(mine, key=lambda n: (n.get("state") == "RUNNING", n.get("lastHealthUpdate", 0)))
        state = str(node.get("state"))
        if state == "RUNNING":
            used, avail = node.get("usedMemoryMB", 0), node.get("availMemoryMB", 0)
            text = (
                f"RUNNING in the ResourceManager ({node.get('numContainers', 0)} containers, {used}/{used + avail} MB)"
            )
        else:
            text = f"{state} in the ResourceManager"
            if node.get("healthReport"):
                text += f" ({node['healthReport']})"
        states[address] = (state == "RUNNING", text)
    return states


def nodemanager_problem(cfg: Config, nodes: list[dict[str, Any]]) -> tuple[str | None, int]:
    """(why too few NodeManagers are RUNNING or None, how many listed/expected are RUNNING)."""
    if cfg.hdfs.nodemanagers:
        from gaitstream.health import node_problem

        return node_problem(nodemanager_states(nodes, cfg.hdfs.nodemanagers), "NodeManagers RUNNING")
    running = sum(1 for n in nodes if n.get("state") == "RUNNING")
    return (None if running else "ResourceManager has no active NodeManager"), running


def check(cfg: Config) -> str:
    info = _get(cfg, "/ws/v1/cluster/info")["clusterInfo"]
    if info.get("state") != "STARTED":
        raise RuntimeError(f"ResourceManager state {info.get('state')!r}, not STARTED")
    problem, running = nodemanager_problem(cfg, _nodes(cfg))
    if problem:
        raise RuntimeError(problem)
    metrics = _get(cfg, "/ws/v1/cluster/metrics")["clusterMetrics"]
    expected = len(cfg.hdfs.nodemanagers) or running
    return (
        f"yarn ok (rm {cfg.hdfs.host}:{cfg.hdfs.yarn_rm_port}, hadoop {info.get('hadoopVersion')}, "
        f"{running}/{expected} NodeManagers RUNNING, {metrics.get('totalMB')} MB)"
    )


def main(argv: Sequence[str], cfg: Config) -> int:
    if not argv or argv[0] != "nodemanagers":
        print("usage: python -m gaitstream.health.yarn nodemanagers [ADDRESS...]", file=sys.stderr)
        return 2
    addresses = list(argv[1:]) or list(cfg.hdfs.nodemanagers) or [cfg.hdfs.host]
    try:
        states = nodemanager_states(_nodes(cfg), addresses)
    except Exception as exc:  # the ResourceManager is down or not answering: say so for every node
        states = {a: (False, f"ResourceManager not answering ({type(exc).__name__}: {exc})") for a in addresses}
    from gaitstream.health import print_node_states

    return print_node_states(states)


if __name__ == "__main__":
    from gaitstream import config

    sys.exit(main(sys.argv[1:], config.load()))
