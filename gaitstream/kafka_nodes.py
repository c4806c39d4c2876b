"""The Kafka brokers ``stack/kafka.sh`` runs for ``kafka.nodes`` (the cluster-local profile).

Node ``i`` (1-based, in the order of ``kafka.nodes``) is one JVM that is both broker and KRaft
controller, with ``node.id=i``, listening on ``<address>:kafka.port`` (PLAINTEXT) and
``<address>:kafka.controller_port`` (CONTROLLER); every node is a voter of the controller quorum.
Its ``server.properties`` is the single-node template (``stack/kafka/server.properties.tmpl``)
with the node's address and folder filled in and the keys of :func:`overrides` replaced:
identity, quorum, and the replication of internal and new topics from ``kafka.replication_factor``
and ``kafka.min_insync_replicas``, unclean leader election off.

This module also answers which configured brokers the cluster's metadata lists and whether a
node's replicas are back in sync (``stack/kafka.sh status`` and ``start-node``).

``python -m gaitstream.kafka_nodes render [N...]`` writes the nodes' server.properties,
``members`` prints the broker ids in the metadata, ``check-node N`` exits 0 when node N is in the
cluster and in sync on every partition it holds.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gaitstream import clients, config
from gaitstream.config import Config

TEMPLATE = config.REPO_ROOT / "stack" / "kafka" / "server.properties.tmpl"


@dataclass(frozen=True)
class Node:
    id: int
    host: str
    port: int
    controller_port: int

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def __str__(self) -> str:
        return f"node {self.id} ({self.address})"


def nodes(cfg: Config) -> list[Node]:
    """The configured brokers, ``node.id`` 1..N; empty when ``kafka.nodes`` is (one broker on kafka.host)."""
    k = cfg.kafka
    hosts = [str(h).strip() for h in k.nodes]
    if any(not h for h in hosts):
        raise config.ConfigError("kafka.nodes: an empty address")
    if len(set(hosts)) != len(hosts):
        raise config.ConfigError(f"kafka.nodes: an address is listed twice ({', '.join(hosts)})")
    return [Node(i, host, k.port, k.controller_port) for i, host in enumerate(hosts, start=1)]


def node(cfg: Config, node_id: int) -> Node:
    found = [n for n in nodes(cfg) if n.id == node_id]
    if not found:
        raise config.ConfigError(f"no Kafka node {node_id}: kafka.nodes lists {len(nodes(cfg))}")
    return found[0]


def node_dir(cfg: Config, node_id: int) -> Path:
    """Node ``node_id``'s folder: its server.properties and, in ``data/``, its log.dirs."""
    return cfg.runtime_dir / "kafka" / f"node{node_id}"


def quorum_voters(cfg: Config) -> str:
    return ",".join(f"{n.id}@{n.host}:{n.controller_port}" for n in nodes(cfg))


def overrides(cfg: Config, node_id: int) -> dict[str, str]:
    """The keys a cluster node sets differently from the single-node template."""
    k, count = cfg.kafka, len(nodes(cfg))
    replicas, min_insync = k.replication_factor, k.min_insync_replicas
    if not 1 <= replicas <= count:
        raise config.ConfigError(
            f"kafka.replication_factor={replicas} must be between 1 and the {count} brokers of kafka.nodes"
        )
    if not 1 <= min_insync <= replicas:
        raise config.ConfigError(
            f"kafka.min_insync_replicas={min_insync} must be between 1 and kafka.replication_factor={replicas}"
        )
    return {
        "node.id": str(node(cfg, node_id).id),
        "controller.quorum.voters": quorum_voters(cfg),
        "default.replication.factor": str(replicas),
        "min.insync.replicas": str(min_insync),
        "offsets.topic.replication.factor": str(replicas),
        "transaction.state.log.replication.factor": str(replicas),
        "transaction.state.log.min.isr": str(min_insync),
        # A replica that was not in sync never becomes leader: a write acknowledged by min.insync
        # copies is never lost to an election, at the price of a partition staying offline.
        "unclean.leader.election.enable": "false",
    }


