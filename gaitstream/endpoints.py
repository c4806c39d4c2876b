"""Where each external system is, derived from the config in one place.

Locally every system is ``host`` + ``port`` on loopback; a cluster deployment sets the optional
keys instead (Kafka bootstrap list and SASL, Cassandra contact points, data centre and
credentials, a MongoDB URI, an HDFS namenode URI). Every client (bridge, health checks, API,
streaming job) asks here, so the cluster templates in ``conf/templates/`` are honoured everywhere.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote_plus

from gaitstream.config import Config, ConfigError


def kafka_bootstrap(cfg: Config) -> str:
    k = cfg.kafka
    return k.bootstrap_servers or f"{k.host}:{k.port}"


def kafka_python_security(cfg: Config) -> dict[str, str]:
    """kafka-python client arguments for the configured security protocol (none for PLAINTEXT)."""
    k = cfg.kafka
    if k.security_protocol == "PLAINTEXT":
        return {}
    options = {"security_protocol": k.security_protocol}
    if k.sasl_mechanism:
        options.update(
            sasl_mechanism=k.sasl_mechanism, sasl_plain_username=k.sasl_username, sasl_plain_password=k.sasl_password
        )
    return options


def spark_kafka_options(cfg: Config) -> dict[str, str]:
    """Options for Spark's Kafka source/sink (``kafka.``-prefixed consumer properties)."""
    k = cfg.kafka
    options = {"kafka.bootstrap.servers": kafka_bootstrap(cfg)}
    if k.security_protocol != "PLAINTEXT":
        options["kafka.security.protocol"] = k.security_protocol
    if k.sasl_mechanism:
        module = (
            "org.apache.kafka.common.security.plain.PlainLoginModule"
            if k.sasl_mechanism == "PLAIN"
            else "org.apache.kafka.common.security.scram.ScramLoginModule"
        )
        options["kafka.sasl.mechanism"] = k.sasl_mechanism
        options["kafka.sasl.jaas.config"] = (
            f'{module} required username="{k.sasl_username}" password="{k.sasl_password}";'
        )
    return options


def cassandra_contact_points(cfg: Config) -> list[str]:
    points = cfg.cassandra.contact_points
    return [str(p) for p in points] if points else [cfg.cassandra.host]


def cassandra_credentials(cfg: Config) -> tuple[str, str] | None:
    c = cfg.cassandra
    return (c.username, c.password) if c.username else None


#: Consistency levels a client may ask for (the driver's and the connector's names).
CASSANDRA_CONSISTENCY_LEVELS = frozenset(
    {"ANY", "ONE", "TWO", "THREE", "QUORUM", "ALL", "LOCAL_QUORUM", "EACH_QUORUM", "LOCAL_ONE"}
)


def cassandra_consistency(cfg: Config, kind: str) -> str:
    """``cassandra.write_consistency`` (``kind`` "write") or ``cassandra.read_consistency``
    ("read"), upper-cased and checked against :data:`CASSANDRA_CONSISTENCY_LEVELS`."""
    if kind not in ("read", "write"):
        raise ValueError(f"consistency kind {kind!r}: use 'read' or 'write'")
    key = f"cassandra.{kind}_consistency"
    level = str(cfg.get(key)).strip().upper()
    if level not in CASSANDRA_CONSISTENCY_LEVELS:
        raise ConfigError(f"{key} = {level!r}: use one of {', '.join(sorted(CASSANDRA_CONSISTENCY_LEVELS))}")
    return level


