"""HDFS health: every listed DataNode live (else at least one), as the NameNode's JMX reports them;
then a small file written over WebHDFS (NameNode redirect to a DataNode) and read back.

``python -m gaitstream.health.hdfs datanodes [ADDRESS...]`` prints one line per listed DataNode
(``hdfs.datanodes``, or the addresses given): ``ADDRESS<TAB>ok|bad<TAB>state`` as the NameNode sees
it, and exits 1 unless every one is live (``stack/hdfs.sh status`` and ``start-node``).
"""

from __future__ import annotations

import json
import sys
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from hdfs import InsecureClient

from gaitstream import clients, endpoints
from gaitstream.config import Config

HEALTH_DIR = "/tmp/gs-health"
TIMEOUT_S = 5
STALE_S = 300  # probe files left by a check that failed half-way are removed after this
# dfs.namenode.stale.datanode.interval (stack/hdfs.sh, Hadoop's default): a DataNode without a
# heartbeat for this long is stale; the NameNode lists it live until it declares it dead (60 s with
# hdfs.datanodes, 10.5 min by default), this check does not.
DATANODE_STALE_S = 30
NN_INFO = "Hadoop:service=NameNode,name=NameNodeInfo"


def _jmx(cfg: Config, query: str, timeout: float = TIMEOUT_S) -> dict[str, Any]:
    """One bean of the NameNode's JMX servlet (its web port, where WebHDFS is)."""
    url = f"{endpoints.webhdfs_url(cfg).rstrip('/')}/jmx?qry={urllib.parse.quote(query, safe=':=,')}"
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        beans = json.load(resp).get("beans") or []
    if not beans:
        raise RuntimeError(f"the NameNode's JMX has no {query}")
    return dict(beans[0])


def _host(address: str) -> str:
    return address.rsplit(":", 1)[0]


def _live(node: dict[str, Any]) -> bool:
    """A LiveNodes entry with a heartbeat in the last DATANODE_STALE_S, in service."""
    return int(node.get("lastContact", 0)) < DATANODE_STALE_S and node.get("adminState", "In Service") == "In Service"


def datanode_states(info: dict[str, Any], addresses: Iterable[str]) -> dict[str, tuple[bool, str]]:
    """Each address's DataNode as the NameNodeInfo bean describes it: (live, description).

    LiveNodes and DeadNodes are JSON objects keyed by ``hostname:transfer port`` (each with its
    ``xferaddr``, ``lastContact`` in seconds); a DataNode is matched by either address. A live one
    wins over an old dead entry of the same address (a DataNode formatted again registers anew)."""
    live_nodes: dict[str, dict[str, Any]] = json.loads(info.get("LiveNodes") or "{}")
    dead_nodes: dict[str, dict[str, Any]] = json.loads(info.get("DeadNodes") or "{}")

    def find(nodes: dict[str, dict[str, Any]], address: str) -> dict[str, Any] | None:
        for key, node in nodes.items():
            if address in (_host(key), _host(str(node.get("xferaddr", "")))):
                return node
        return None

    states: dict[str, tuple[bool, str]] = {}
    for address in addresses:
        node = find(live_nodes, address)
        if node is not None:
            contact = int(node.get("lastContact", 0))
            if contact >= DATANODE_STALE_S:
                states[address] = (False, f"stale in the NameNode (no heartbeat for {contact} s)")
            elif not _live(node):
                states[address] = (False, f"{node.get('adminState')} in the NameNode")
            else:
                states[address] = (True, f"live in the NameNode (last contact {contact} s)")
        elif (node := find(dead_nodes, address)) is not None:
            states[address] = (False, f"dead in the NameNode (last contact {int(node.get('lastContact', 0))} s ago)")
        else:
            states[address] = (False, "not registered with the NameNode")
    return states


def _remove_stale(c: InsecureClient) -> None:
    now_ms = time.time() * 1000
    for name, status in c.list(HEALTH_DIR, status=True):
        if now_ms - status["modificationTime"] > STALE_S * 1000:
            c.delete(f"{HEALTH_DIR}/{name}")


def datanode_problem(cfg: Config, info: dict[str, Any]) -> tuple[str | None, int, int]:
    """(why too few DataNodes are live or None, how many are live, how many must be) from the
    NameNodeInfo bean: each listed one (``hdfs.datanodes``), else at least one."""
    if cfg.hdfs.datanodes:
        from gaitstream.health import node_problem

        states = datanode_states(info, cfg.hdfs.datanodes)
        problem, live = node_problem(states, "DataNodes live")
        return problem, live, len(states)
    nodes: dict[str, dict[str, Any]] = json.loads(info.get("LiveNodes") or "{}")
    live = sum(1 for node in nodes.values() if _live(node))
    problem = None if live else f"no live DataNode in the NameNode ({len(nodes)} registered, none fresh and in service)"
    return problem, live, max(live, 1)


def _datanode_summary(cfg: Config) -> str:
    """``N/M DataNodes live, ``; raises when too few are. With no listed DataNodes the JMX servlet
    is optional (a remote NameNode may not serve it to us): the round trip decides then."""
    try:
        info = _jmx(cfg, NN_INFO)
    except Exception:
        if cfg.hdfs.datanodes:
            raise
        return ""
    problem, live, expected = datanode_problem(cfg, info)
    if problem:
        raise RuntimeError(problem)
    return f"{live}/{expected} DataNodes live, "


def check(cfg: Config) -> str:
    datanodes = _datanode_summary(cfg)
    c = clients.hdfs(cfg, timeout=TIMEOUT_S)
    path = f"{HEALTH_DIR}/probe-{uuid.uuid4().hex}"
    payload = f"gaitstream health {uuid.uuid4().hex}".encode()
    try:
        c.write(path, data=payload, overwrite=True)
        with c.read(path) as reader:
            got = reader.read()
    finally:
        try:
            c.delete(path)
        except Exception:  # the check's own error (if any) is the one worth reporting
            pass
    if got != payload:
        raise RuntimeError(f"read back {got!r} from {path}, wrote {payload!r}")
    _remove_stale(c)
    used = c.content("/")
    return (
        f"hdfs ok (webhdfs {cfg.hdfs.host}:{cfg.hdfs.webhdfs_port}, {datanodes}"
        f"{len(payload)} B round trip, {used['fileCount']} files, {used['length']} B in /)"
    )


def main(argv: Sequence[str], cfg: Config) -> int:
    if not argv or argv[0] != "datanodes":
        print("usage: python -m gaitstream.health.hdfs datanodes [ADDRESS...]", file=sys.stderr)
        return 2
    addresses = list(argv[1:]) or list(cfg.hdfs.datanodes) or [cfg.hdfs.host]
    try:
        states = datanode_states(_jmx(cfg, NN_INFO), addresses)
    except Exception as exc:  # the NameNode is down or not answering: say so for every node
        states = {a: (False, f"NameNode not answering ({type(exc).__name__}: {exc})") for a in addresses}
    from gaitstream.health import print_node_states

    return print_node_states(states)


if __name__ == "__main__":
    from gaitstream import config

    sys.exit(main(sys.argv[1:], config.load()))
