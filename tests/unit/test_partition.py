"""The loopback partition of the cluster profile (gaitstream.partition): which addresses may be cut,
what is cut with them, and a real cut on an address nothing uses (packets dropped, then healed)."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from gaitstream import config, partition
from gaitstream.config import ConfigError

CLUSTER_LOCAL = config.REPO_ROOT / "conf" / "templates" / "cluster-local.toml"
NO_SECRETS = {"GAITSTREAM_RUNTIME_SECRETS_FILE": ""}
UNUSED = "127.0.0.77"


@pytest.mark.parametrize(
    ("raw", "words"),
    [("127.0.0.1", "never cut"), ("10.0.0.2", "not a loopback"), ("::1", "not a loopback"), ("nope", "not an IP")],
)
def test_only_loopback_addresses_other_than_the_first_may_be_cut(raw, words):
    with pytest.raises(ConfigError, match=words):
        partition.checked_address(raw)
    assert partition.checked_address(" 127.0.0.2 ") == "127.0.0.2"


def test_a_node_is_cut_with_everything_on_its_address():
    cfg = config.load(CLUSTER_LOCAL, env=NO_SECRETS)
    assert partition.node_address(cfg, "cassandra", 2) == "127.0.0.2"
    assert partition.node_address(cfg, "kafka", 3) == "127.0.0.3"
    assert partition.residents(cfg, "127.0.0.2") == [
        "Cassandra node 2",
        "Kafka broker 2",
        "DataNode 1",
        "NodeManager 1",
    ]
    with pytest.raises(ConfigError, match="no kafka node 4"):
        partition.node_address(cfg, "kafka", 4)
    with pytest.raises(ConfigError, match="no cassandra node 1"):
        partition.node_address(config.load(config.DEFAULT_FILE, env=NO_SECRETS), "cassandra", 1)


def test_a_cut_address_drops_packets_until_healed():
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((UNUSED, 0))
    server.listen()
    client = socket.create_connection(server.getsockname(), timeout=5)
    accepted, _ = server.accept()
    try:
        try:
            assert partition.isolate(UNUSED)
        except partition.PartitionError as exc:  # say exactly what the machine refused
            pytest.skip(f"this machine does not allow a route change: {exc}")
        try:
            assert UNUSED in partition.isolated() and not partition.isolate(UNUSED)
            client.sendall(b"x")
            accepted.settimeout(1.5)
            with pytest.raises(TimeoutError):
                accepted.recv(1)  # dropped in flight: the connection stalls, nobody is told
            with pytest.raises(OSError):
                socket.create_connection(server.getsockname(), timeout=1.5)
        finally:
            assert partition.heal(UNUSED)
        accepted.settimeout(30)
        assert accepted.recv(1) == b"x"  # TCP retransmits once the route is gone
        assert UNUSED not in partition.isolated() and not partition.heal(UNUSED)
    finally:
        for sock in (client, accepted, server):
            sock.close()


def test_the_cli_refuses_what_it_cannot_cut():
    run = subprocess.run(
        [sys.executable, "-m", "gaitstream.partition", "isolate", "127.0.0.1"],
        capture_output=True,
        text=True,
        cwd=config.REPO_ROOT,
    )
    assert run.returncode == 1 and "never cut" in run.stderr
