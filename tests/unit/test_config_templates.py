"""The deployment templates in conf/templates/: only what differs from the default, well typed, honoured."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from gaitstream import config, endpoints
from streaming import schema

TEMPLATES = sorted((config.REPO_ROOT / "conf" / "templates").glob("*.toml"))
DEFAULT = config.load(env={})
NO_SECRETS = {"GAITSTREAM_RUNTIME_SECRETS_FILE": ""}  # a template's generated secrets file may not exist yet


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_template_holds_only_what_differs_from_what_it_extends(path: Path):
    template = config.load(path, env=NO_SECRETS)  # unknown keys or wrong types would raise here
    with open(path, "rb") as handle:
        raw = tomllib.load(handle)
    parent = raw.pop("extends", None)
    base = config.load(path.parent / parent, env=NO_SECRETS) if parent else DEFAULT
    for section, keys in raw.items():
        for key in keys:
            dotted = f"{section}.{key}"
            if dotted == "runtime.secrets_file":  # overridden by NO_SECRETS in both
                continue
            assert template.get(dotted) != base.get(dotted), f"{path.name}: {dotted} repeats what it extends"


def test_cluster_local_changes_only_addresses_secrets_and_sizing():
    """conf/templates/cluster-local.toml is the cluster template on one machine: replication,
    consistency, strategies and topics stay the template's."""
    path = config.REPO_ROOT / "conf" / "templates" / "cluster-local.toml"
    with open(path, "rb") as handle:
        raw = tomllib.load(handle)
    assert raw.pop("extends") == "cluster.toml"
    address = (
        "host",
        "port",
        "nodes",
        "contact_points",
        "bootstrap_servers",
        "uri",
        "url",
        "datanodes",
        "nodemanagers",
    )
    sizing = ("heap", "memory", "memory_mb", "instances", "cores", "partitions")
    # Not yet set up locally (README): Kafka SASL_SSL. And what the local YARN needs.
    local_only = {
        "runtime.dir", "runtime.secrets_file", "kafka.security_protocol", "kafka.sasl_mechanism",
        "kafka.sasl_username", "hdfs.yarn", "hdfs.replication", "bridge.shared_group", "spark.checkpoint_dir",
        "spark.deploy_mode", "spark.yarn_queue", "spark.yarn_spark_jars", "spark.yarn_python", "spark.bind_host",
    }  # fmt: skip
    for section, keys in raw.items():
        for key in keys:
            dotted = f"{section}.{key}"
            assert key.endswith(address) or key.endswith(sizing) or dotted in local_only, dotted
    cfg = config.load(path, env=NO_SECRETS)
    assert cfg.kafka.replication_factor == 3 and cfg.kafka.min_insync_replicas == 2
    assert schema.replication(cfg) == "{'class': 'NetworkTopologyStrategy', 'dc1': 3}"
    assert cfg.cassandra.write_consistency == cfg.cassandra.read_consistency == "LOCAL_QUORUM"
    assert len(cfg.cassandra.nodes) == len(cfg.kafka.nodes) == 3
    assert len(cfg.hdfs.datanodes) == len(cfg.hdfs.nodemanagers) == cfg.hdfs.replication == 2
    assert cfg.bridge.instances == 2 and cfg.bridge.shared_group
    assert all(endpoints.is_loopback(h) for h in cfg.cassandra.nodes + cfg.kafka.nodes + cfg.hdfs.datanodes)


def test_there_are_cluster_and_yarn_templates():
    assert {p.name for p in TEMPLATES} >= {"cluster.toml", "yarn-local.toml", "cluster-local.toml"}


def test_cluster_template_is_a_real_cluster():
    cfg = config.load(config.REPO_ROOT / "conf" / "templates" / "cluster.toml", env={})
    # Kafka: remote brokers over SASL, for the bridge (kafka-python) and the job (Spark).
    assert endpoints.kafka_bootstrap(cfg).count(",") >= 2
    assert endpoints.kafka_python_security(cfg)["security_protocol"] == "SASL_SSL"
    spark_kafka = endpoints.spark_kafka_options(cfg)
    assert spark_kafka["kafka.sasl.mechanism"] == "SCRAM-SHA-512"
    assert "ScramLoginModule required" in spark_kafka["kafka.sasl.jaas.config"]
    # Cassandra: several contact points, NetworkTopologyStrategy RF 3, credentials for both clients.
    assert len(endpoints.cassandra_contact_points(cfg)) >= 3
    assert schema.replication(cfg) == "{'class': 'NetworkTopologyStrategy', 'dc1': 3}"
    assert endpoints.cassandra_credentials(cfg) is not None
    assert endpoints.spark_cassandra_conf(cfg)["spark.cassandra.auth.username"] == "gaitstream"
    # HDFS, MongoDB, YARN.
    assert endpoints.hdfs_namenode_uri(cfg).startswith("hdfs://") and "127.0.0.1" not in endpoints.hdfs_namenode_uri(
        cfg
    )
    assert endpoints.mongo_uri(cfg).startswith("mongodb://gaitstream:")
    assert cfg.spark.master == "yarn" and cfg.spark.deploy_mode == "cluster"
    assert cfg.spark.executor_instances >= 2 and cfg.spark.checkpoint_dir.startswith("hdfs://")


def test_secrets_can_come_from_the_environment():
    cfg = config.load(
        config.REPO_ROOT / "conf" / "templates" / "cluster.toml",
        env={"GAITSTREAM_KAFKA_SASL_PASSWORD": "s3cret", "GAITSTREAM_CASSANDRA_CONTACT_POINTS": "a,b"},
    )
    assert 'password="s3cret"' in endpoints.spark_kafka_options(cfg)["kafka.sasl.jaas.config"]
    assert endpoints.cassandra_contact_points(cfg) == ["a", "b"]


def test_yarn_local_template_submits_to_the_local_yarn():
    cfg = config.load(config.REPO_ROOT / "conf" / "templates" / "yarn-local.toml", env=NO_SECRETS)
    assert cfg.hdfs.yarn is True and cfg.spark.master == "yarn"
    assert cfg.spark.checkpoint_dir.startswith("hdfs://127.0.0.1:")


def test_local_default_stays_on_loopback():
    assert endpoints.kafka_bootstrap(DEFAULT).startswith("127.0.0.1:")
    assert endpoints.cassandra_contact_points(DEFAULT) == ["127.0.0.1"]
    assert schema.replication(DEFAULT) == "{'class': 'SimpleStrategy', 'replication_factor': 1}"
