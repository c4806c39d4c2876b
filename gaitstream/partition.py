"""A network partition of one loopback address, for the cluster-local profile's fault tests.

Every node of ``--profile cluster`` listens on its own 127.0.0.x address, so cutting one address
cuts one "machine": every packet *to* it is dropped by a ``blackhole`` route in the kernel's
``local`` table (more specific than ``local 127.0.0.0/8``). Established connections stall (TCP
retransmits until the route is gone, then carries on), new ones to the address fail at once, and
nothing else on the machine is touched. That is a partition, not a crash: the processes keep
running with their state, as a node behind a failed switch does. Needs CAP_NET_ADMIN (``ip route``);
without it the error says what the kernel refused.

127.0.0.1 is never cut: the driver, the tests and the single-instance services (Mosquitto,
FerretDB, the NameNode, the ResourceManager) live there. Whatever else listens on an isolated
address is cut with it (``python -m gaitstream.partition isolate`` names it).

``python -m gaitstream.partition isolate ADDRESS|cassandra N|kafka N``, ``heal ADDRESS|...|all``
(all: every cut address a node of the profile runs on; ``stack/down`` heals them), ``list``
(addresses cut now). ``stack/cassandra.sh`` and ``stack/kafka.sh`` call it as ``isolate-node N`` and
``heal-node N``.
"""

from __future__ import annotations

import argparse
import ipaddress
import subprocess
import sys

from gaitstream import config
from gaitstream.config import Config, ConfigError

NEVER = ipaddress.ip_address("127.0.0.1")


class PartitionError(RuntimeError):
    """The kernel refused a route change (no CAP_NET_ADMIN, no ``ip``): its own words."""


def checked_address(raw: str) -> str:
    """``raw`` when it is a loopback address other than 127.0.0.1 (only this machine's traffic)."""
    try:
        address = ipaddress.ip_address(raw.strip())
    except ValueError as exc:
        raise ConfigError(f"{raw!r} is not an IP address") from exc
    if address.version != 4 or not address.is_loopback:
        raise ConfigError(f"{address} is not a loopback address: only traffic on this machine may be cut")
    if address == NEVER:
        raise ConfigError(f"{address} is never cut: the driver, the tests and the single-instance services live there")
    return str(address)


def node_address(cfg: Config, service: str, node_id: int) -> str:
    """The address of node ``node_id`` (1-based) of ``cassandra.nodes`` or ``kafka.nodes``."""
    listed = {"cassandra": cfg.cassandra.nodes, "kafka": cfg.kafka.nodes}[service]
    if not 1 <= node_id <= len(listed):
        raise ConfigError(f"no {service} node {node_id}: {service}.nodes lists {len(listed)}")
    return checked_address(str(listed[node_id - 1]))


def residents(cfg: Config, address: str) -> list[str]:
    """What the profile runs on ``address`` (cut together with it)."""
    found = []
    for what, listed in (
        ("Cassandra node", cfg.cassandra.nodes),
        ("Kafka broker", cfg.kafka.nodes),
        ("DataNode", cfg.hdfs.datanodes),
        ("NodeManager", cfg.hdfs.nodemanagers),
    ):
        found += [f"{what} {i}" for i, host in enumerate(listed, start=1) if str(host) == address]
    return found


def _ip(*args: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)
    except FileNotFoundError as exc:
        raise PartitionError("no `ip` command (iproute2) on this machine") from exc


def isolated() -> list[str]:
    """Addresses cut now (blackhole /32 routes in the local table)."""
    listed = _ip("route", "show", "table", "local", "type", "blackhole")
    if listed.returncode != 0:
        raise PartitionError(f"ip route show: {listed.stderr.strip()}")
    return sorted(line.split()[1].removesuffix("/32") for line in listed.stdout.splitlines() if line.strip())


def _set_cut(address: str, cut: bool) -> bool:
    """Add (``cut``) or remove the blackhole route of ``address``; False when already so."""
    address = checked_address(address)
    if (address in isolated()) == cut:
        return False
    verb = "add" if cut else "del"
    done = _ip("route", verb, "blackhole", f"{address}/32", "table", "local")
    if done.returncode != 0:
        raise PartitionError(f"ip route {verb} blackhole {address}/32 table local: {done.stderr.strip()}")
    return True


def isolate(address: str) -> bool:
    """Cut ``address``; False when it already was."""
    return _set_cut(address, True)


def heal(address: str) -> bool:
    """Reconnect ``address``; False when it was not cut."""
    return _set_cut(address, False)


def _target(cfg: Config, words: list[str]) -> list[str]:
    if len(words) == 2 and words[0] in ("cassandra", "kafka"):
        if not words[1].isdigit():
            raise ConfigError(f"{words[0]} needs a node number, got {words[1]!r}")
        return [node_address(cfg, words[0], int(words[1]))]
    if len(words) == 1:
        return [checked_address(words[0])]
    raise ConfigError("give ADDRESS, cassandra N or kafka N")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gaitstream.partition",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("isolate", help="cut ADDRESS (or cassandra N, kafka N)").add_argument("target", nargs="+")
    sub.add_parser("heal", help="reconnect ADDRESS (or cassandra N, kafka N, all)").add_argument("target", nargs="+")
    sub.add_parser("list", help="addresses cut now, one a line")
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            for address in isolated():
                print(address)
            return 0
        cfg = config.load()
        if args.command == "heal" and args.target == ["all"]:  # every cut address this profile runs on
            targets = [a for a in isolated() if a != str(NEVER) and residents(cfg, a)]
        else:
            targets = _target(cfg, args.target)
        for address in targets:
            changed = (isolate if args.command == "isolate" else heal)(address)
            cut = ", ".join(residents(cfg, address)) or "nothing of this profile"
            state = "isolated" if args.command == "isolate" else "reconnected"
            print(f"{address} {state if changed else 'already ' + state} ({cut})")
    except (ConfigError, PartitionError) as exc:
        print(f"partition {args.command}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
