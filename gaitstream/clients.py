"""Every service client the project opens, built here from the typed config.

Cassandra sessions, Kafka producers/admins/consumers (and topic creation), MQTT clients with
their credentials, the WebHDFS client and the Mongo client all come from this module, so a new
setting (TLS, credentials, a timeout) is added once. Health checks, the bridge, the replayer,
the streaming job's driver-side calls, the API, the demo, tests and benches use it.

Each library is imported inside its function: importing this module stays cheap, and a process
only loads the drivers it uses.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any, Literal

from gaitstream import endpoints
from gaitstream.config import Config

if TYPE_CHECKING:
    import paho.mqtt.client as mqtt
    from hdfs import InsecureClient
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
    from kafka.admin import NewTopic
    from pymongo import MongoClient

CASSANDRA_CONNECT_TIMEOUT_S = 3.0
CASSANDRA_REQUEST_TIMEOUT_S = 10.0  # DDL on a freshly started node can take a few seconds
KAFKA_TIMEOUT_MS = 3000
HDFS_TIMEOUT_S = 5.0

MqttRole = Literal["bridge", "replay", "device"]
MqttTransport = Literal["tls", "tcp"]


# --- Cassandra ------------------------------------------------------------------------------
def cassandra_connection_class() -> type:
    """The driver's libev reactor when its C extension is built, else the asyncio one
    (asyncore, the driver's other fallback, is gone from Python 3.12)."""
    try:
        from cassandra.io.libevreactor import LibevConnection

        return LibevConnection
    except Exception:  # ImportError, or the extension built without libev
        from cassandra.io.asyncioreactor import AsyncioConnection

        return AsyncioConnection


def cassandra(
    cfg: Config,
    *,
    connect_timeout: float = CASSANDRA_CONNECT_TIMEOUT_S,
    request_timeout: float = CASSANDRA_REQUEST_TIMEOUT_S,
    credentials: tuple[str, str] | None = None,
    only_node: str | None = None,
    consistency: str | None = None,
) -> tuple[Any, Any]:
    """A connected ``(cluster, session)``; the caller shuts the cluster down.

    One contact point (or ``only_node``, a node's address: what an operator repairs or inspects):
    talk to exactly that node. Several: token-aware within ``cassandra.local_datacenter``.
    Credentials when ``cassandra.username`` is set (``credentials`` instead, for the role set-up in
    :mod:`gaitstream.cassandra_admin`). Statements run at ``consistency`` (default
    ``cassandra.read_consistency``) unless they set their own level (a writer asks for
    ``endpoints.cassandra_consistency(cfg, "write")``)."""
    from cassandra import ConsistencyLevel, ProtocolVersion
    from cassandra.auth import PlainTextAuthProvider
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
    from cassandra.policies import DCAwareRoundRobinPolicy, TokenAwarePolicy, WhiteListRoundRobinPolicy

    points = [only_node] if only_node else endpoints.cassandra_contact_points(cfg)
    policy = (
        WhiteListRoundRobinPolicy(points)
        if len(points) == 1
        else TokenAwarePolicy(DCAwareRoundRobinPolicy(local_dc=cfg.cassandra.local_datacenter))
    )
    profile = ExecutionProfile(
        load_balancing_policy=policy,
        request_timeout=request_timeout,
        consistency_level=ConsistencyLevel.name_to_value[consistency or endpoints.cassandra_consistency(cfg, "read")],
    )
    credentials = credentials or endpoints.cassandra_credentials(cfg)
    cluster = Cluster(
        points,
        port=cfg.cassandra.port,
        auth_provider=PlainTextAuthProvider(*credentials) if credentials else None,
        protocol_version=ProtocolVersion.V5,  # Cassandra 4+; avoids the driver's noisy downgrade
        connection_class=cassandra_connection_class(),
        connect_timeout=connect_timeout,
        control_connection_timeout=connect_timeout,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        max_schema_agreement_wait=request_timeout,
    )
    try:
        session = cluster.connect()
    except Exception:
        cluster.shutdown()
        raise
    return cluster, session


# --- Kafka ----------------------------------------------------------------------------------
def kafka_options(cfg: Config, *, timeout_ms: int = KAFKA_TIMEOUT_MS, **options: Any) -> dict[str, Any]:
    """kafka-python arguments every client shares (brokers, security, short API-version probe),
    with ``options`` over them."""
    return {
        "bootstrap_servers": endpoints.kafka_bootstrap(cfg),
        "request_timeout_ms": timeout_ms,
        "api_version_auto_timeout_ms": timeout_ms,
        "client_id": f"gaitstream-{os.getpid()}",
        **endpoints.kafka_python_security(cfg),
        **options,
    }


def kafka_producer(cfg: Config, **options: Any) -> KafkaProducer:
    """A producer waiting for every in-sync replica (``acks=all``) unless ``options`` say otherwise."""
    from kafka import KafkaProducer

    return KafkaProducer(**kafka_options(cfg, **{"acks": "all", **options}))


def kafka_admin(cfg: Config, **options: Any) -> KafkaAdminClient:
    from kafka import KafkaAdminClient

    return KafkaAdminClient(**kafka_options(cfg, **options))


def kafka_consumer(cfg: Config, *topics: str, **options: Any) -> KafkaConsumer:
    """A consumer without a group (assign/seek or end offsets) unless ``options`` name one."""
    from kafka import KafkaConsumer

    return KafkaConsumer(*topics, **kafka_options(cfg, **{"group_id": None, "enable_auto_commit": False, **options}))


def new_topic(cfg: Config, name: str, partitions: int = 1) -> NewTopic:
    """``name`` as the project creates every topic: ``kafka.replication_factor`` copies and
    ``kafka.min_insync_replicas`` (an ``acks=all`` write needs that many in-sync copies)."""
    from kafka.admin import NewTopic

    replicas, min_insync = cfg.kafka.replication_factor, cfg.kafka.min_insync_replicas
    if not 1 <= min_insync <= replicas:
        raise ValueError(
            f"kafka.min_insync_replicas={min_insync} must be between 1 and kafka.replication_factor={replicas}"
        )
    return NewTopic(
        name,
        num_partitions=partitions,
        replication_factor=replicas,
        topic_configs={"min.insync.replicas": str(min_insync)},
    )


def ensure_topic(cfg: Config, name: str, partitions: int = 1) -> bool:
    """Create ``name`` (:func:`new_topic`) unless it exists; True when it was created.

    An existing topic is left as it is (change its settings with kafka-configs.sh)."""
    from kafka.errors import TopicAlreadyExistsError

    topic = new_topic(cfg, name, partitions)
    admin = kafka_admin(cfg)
    try:
        if name in admin.list_topics():
            return False
        try:
            admin.create_topics([topic], timeout_ms=KAFKA_TIMEOUT_MS)
        except TopicAlreadyExistsError:
            return False
        return True
    finally:
        admin.close()


# --- MQTT -----------------------------------------------------------------------------------
def mqtt_credentials(cfg: Config, role: MqttRole) -> tuple[str, str]:
    """The plain listener's account of ``role``: the bridge subscribes, the dev replayer publishes."""
    m = cfg.mqtt
    return (m.bridge_user, m.bridge_password) if role == "bridge" else (m.replay_user, m.replay_password)


def mqtt_transport(cfg: Config, transport: str | None = None) -> MqttTransport:
    """``transport`` ("tls" or "tcp") when given, else what ``mqtt.use_tls`` says."""
    chosen = transport or ("tls" if cfg.mqtt.use_tls else "tcp")
    if chosen not in ("tls", "tcp"):
        raise ValueError(f"MQTT transport {chosen!r}: use 'tls' or 'tcp'")
    return "tls" if chosen == "tls" else "tcp"


def mqtt_port(cfg: Config, transport: str | None = None) -> int:
    """The listener ``transport`` connects to: ``mqtt.tls_port`` or the plain ``mqtt.port``."""
    return cfg.mqtt.tls_port if mqtt_transport(cfg, transport) == "tls" else cfg.mqtt.port


def mqtt_client(
    cfg: Config,
    role: MqttRole,
    client_id: str,
    *,
    clean_session: bool = True,
    manual_ack: bool = False,
    device: str | None = None,
    transport: str | None = None,
) -> mqtt.Client:
    """A paho client for ``role``, not yet connected (see :func:`mqtt_connect` with the same
    ``transport``). Over TLS its identity is its client certificate (the bridge's, the replayer
    account's, or ``device``'s, a subject id); over the plain loopback listener, the role's
    password. Devices speak MQTT 5, so a refused publish comes back with its reason code."""
    import paho.mqtt.client as mqtt

    from gaitstream import pki

    if role == "device":
        if not device:
            raise ValueError("a device client needs the device's name (its subject id)")
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5, manual_ack=manual_ack
        )
    else:
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv311,
            clean_session=clean_session,
            manual_ack=manual_ack,
        )
    if mqtt_transport(cfg, transport) == "tls":
        if role == "device":
            ident = pki.device_identity(cfg, str(device))
        else:
            ident = pki.service_identity(cfg, mqtt_credentials(cfg, role)[0])
        if not ident.exists:
            hint = f"gaitstream devices add {device}" if role == "device" else "stack/mosquitto.sh start"
            raise pki.PkiError(f"no MQTT client certificate for {ident.name!r} ({ident.cert}): run {hint}")
        client.tls_set(ca_certs=str(pki.ca_file(cfg)), certfile=str(ident.cert), keyfile=str(ident.key))
    elif role == "device":
        raise ValueError("devices connect over TLS only (mqtt.use_tls = true)")
    else:
        client.username_pw_set(*mqtt_credentials(cfg, role))
    return client


