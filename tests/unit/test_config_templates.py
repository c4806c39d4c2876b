"""The deployment templates in conf/templates/: only what differs from the default, well typed, honoured."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from gaitstream import config, endpoints
from streaming import schema

TEMPLATES = sorted((config.REPO_ROOT / "conf" / "templates").glob("*.toml"))
DEFAULT = config.load(env={})


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_template_holds_only_what_differs_from_the_default(path: Path):
    template = config.load(path, env={})  # unknown keys or wrong types would raise here
    with open(path, "rb") as handle:
        raw = tomllib.load(handle)
    for section, keys in raw.items():
        for key in keys:
            dotted = f"{section}.{key}"
            assert template.get(dotted) != DEFAULT.get(dotted), f"{path.name}: {dotted} repeats the default"


def test_there_are_cluster_and_yarn_templates():
    assert {p.name for p in TEMPLATES} >= {"cluster.toml", "yarn-local.toml"}


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
    cfg = config.load(config.REPO_ROOT / "conf" / "templates" / "yarn-local.toml", env={})
    assert cfg.hdfs.yarn is True and cfg.spark.master == "yarn"
    assert cfg.spark.checkpoint_dir.startswith("hdfs://127.0.0.1:")


def test_local_default_stays_on_loopback():
    assert endpoints.kafka_bootstrap(DEFAULT).startswith("127.0.0.1:")
    assert endpoints.cassandra_contact_points(DEFAULT) == ["127.0.0.1"]
    assert schema.replication(DEFAULT) == "{'class': 'SimpleStrategy', 'replication_factor': 1}"