def spark_cassandra_conf(cfg: Config) -> dict[str, str]:
    """spark-cassandra-connector settings (``spark.cassandra.*``): where, who, and the consistency
    of the job's writes (``cassandra.write_consistency``) and reads (``cassandra.read_consistency``)."""
    conf = {
        "spark.cassandra.connection.host": ",".join(cassandra_contact_points(cfg)),
        "spark.cassandra.connection.port": str(cfg.cassandra.port),
        "spark.cassandra.connection.localDC": cfg.cassandra.local_datacenter,
        "spark.cassandra.output.consistency.level": cassandra_consistency(cfg, "write"),
        "spark.cassandra.input.consistency.level": cassandra_consistency(cfg, "read"),
    }
    credentials = cassandra_credentials(cfg)
    if credentials:
        conf["spark.cassandra.auth.username"], conf["spark.cassandra.auth.password"] = credentials
    return conf


def mongo_uri(cfg: Config) -> str:
    m = cfg.mongo
    if m.uri:
        return m.uri
    return f"mongodb://{quote_plus(m.host)}:{m.port}/?directConnection=true"


def hdfs_namenode_uri(cfg: Config) -> str:
    h = cfg.hdfs
    return h.namenode_uri or f"hdfs://{h.host}:{h.namenode_port}"


def webhdfs_url(cfg: Config) -> str:
    h = cfg.hdfs
    return h.webhdfs_url or f"http://{h.host}:{h.webhdfs_port}"


def hdfs_uri(cfg: Config, path: str) -> str:
    """``path`` on the configured HDFS (``hdfs://namenode:port/path``)."""
    return hdfs_namenode_uri(cfg) + path


def archive_uri(cfg: Config) -> str:
    """Where the streaming job archives raw samples: ``streaming.archive_uri`` when set
    (e.g. ``file:///...``), else ``hdfs.archive_path`` on HDFS."""
    return cfg.streaming.archive_uri or hdfs_uri(cfg, cfg.hdfs.archive_path)


def deadletter_uri(cfg: Config) -> str:
    """Where the streaming job writes records it could not window (Parquet, with the reason)."""
    return cfg.streaming.deadletter_uri or hdfs_uri(cfg, cfg.streaming.deadletter_path)


def checkpoint_root(cfg: Config) -> str:
    """The streaming queries' checkpoint root as a URI (``spark.checkpoint_dir``: a URI, or a
    path relative to ``runtime.dir``)."""
    raw = cfg.spark.checkpoint_dir
    return raw if "://" in raw else cfg.path("spark.checkpoint_dir").as_uri()


def local_checkpoint_dir(cfg: Config) -> Path | None:
    """The checkpoint root as a local folder, or None when it is on HDFS (or another remote store)."""
    root = checkpoint_root(cfg)
    return Path(root[len("file://") :]) if root.startswith("file://") else None


def derived(cfg: Config) -> dict[str, str]:
    """Values worked out here that the shell scripts need too (``python -m gaitstream.config --shell``
    prints them as ``GS_<NAME>``)."""
    return {
        "kafka_bootstrap": kafka_bootstrap(cfg),
        "hdfs_namenode_uri": hdfs_namenode_uri(cfg),
        "webhdfs_url": webhdfs_url(cfg),
        "archive_uri": archive_uri(cfg),
        "deadletter_uri": deadletter_uri(cfg),
        "checkpoint_root": checkpoint_root(cfg),
    }


def is_loopback(host: str) -> bool:
    """``host`` names only this machine (127.0.0.0/8, ::1, localhost); empty and 0.0.0.0 do not."""
    import ipaddress

    host = str(host).strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def spark_bind_conf(cfg: Config) -> dict[str, str]:
    """Where the driver listens ([spark] bind_host) and no kill links in its UI.

    Spark 3.5's UI binds to ``SPARK_LOCAL_IP`` only (else 0.0.0.0): spark-submit.sh exports it
    from the same key; these settings bind the driver's RPC and block manager there too and make
    the UI URL the job reports (``spark.driver.host``) the loopback one.
    """
    conf = {"spark.ui.killEnabled": "false"}
    host = cfg.spark.bind_host.strip()
    if host:
        conf.update({"spark.driver.bindAddress": host, "spark.driver.host": host})
    return conf