def mqtt_connect(cfg: Config, client: mqtt.Client, keepalive: int = 60, transport: str | None = None) -> None:
    """Connect ``client`` to the configured broker's ``transport`` listener (the network loop is
    the caller's)."""
    client.connect(cfg.mqtt.host, mqtt_port(cfg, transport), keepalive=keepalive)


# --- HDFS and MongoDB -----------------------------------------------------------------------
def hdfs(cfg: Config, timeout: float = HDFS_TIMEOUT_S) -> InsecureClient:
    """A WebHDFS client for the configured NameNode, as ``hdfs.user``."""
    from hdfs import InsecureClient

    return InsecureClient(endpoints.webhdfs_url(cfg), user=cfg.hdfs.user, timeout=timeout)


def mongo(cfg: Config, timeout: float = 2.0, appname: str = "gaitstream") -> MongoClient:
    """A client for ``mongo.uri`` (or host:port, direct): ``timeout`` for server selection and
    connecting, at least 10 s for a socket call."""
    from pymongo import MongoClient

    ms = int(timeout * 1000)
    return MongoClient(
        endpoints.mongo_uri(cfg),
        serverSelectionTimeoutMS=ms,
        connectTimeoutMS=ms,
        socketTimeoutMS=max(ms, 10_000),
        appname=appname,
    )


def quiet_cassandra_driver() -> None:
    """The driver logs every failed connection at WARNING; callers that report errors themselves
    (health checks) turn that off."""
    logging.getLogger("cassandra").setLevel(logging.CRITICAL)
