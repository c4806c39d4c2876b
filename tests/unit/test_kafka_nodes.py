"""The Kafka cluster nodes stack/kafka.sh runs for kafka.nodes (issue 16): each node's
server.properties, and the health check's "every configured broker is in the cluster" rule.
No Kafka needed: the admin client is replaced by a stand-in."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from gaitstream import config, kafka_nodes
from gaitstream.health import kafka as kafka_health

CLUSTER_LOCAL = config.REPO_ROOT / "conf" / "templates" / "cluster-local.toml"
NO_SECRETS = {"GAITSTREAM_RUNTIME_SECRETS_FILE": ""}  # the profile's generated secrets file may not exist yet


def cluster(**env: str) -> config.Config:
    return config.load(CLUSTER_LOCAL, env={**NO_SECRETS, **env})


def properties(text: str) -> dict[str, str]:
    """key -> value of a .properties text; a key set twice is an error (Kafka would take the last)."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, value = line.split("=", 1)
            assert key not in found, f"{key} set twice"
            found[key] = value
    return found


def test_single_node_config_has_no_nodes():
    assert kafka_nodes.nodes(config.load(env={})) == []


def test_each_node_is_broker_and_controller_on_its_address():
    cfg = cluster()
    assert [(n.id, n.address) for n in kafka_nodes.nodes(cfg)] == [
        (1, "127.0.0.1:29092"),
        (2, "127.0.0.2:29092"),
        (3, "127.0.0.3:29092"),
    ]
    for node_id, host in ((1, "127.0.0.1"), (2, "127.0.0.2"), (3, "127.0.0.3")):
        props = properties(kafka_nodes.render(cfg, node_id))
        assert props["node.id"] == str(node_id)
        assert props["process.roles"] == "broker,controller"
        assert props["listeners"] == f"PLAINTEXT://{host}:29092,CONTROLLER://{host}:29093"
        assert props["advertised.listeners"] == f"PLAINTEXT://{host}:29092"
        assert props["controller.quorum.voters"] == "1@127.0.0.1:29093,2@127.0.0.2:29093,3@127.0.0.3:29093"
        assert props["log.dirs"] == str(cfg.runtime_dir / "kafka" / f"node{node_id}" / "data")


def test_replication_comes_from_config_and_unclean_election_is_off():
    props = properties(kafka_nodes.render(cluster(), 2))
    assert {key: props[key] for key in kafka_nodes.overrides(cluster(), 2) if key not in ("node.id",)} == {
        "controller.quorum.voters": "1@127.0.0.1:29093,2@127.0.0.2:29093,3@127.0.0.3:29093",
        "default.replication.factor": "3",
        "min.insync.replicas": "2",
        "offsets.topic.replication.factor": "3",
        "transaction.state.log.replication.factor": "3",
        "transaction.state.log.min.isr": "2",
        "unclean.leader.election.enable": "false",
    }
    # What the single node sets stays: partitions from config, no auto-created topics.
    assert props["num.partitions"] == "6" and props["auto.create.topics.enable"] == "false"
    assert "@" not in props["log.dirs"] + props["listeners"]


def test_environment_overrides_reach_every_node():
    cfg = cluster(GAITSTREAM_KAFKA_NODES="10.0.0.5,10.0.0.6,10.0.0.7", GAITSTREAM_KAFKA_CONTROLLER_PORT="9193")
    props = properties(kafka_nodes.render(cfg, 3))
    assert props["listeners"] == "PLAINTEXT://10.0.0.7:29092,CONTROLLER://10.0.0.7:9193"
    assert props["controller.quorum.voters"] == "1@10.0.0.5:9193,2@10.0.0.6:9193,3@10.0.0.7:9193"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GAITSTREAM_KAFKA_NODES": "127.0.0.1,127.0.0.2"}, "replication_factor=3"),
        ({"GAITSTREAM_KAFKA_MIN_INSYNC_REPLICAS": "4"}, "min_insync_replicas=4"),
        ({"GAITSTREAM_KAFKA_NODES": "127.0.0.1,127.0.0.2,127.0.0.1"}, "listed twice"),
    ],
)
def test_impossible_clusters_are_refused(env: dict[str, str], message: str):
    with pytest.raises(config.ConfigError, match=message):
        kafka_nodes.render(cluster(**env), 1)


