"""The Cassandra cluster of ``cassandra.nodes`` without a running node: identifiers that may be
formatted into CQL, each node's rendered configuration, the role statements (password bound as a
parameter, never in the CQL text), and the consistency levels clients and the connector use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from gaitstream import cassandra_admin, clients, config, endpoints
from gaitstream.config import ConfigError
from gaitstream.health import cassandra as health

CLUSTER_LOCAL = config.REPO_ROOT / "conf" / "templates" / "cluster-local.toml"
PASSWORD = "p'w\"%s; DROP ROLE x --"
ENV = {"GAITSTREAM_RUNTIME_SECRETS_FILE": "", "GAITSTREAM_CASSANDRA_PASSWORD": PASSWORD}


def cluster_cfg(tmp_path: Path | None = None, **env: str) -> config.Config:
    extra = {"GAITSTREAM_RUNTIME_DIR": str(tmp_path)} if tmp_path else {}
    return config.load(CLUSTER_LOCAL, env={**ENV, **extra, **env})


DEFAULT = config.load(env={})


@pytest.mark.parametrize("name", ["gaitstream", "GaitStream", "_svc", "app_2", "a"])
def test_plain_identifiers_pass(name: str):
    assert cassandra_admin.identifier(name, "role") == name


@pytest.mark.parametrize(
    "name", ["", "1abc", "gait stream", "gait-stream", "x'; DROP ROLE y", 'a"b', "rôle", "a.b", "a\n"]
)
def test_other_identifiers_are_refused(name: str):
    with pytest.raises(ConfigError, match="not a plain identifier"):
        cassandra_admin.identifier(name, "role")


def test_role_name_is_validated_and_not_the_builtin_superuser():
    with pytest.raises(ConfigError, match="not a plain identifier"):
        cassandra_admin.ensure_role(cluster_cfg(GAITSTREAM_CASSANDRA_USERNAME="gait'stream"), FakeSession())
    with pytest.raises(ConfigError, match="must not be 'cassandra'"):
        cassandra_admin.ensure_role(cluster_cfg(GAITSTREAM_CASSANDRA_USERNAME="cassandra"), FakeSession())
    with pytest.raises(ConfigError, match="password is empty"):
        cassandra_admin.ensure_role(cluster_cfg(GAITSTREAM_CASSANDRA_PASSWORD=""), FakeSession())


def test_nodes_are_numbered_from_one_and_checked():
    cfg = cluster_cfg()
    assert [(n.id, n.host, n.port, n.storage_port) for n in cassandra_admin.nodes(cfg)] == [
        (1, "127.0.0.1", 29042, 27000),
        (2, "127.0.0.2", 29042, 27000),
        (3, "127.0.0.3", 29042, 27000),
    ]
    assert cassandra_admin.nodes(DEFAULT) == []  # one node on cassandra.host: stack/cassandra.sh's old path
    with pytest.raises(ConfigError, match="listed twice"):
        cassandra_admin.nodes(cluster_cfg(GAITSTREAM_CASSANDRA_NODES="127.0.0.1,127.0.0.1"))
    with pytest.raises(ConfigError, match="no Cassandra node 4"):
        cassandra_admin.node(cfg, 4)


def test_each_node_gets_its_address_folders_seed_snitch_and_authentication(tmp_path: Path):
    cfg = cluster_cfg(tmp_path)
    for n in cassandra_admin.nodes(cfg):
        text = cassandra_admin.render_yaml(cfg, n.id)
        assert "@" not in text.replace("@DATA_DIR@", "")  # every placeholder filled
        node = yaml.safe_load(text)
        home = tmp_path / "cassandra" / f"node{n.id}"
        assert node["listen_address"] == node["rpc_address"] == n.host
        assert node["native_transport_port"] == 29042 and node["storage_port"] == 27000
        assert node["seed_provider"][0]["parameters"][0]["seeds"] == "127.0.0.1:27000"
        assert node["endpoint_snitch"] == "GossipingPropertyFileSnitch"
        assert node["authenticator"] == "PasswordAuthenticator" and node["authorizer"] == "CassandraAuthorizer"
        assert node["num_tokens"] == cassandra_admin.NUM_TOKENS and node["auto_bootstrap"] is False
        assert node["data_file_directories"] == [str(home / "data")]
        assert node["commitlog_directory"] == str(home / "commitlog")
        assert node["hints_directory"] == str(home / "hints")
        assert node["cluster_name"] == cfg.cassandra.cluster_name
        assert node["commitlog_sync"] == "batch"  # the template's durability is kept
        assert cassandra_admin.render_rackdc(cfg, n.id) == f"dc=dc1\nrack=rack{n.id}\n"


def test_without_a_username_the_nodes_run_without_authentication():
    node = yaml.safe_load(cassandra_admin.render_yaml(cluster_cfg(GAITSTREAM_CASSANDRA_USERNAME=""), 1))
    assert node["authenticator"] == "AllowAllAuthenticator" and node["authorizer"] == "AllowAllAuthorizer"


def test_write_creates_the_node_folders_and_leaves_data_alone(tmp_path: Path):
    cfg = cluster_cfg(tmp_path)
    home = cassandra_admin.write(cfg, 2)
    assert home == tmp_path / "cassandra" / "node2"
    (home / "data" / "kept").write_text("x")
    cassandra_admin.write(cfg, 2)
    assert (home / "data" / "kept").read_text() == "x"
    assert {p.name for p in (home / "conf").iterdir()} == {
        "cassandra.yaml",
        "cassandra-rackdc.properties",
        "logback.xml",
    }
    assert all((home / folder).is_dir() for folder in cassandra_admin.NODE_FOLDERS)


def test_a_bad_data_centre_name_is_refused():
    with pytest.raises(ConfigError, match="local_datacenter"):
        cassandra_admin.render_rackdc(cluster_cfg(GAITSTREAM_CASSANDRA_LOCAL_DATACENTER="dc1'"), 1)


def test_system_auth_is_replicated_to_every_node():
    cfg = cluster_cfg()
    assert cassandra_admin.auth_replication_cql(cfg) == (
        "ALTER KEYSPACE system_auth WITH replication = {'class': 'NetworkTopologyStrategy', 'dc1': 3}"
    )
    assert health.replication(cfg) == "{'class': 'NetworkTopologyStrategy', 'dc1': 3}"
    assert health.replication(DEFAULT) == "{'class': 'SimpleStrategy', 'replication_factor': 1}"


class Row:
    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)


class Result:
    def __init__(self, row: Row | None) -> None:
        self.row = row

    def one(self) -> Row | None:
        return self.row


class FakeSession:
    """Records every statement; answers the two reads setup makes."""

    def __init__(self, replication: dict[str, str] | None = None, default_role: Row | None = None) -> None:
        self.calls: list[tuple[str, tuple[Any, ...] | None]] = []
        self.replication, self.default_role = replication, default_role

    def execute(self, query: str, parameters: tuple[Any, ...] | None = None, timeout: float | None = None) -> Result:
        self.calls.append((query, parameters))
        if "system_schema.keyspaces" in query:
            return Result(Row(replication=self.replication) if self.replication else None)
        if "system_auth.roles" in query:
            return Result(self.default_role)
        return Result(None)


def test_the_role_password_is_a_bound_parameter_never_cql_text():
    session = FakeSession()
    cassandra_admin.ensure_role(cluster_cfg(), session)
    assert [q for q, _ in session.calls] == [
        'CREATE ROLE IF NOT EXISTS "gaitstream" WITH PASSWORD = %s AND LOGIN = true AND SUPERUSER = true',
        'ALTER ROLE "gaitstream" WITH PASSWORD = %s AND LOGIN = true AND SUPERUSER = true',
    ]
    assert all(params == (PASSWORD,) for _, params in session.calls)


def test_the_builtin_superuser_is_disabled_once():
    session = FakeSession(default_role=Row(can_login=True, is_superuser=True))
    assert cassandra_admin.disable_default_superuser(session) is True
    query, params = session.calls[-1]
    assert query == "ALTER ROLE cassandra WITH PASSWORD = %s AND LOGIN = false AND SUPERUSER = false"
    assert params and len(params[0]) >= 32 and params[0] != "cassandra"
    done = FakeSession(default_role=Row(can_login=False, is_superuser=False))
    assert cassandra_admin.disable_default_superuser(done) is False and len(done.calls) == 1


def test_system_auth_replication_is_changed_only_when_it_differs():
    cfg = cluster_cfg()
    same = FakeSession(replication=cassandra_admin.auth_replication(cfg))
    assert cassandra_admin.ensure_auth_replication(cfg, same) is False and len(same.calls) == 1
    other = FakeSession(replication={"class": "org.apache.cassandra.locator.SimpleStrategy", "replication_factor": "1"})
    assert cassandra_admin.ensure_auth_replication(cfg, other) is True
    assert other.calls[-1][0] == cassandra_admin.auth_replication_cql(cfg)


def test_consistency_levels_for_the_connector():
    assert endpoints.spark_cassandra_conf(DEFAULT)["spark.cassandra.output.consistency.level"] == "LOCAL_ONE"
    assert endpoints.spark_cassandra_conf(DEFAULT)["spark.cassandra.input.consistency.level"] == "LOCAL_ONE"
    conf = endpoints.spark_cassandra_conf(cluster_cfg(GAITSTREAM_CASSANDRA_READ_CONSISTENCY="ONE"))
    assert conf["spark.cassandra.output.consistency.level"] == "LOCAL_QUORUM"
    assert conf["spark.cassandra.input.consistency.level"] == "ONE"
    with pytest.raises(ConfigError, match="read_consistency"):
        endpoints.cassandra_consistency(config.load(env={"GAITSTREAM_CASSANDRA_READ_CONSISTENCY": "MOST"}), "read")


@pytest.mark.parametrize(("cfg", "level"), [(DEFAULT, "LOCAL_ONE"), (cluster_cfg(), "LOCAL_QUORUM")])
def test_sessions_read_at_the_configured_consistency(monkeypatch: pytest.MonkeyPatch, cfg: config.Config, level: str):
    from cassandra import ConsistencyLevel
    from cassandra.cluster import Cluster

    monkeypatch.setattr(Cluster, "connect", lambda self, *a, **k: "session")
    cluster, session = clients.cassandra(cfg)
    assert session == "session"
    assert ConsistencyLevel.value_to_name[cluster.profile_manager.default.consistency_level] == level