def render(cfg: Config, node_id: int, template: str | None = None) -> str:
    """Node ``node_id``'s server.properties."""
    n = node(cfg, node_id)
    text = TEMPLATE.read_text() if template is None else template
    values = {
        "@HOST@": n.host,
        "@PORT@": str(n.port),
        "@CONTROLLER_PORT@": str(n.controller_port),
        "@DATA_DIR@": str(node_dir(cfg, node_id) / "data"),
        "@PARTITIONS@": str(cfg.kafka.partitions),
    }
    changes = overrides(cfg, node_id)
    lines: list[str] = []
    seen: set[str] = set()
    for line in text.splitlines():
        key = "" if line.lstrip().startswith("#") else line.split("=", 1)[0].strip()
        if key in changes:
            seen.add(key)
            line = f"{key}={changes[key]}"
        else:
            for placeholder, value in values.items():
                line = line.replace(placeholder, value)
        lines.append(line)
    missing = [key for key in changes if key not in seen]
    if missing:
        lines += ["", f"# Cluster node {node_id} of {len(nodes(cfg))} (gaitstream/kafka_nodes.py)."]
        lines += [f"{key}={changes[key]}" for key in missing]
    out = "\n".join(lines) + "\n"
    left = sorted(set(re.findall(r"@[A-Z_]+@", out)))
    if left:
        raise ValueError(f"placeholders left unfilled in the Kafka template: {', '.join(left)}")
    header = f"# Kafka cluster node {node_id} of {len(nodes(cfg))}: node.id={node_id}, broker+controller on {n.host}.\n"
    return header + out


def write(cfg: Config, node_id: int) -> Path:
    """Render node ``node_id``'s server.properties into its folder (created with ``data/``)."""
    folder = node_dir(cfg, node_id)
    (folder / "data").mkdir(parents=True, exist_ok=True)
    target = folder / "server.properties"
    target.write_text(render(cfg, node_id))
    return target


# --- What the running cluster says ----------------------------------------------------------
def members(cfg: Config) -> dict[int, str]:
    """Broker id -> advertised ``host:port`` of every broker in the cluster metadata (live, unfenced)."""
    admin = clients.kafka_admin(cfg)
    try:
        found = admin.describe_cluster()
    finally:
        admin.close()
    return {int(b["node_id"]): f"{b['host']}:{b['port']}" for b in found["brokers"]}


def missing(cfg: Config, present: dict[int, str]) -> list[Node]:
    """The configured nodes ``present`` (from :func:`members`) lacks, or lists at another address."""
    return [n for n in nodes(cfg) if present.get(n.id) != n.address]


def out_of_sync(cfg: Config, node_id: int) -> tuple[int, list[str]]:
    """How many partitions ``node_id`` holds a replica of, and those where it is not in the ISR."""
    admin = clients.kafka_admin(cfg)
    try:
        topics: list[dict[str, Any]] = admin.describe_topics()
    finally:
        admin.close()
    held, lagging = 0, []
    for topic in topics:
        for p in topic["partitions"]:
            if node_id in p["replicas"]:
                held += 1
                if node_id not in p["isr"]:
                    lagging.append(f"{topic['topic']}/{p['partition']}")
    return held, sorted(lagging)


def check_node(cfg: Config, node_id: int) -> str:
    """A one-line summary when node ``node_id`` is in the cluster and in sync; raises otherwise."""
    n = node(cfg, node_id)
    present = members(cfg)
    if n in missing(cfg, present):
        raise RuntimeError(f"{n} not in the cluster metadata (brokers: {sorted(present) or 'none'})")
    held, lagging = out_of_sync(cfg, node_id)
    if lagging:
        raise RuntimeError(f"{n} not in sync on {len(lagging)} of {held} partitions: {', '.join(lagging[:5])}")
    return f"{n} in the cluster, in sync on all {held} partitions it holds"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gaitstream.kafka_nodes", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("render", help="write the nodes' server.properties").add_argument("node", type=int, nargs="*")
    sub.add_parser("members", help="print the broker ids in the cluster metadata, one a line")
    sub.add_parser("check-node", help="exit 0 when node N is in the cluster and in sync").add_argument("node", type=int)
    args = parser.parse_args(argv)
    cfg = config.load()
    try:
        if args.command == "render":
            for node_id in args.node or [n.id for n in nodes(cfg)]:
                print(write(cfg, node_id))
        elif args.command == "members":
            for broker in sorted(members(cfg)):
                print(broker)
        else:
            print(check_node(cfg, args.node))
    except Exception as exc:
        print(f"kafka {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