def test_unknown_node_is_refused():
    with pytest.raises(config.ConfigError, match="no Kafka node 4"):
        kafka_nodes.render(cluster(), 4)


class FakeAdmin:
    """What the health check and check-node read of the cluster metadata."""

    def __init__(self, brokers: dict[int, str], topics: list[dict[str, Any]] | None = None):
        self.brokers, self.topics = brokers, topics or []

    def describe_cluster(self) -> dict[str, Any]:
        return {
            "brokers": [
                {"node_id": i, "host": a.split(":")[0], "port": int(a.split(":")[1])} for i, a in self.brokers.items()
            ]
        }

    def describe_topics(self) -> list[dict[str, Any]]:
        return self.topics

    def close(self) -> None:
        pass


ALL = {1: "127.0.0.1:29092", 2: "127.0.0.2:29092", 3: "127.0.0.3:29092"}


def use_admin(monkeypatch: pytest.MonkeyPatch, admin: FakeAdmin) -> None:
    monkeypatch.setattr(kafka_nodes, "clients", SimpleNamespace(kafka_admin=lambda cfg: admin))


def test_health_names_the_broker_missing_from_the_metadata(monkeypatch: pytest.MonkeyPatch):
    use_admin(monkeypatch, FakeAdmin({1: ALL[1], 3: ALL[3]}))
    with pytest.raises(RuntimeError, match=r"not in the cluster metadata: node 2 \(127\.0\.0\.2:29092\)"):
        kafka_health.check_members(cluster())
    use_admin(monkeypatch, FakeAdmin(ALL))
    assert kafka_health.check_members(cluster()) == ", 3 brokers in the cluster"


def test_a_broker_at_another_address_counts_as_missing(monkeypatch: pytest.MonkeyPatch):
    use_admin(monkeypatch, FakeAdmin({**ALL, 3: "127.0.0.9:29092"}))
    with pytest.raises(RuntimeError, match="node 3"):
        kafka_health.check_members(cluster())


def test_single_node_health_does_not_ask_for_members(monkeypatch: pytest.MonkeyPatch):
    def refuse(cfg: config.Config) -> None:
        raise AssertionError("no metadata request for one broker")

    monkeypatch.setattr(kafka_nodes, "clients", SimpleNamespace(kafka_admin=refuse))
    assert kafka_health.check_members(config.load(env={})) == ""


def test_check_node_waits_for_every_partition_it_holds_to_be_in_sync(monkeypatch: pytest.MonkeyPatch):
    def topic(name: str, isr_of_p1: list[int]) -> dict[str, Any]:
        return {
            "topic": name,
            "partitions": [
                {"partition": 0, "replicas": [1, 3, 2], "isr": [1, 3, 2]},
                {"partition": 1, "replicas": [3, 2, 1], "isr": isr_of_p1},
                {"partition": 2, "replicas": [1, 3], "isr": [1, 3]},  # node 2 holds no copy
            ],
        }

    use_admin(monkeypatch, FakeAdmin(ALL, [topic("gait.samples", [3, 1])]))
    with pytest.raises(RuntimeError, match=r"node 2 .* not in sync on 1 of 2 partitions: gait.samples/1"):
        kafka_nodes.check_node(cluster(), 2)
    use_admin(monkeypatch, FakeAdmin(ALL, [topic("gait.samples", [3, 1, 2])]))
    assert kafka_nodes.check_node(cluster(), 2).endswith("in sync on all 2 partitions it holds")
    use_admin(monkeypatch, FakeAdmin({1: ALL[1], 3: ALL[3]}))
    with pytest.raises(RuntimeError, match="node 2 .* not in the cluster metadata"):
        kafka_nodes.check_node(cluster(), 2)
