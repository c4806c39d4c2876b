"""One frozen dataclass per ``conf/gaitstream.toml`` section: the names and types of every key.

Built and validated once by :func:`gaitstream.config.load`; each key is documented next to its
default value in ``conf/gaitstream.toml``. Standard library only (the stack scripts read it
before any venv exists).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RuntimeSection:
    """[runtime] Where the project keeps its data, logs and caches, and how strict it is about secrets."""

    dir: str
    venv_dir: str
    cache_dir: str
    start_timeout: int
    profile: str
    secrets_file: str


@dataclass(frozen=True)
class DataSection:
    """[data] The gaitpdb copy the replay, tests and offline features read."""

    gaitpdb_dir: str


@dataclass(frozen=True)
class MqttSection:
    """[mqtt] The Mosquitto broker, its TLS listener and local CA, the bridge's and the dev replayer
    account's identities, and where device credentials are kept."""

    host: str
    port: int
    tls_port: int
    use_tls: bool
    tls_dir: str
    devices_dir: str
    device_cert_days: int
    autosave_interval_seconds: int
    topic_prefix: str
    acl_namespace_levels: int
    bridge_user: str
    bridge_password: str
    replay_user: str
    replay_password: str
    max_queued_messages: int
    max_inflight_messages: int


@dataclass(frozen=True)
class ReplaySection:
    """[replay] How the replayer publishes walks (batching, speed, concurrency)."""

    batch_size: int
    speed: float
    max_active_walks: int
    max_outstanding: int
    client_id_prefix: str
    as_devices: bool
    resend_window_seconds: float


@dataclass(frozen=True)
class BridgeSection:
    """[bridge] The MQTT->Kafka bridge: its session, limits on device input, and dead letters."""

    client_id: str
    shared_group: str
    instances: int
    max_payload_bytes: int
    max_samples_per_message: int
    stats_interval: int
    delivery_timeout: int
    keepalive: int
    stats_file: str
    max_clock_ahead_seconds: float
    max_clock_behind_seconds: float
    dead_letter_max_bytes: int
    max_open_walks_per_subject: int
    walk_idle_seconds: float


@dataclass(frozen=True)
class KafkaSection:
    """[kafka] Brokers, topics, replication and client security."""

    host: str
    port: int
    controller_port: int
    version: str
    heap: str
    samples_topic: str
    dead_letter_topic: str
    partitions: int
    replication_factor: int
    min_insync_replicas: int
    bootstrap_servers: str
    security_protocol: str
    sasl_mechanism: str
    sasl_username: str
    sasl_password: str
    nodes: tuple[str, ...]


@dataclass(frozen=True)
class CassandraSection:
    """[cassandra] The Cassandra node or cluster, its keyspace, replication and credentials."""

    host: str
    port: int
    storage_port: int
    version: str
    heap: str
    heap_initial: str
    max_direct_memory: str
    cluster_name: str
    keyspace: str
    replication_class: str
    replication_factor: int
    datacenters: dict[str, int]
    contact_points: tuple[str, ...]
    local_datacenter: str
    nodes: tuple[str, ...]
    write_consistency: str
    read_consistency: str
    username: str
    password: str


@dataclass(frozen=True)
class HdfsSection:
    """[hdfs] HDFS (archive, dead letters) and the optional YARN next to it."""

    host: str
    namenode_port: int
    webhdfs_port: int
    hadoop_version: str
    heap: str
    datanode_heap: str
    datanode_port: int
    datanode_http_port: int
    datanode_ipc_port: int
    datanodes: tuple[str, ...]
    replication: int
    user: str
    archive_path: str
    namenode_uri: str
    webhdfs_url: str
    yarn: bool
    yarn_rm_port: int
    yarn_web_port: int
    yarn_nm_web_port: int
    yarn_scheduler_port: int
    yarn_tracker_port: int
    yarn_admin_port: int
    yarn_nm_localizer_port: int
    yarn_heap: str
    yarn_nm_memory_mb: int
    yarn_nm_vcores: int
    nodemanagers: tuple[str, ...]


@dataclass(frozen=True)
class MongoSection:
    """[mongo] The MongoDB wire-protocol store (FerretDB locally) for training runs."""

    host: str
    port: int
    ferretdb_version: str
    database: str
    runs_collection: str
    uri: str


@dataclass(frozen=True)
class SparkSection:
    """[spark] The Spark session of the streaming job, local or on YARN."""

    master: str
    version: str
    cassandra_connector_version: str
    ui_port: int
    bind_host: str
    driver_memory: str
    checkpoint_dir: str
    app_name: str
    shuffle_partitions: int
    windows_pool_weight: int
    state_store_provider: str
    dedupe_state_store_provider: str
    arrow_batch_size: int
    dedupe_rocksdb_memory_mb: int
    ui_retained: int
    malloc_arena_max: int
    deploy_mode: str
    yarn_queue: str
    executor_instances: int
    executor_memory: str
    executor_cores: int
    yarn_spark_jars: str
    yarn_python: str
    yarn_max_app_attempts: int
    yarn_attempt_failures_validity_interval: str
    cassandra_query_retry_count: int
    cassandra_reconnection_delay_min_ms: int
    cassandra_reconnection_delay_max_ms: int
    cassandra_connection_timeout_ms: int
    hdfs_connect_retries: int
    hdfs_connect_retry_interval_ms: int
    prometheus_enabled: bool


@dataclass(frozen=True)
class StreamingSection:
    """[streaming] The streaming job's queries: triggers, windows, walk state and sinks."""

    starting_offsets: str
    max_offsets_per_trigger: int
    trigger_seconds: float
    archive_trigger_seconds: float
    archive_tasks: int
    archive_start_wait_seconds: int
    stop_timeout_seconds: float
    window_size: int
    idle_timeout_seconds: int
    state_expiry_seconds: int
    closed_walk_retention_seconds: int
    features_every_windows: int
    max_open_windows: int
    max_seq_jump_windows: int
    dedupe_watermark_seconds: int
    archive_uri: str
    deadletter_path: str
    deadletter_uri: str
    status_file: str
    status_interval_seconds: float
    create_schema: bool
    live_predictions: bool
    prediction_alias: str
    sink_retry_seconds: float
    sink_retry_initial_seconds: float
    sink_retry_max_backoff_seconds: float
    sink_attempt_timeout_seconds: float


@dataclass(frozen=True)
class ApiSection:
    """[api] The Litestar API: address, token, registry and training defaults."""

    host: str
    port: int
    token: str
    registry_dir: str
    default_family: str
    default_feature_set: str
    cv_folds: int
    cv_repeats: int
    seed: int
    bias_variance_rounds: int
    forest_trees: int
    max_upload_bytes: int
    backend_timeout: float
    prediction_cache_seconds: float
    workers: int
    access_log: bool


@dataclass(frozen=True)
class SuperviseSection:
    """[supervise] The supervisor that restarts the bridge, the job and the API."""

    enabled: bool
    backoff_initial_seconds: float
    backoff_max_seconds: float
    max_restarts: int
    reset_after_seconds: float
    status_dir: str
    stale_after_seconds: float


#: Section name -> its dataclass, in file order.
SECTIONS: dict[str, type] = {
    "runtime": RuntimeSection,
    "data": DataSection,
    "mqtt": MqttSection,
    "replay": ReplaySection,
    "bridge": BridgeSection,
    "kafka": KafkaSection,
    "cassandra": CassandraSection,
    "hdfs": HdfsSection,
    "mongo": MongoSection,
    "spark": SparkSection,
    "streaming": StreamingSection,
    "api": ApiSection,
    "supervise": SuperviseSection,
}
