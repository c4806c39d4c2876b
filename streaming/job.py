"""The gaitstream Structured Streaming application (launched by ``spark-submit.sh``).

Reads top to bottom: Kafka source → two queries, each with its own checkpoint under
``spark.checkpoint_dir`` and its own trigger:

* ``windows`` (``streaming.trigger_seconds``): records grouped by Kafka key (one walk), decoded
  and checked once inside the per-walk state (bounded, :mod:`streaming.windowing`) → 100-sample
  windows + gait features → Cassandra (upserts); refused records → dead letters (Parquet);
* ``archive`` (``streaming.archive_trigger_seconds``): records deduplicated on Kafka time, decoded
  by the same checks → every valid sample once → Parquet, by study/date.

A query stopped by a transient error (a backend away: an HDFS NameNode outage fails the archive's
file sink) is started again alone from its checkpoint once its backends answer, with backoff, for
at most ``streaming.sink_retry_seconds`` (:class:`QueryRestarter`); the other query keeps running.
Any other failure ends the job (exit 1) for its supervisor.
SIGTERM/SIGINT stop the queries between micro-batches (consistent checkpoints) and exit 0.
Config keys: [kafka], [hdfs], [cassandra], [spark], [streaming], [bridge] (payload limits);
GAITSTREAM_* environment overrides apply.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

if __name__ == "__main__" and sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    # Run as a script (spark-submit): import the packages from this checkout (not the --py-files zip
    # meant for executors), so the config's relative paths resolve against the repo root, and
    # the package's own folder does not shadow top-level modules.
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from pyspark.sql import DataFrame, SparkSession  # noqa: E402

from gaitstream import config as gs_config  # noqa: E402
from gaitstream import (
    endpoints,  # noqa: E402
    secrecy,  # noqa: E402
)
from model.registry import Registry  # noqa: E402
from streaming import predictions, records, schema, sinks, spark_conf, stateful, status  # noqa: E402
from streaming.decode import Limits  # noqa: E402
from streaming.windowing import WindowSettings  # noqa: E402

log = logging.getLogger("gaitstream.streaming")


def window_settings(cfg: gs_config.Config) -> WindowSettings:
    s = cfg.streaming
    return WindowSettings(
        window_size=s.window_size,
        features_every=s.features_every_windows,
        max_open_windows=s.max_open_windows,
        max_seq_jump_windows=s.max_seq_jump_windows,
    )


def payload_limits(cfg: gs_config.Config) -> Limits:
    """The bridge's limits: the job refuses exactly what the bridge refuses."""
    return Limits(max_bytes=cfg.bridge.max_payload_bytes, max_samples=cfg.bridge.max_samples_per_message)


def read_kafka(spark: SparkSession, cfg: gs_config.Config) -> DataFrame:
    k, s = cfg.kafka, cfg.streaming
    return (
        spark.readStream.format("kafka")
        .options(**endpoints.spark_kafka_options(cfg))
        .option("subscribe", k.samples_topic)
        .option("startingOffsets", s.starting_offsets)
        .option("maxOffsetsPerTrigger", s.max_offsets_per_trigger)
        .load()
    )


def sink_retry(cfg: gs_config.Config, stop: threading.Event) -> sinks.SinkRetry:
    """How long a micro-batch's failing Cassandra/dead-letter write is retried (``streaming.sink_retry_*``)."""
    s = cfg.streaming
    ready = sinks.tcp_probe(endpoints.cassandra_contact_points(cfg), cfg.cassandra.port)
    return sinks.SinkRetry(
        s.sink_retry_seconds,
        s.sink_retry_initial_seconds,
        s.sink_retry_max_backoff_seconds,
        stop,
        s.sink_attempt_timeout_seconds,
        ready=ready,
        settle_s=float(cfg.spark.cassandra_reconnection_delay_max_ms) / 1000,
        reset=sinks.evict_cassandra_sessions,
    )


def live_scorer(cfg: gs_config.Config) -> predictions.LiveScorer | None:
    """Scores each batch's features with the registry's ``streaming.prediction_alias`` model
    (``api.registry_dir``) when ``streaming.live_predictions`` is on."""
    s = cfg.streaming
    if not s.live_predictions:
        return None
    from gaitstream import clients

    return predictions.LiveScorer(
        Registry(cfg.path("api.registry_dir"), create=False),
        cfg.cassandra.keyspace,
        lambda: clients.cassandra(cfg),
        alias=s.prediction_alias,
    )


def wait_for_first_batch(query, timeout_s: float, stop: threading.Event | None) -> None:
    """Hold the archive back until the windows query finished its first micro-batch (at most
    ``timeout_s``): after a restart, the backlog's windows go out first instead of sharing the
    cores with the archive's first, largest batch."""
    deadline = time.monotonic() + timeout_s
    while (
        query.isActive
        and query.lastProgress is None
        and time.monotonic() < deadline
        and not (stop is not None and stop.is_set())
    ):
        time.sleep(0.2)


def query_starters(spark: SparkSession, cfg: gs_config.Config, stop: threading.Event | None = None) -> dict:
    """Per query name, in start order, a function that starts it (from its checkpoint when one exists)."""
    s, sp = cfg.streaming, cfg.spark
    checkpoints = endpoints.checkpoint_root(cfg).rstrip("/")
    kafka = records.kafka_records(read_kafka(spark, cfg))
    limits = payload_limits(cfg)
    outputs = stateful.walk_outputs(
        kafka,
        window_settings(cfg),
        limits,
        float(s.idle_timeout_seconds),
        float(s.state_expiry_seconds),
        float(s.closed_walk_retention_seconds),
    )
    # The archive runs at most streaming.archive_tasks tasks at once: its Kafka read (before the
    # dedupe's shuffle) and its output (after it) are both coalesced.
    archive = records.archive_rows(
        records.dedupe_records(
            records.valid_records(records.at_most(kafka, s.archive_tasks), limits), s.dedupe_watermark_seconds
        ),
        s.archive_tasks,
    )
    retry, scorer = sink_retry(cfg, stop or threading.Event()), live_scorer(cfg)
    started: dict = {}

    def walks():
        # The state store is chosen per query (the session conf is read when a query starts and kept
        # in its checkpoint): small per-walk states in the JVM heap, the large dedupe state in RocksDB.
        spark.conf.set("spark.sql.streaming.stateStore.providerClass", sp.state_store_provider)
        # Each query in its own FAIR pool (a thread-local property its execution thread inherits): the
        # latency path's tasks go first when both queries want the 2 cores.
        spark.sparkContext.setLocalProperty("spark.scheduler.pool", spark_conf.WINDOWS_POOL)
        started["windows"] = sinks.start_walks(
            outputs,
            cfg.cassandra.keyspace,
            endpoints.deadletter_uri(cfg),
            f"{checkpoints}/windows",
            s.trigger_seconds,
            retry,
            scorer,
        )
        return started["windows"]

    def archived():
        wait_for_first_batch(started["windows"], float(s.archive_start_wait_seconds), stop)
        spark.conf.set("spark.sql.streaming.stateStore.providerClass", sp.dedupe_state_store_provider)
        spark.sparkContext.setLocalProperty("spark.scheduler.pool", spark_conf.ARCHIVE_POOL)
        return sinks.start_parquet(
            archive,
            "archive",
            endpoints.archive_uri(cfg),
            ["study", "date"],
            f"{checkpoints}/archive",
            s.archive_trigger_seconds,
        )

    return {"windows": walks, "archive": archived}


def start_queries(spark: SparkSession, cfg: gs_config.Config, stop: threading.Event | None = None) -> list:
    return [start() for start in query_starters(spark, cfg, stop).values()]


def backend_probes(cfg: gs_config.Config) -> dict:
    """Per query, whether the backends it reads and writes answer (a TCP connect): Kafka for both,
    HDFS for the archive when it lives there, Cassandra for the windows."""
    kafka = [hp.rsplit(":", 1) for hp in endpoints.kafka_bootstrap(cfg).split(",")]
    kafka_up = sinks.tcp_probe([host for host, _port in kafka], int(kafka[0][1]))
    hdfs_up = sinks.tcp_probe([], 0)  # no host: never asked (see below)
    on_hdfs = endpoints.archive_uri(cfg).startswith("hdfs://")
    if on_hdfs:
        namenode = urlsplit(endpoints.hdfs_namenode_uri(cfg))
        hdfs_up = sinks.tcp_probe([namenode.hostname or "localhost"], namenode.port or 8020)  # as socket treats None
    cassandra_up = sinks.tcp_probe(endpoints.cassandra_contact_points(cfg), cfg.cassandra.port)
    return {
        "archive": lambda: kafka_up() and (not on_hdfs or hdfs_up()),
        "windows": lambda: kafka_up() and cassandra_up(),
    }


class QueryRestarter:
    """Starts a query that stopped on a transient error again, alone, from its checkpoint.

    Transient: an error whose text says a backend is away or slow (:data:`streaming.sinks.TRANSIENT`),
    or any error while one of the query's backends does not answer: a node killed mid-write fails
    tasks with whatever its client happened to be doing (a metadata lookup, a closed stream), and
    such a failure says nothing about the job itself.

    A restart is tried once the query's backends answer (``ready``), with exponential backoff from
    ``initial_s`` to ``max_backoff_s``; a query still failing ``total_s`` after it stopped (no
    trigger completed since) is given up, and the job fails for its supervisor. As safe as a job
    restart: the file sink is exactly-once and the foreachBatch writes idempotent per batch
    through the checkpoint. A batch failed on purpose (``StopRequested``: hung Cassandra writes
    want a fresh process) is never restarted here."""

    def __init__(self, starters: dict, ready: dict, total_s: float, initial_s: float, max_backoff_s: float):
        self.starters, self.ready = starters, ready
        self.total_s, self.initial_s, self.max_backoff_s = total_s, initial_s, max_backoff_s
        self.failing: dict[str, dict] = {}  # name → {"since", "attempts", "next_at"}
        self.restarts: dict[str, int] = {}

    def restartable(self, name: str, error: str) -> bool:
        return sinks.worth_waiting_out(error, lambda: not self.ready.get(name, lambda: True)())

    def step(self, queries: list) -> str | None:
        """Restart (in ``queries``) what is due; returns why the job must fail instead, or None."""
        now = time.monotonic()
        for index, query in enumerate(queries):
            name = query.name
            if query.isActive:
                if name in self.failing and query.lastProgress is not None:  # a trigger completed: recovered
                    log.warning(
                        "query %s running again, %.0fs after it stopped", name, now - self.failing.pop(name)["since"]
                    )
                continue
            error = str(query.exception() or "stopped without an error")
            if (
                name not in self.starters
                or "StopRequested" in error
                or (name not in self.failing and not self.restartable(name, error))
            ):
                return f"query {name} stopped: {error}"
            state = self.failing.setdefault(name, {"since": now, "attempts": 0, "next_at": now})
            if state["attempts"] == 0 and state["since"] == now:
                log.warning(
                    "query %s stopped on a transient error (or while a backend was away); restarting it "
                    "alone once its backends answer (gives up after %.0fs): %s",
                    name,
                    self.total_s,
                    error.splitlines()[0][:300],
                )
            if now - state["since"] > self.total_s:
                return f"query {name} still failing {now - state['since']:.0f}s after it stopped: {error}"
            if now < state["next_at"] or not self.ready.get(name, lambda: True)():
                continue
            state["attempts"] += 1
            state["next_at"] = now + min(self.initial_s * 2 ** (state["attempts"] - 1), self.max_backoff_s)
            try:
                queries[index] = self.starters[name]()
            except Exception as exc:  # the backend went away again, or the start itself failed
                if not self.restartable(name, f"{type(exc).__name__}: {exc}"):
                    return f"query {name} could not be started again: {exc}"
                log.warning(
                    "query %s: restart attempt %d failed: %s", name, state["attempts"], str(exc).splitlines()[0][:300]
                )
                continue
            self.restarts[name] = self.restarts.get(name, 0) + 1
            log.warning(
                "query %s started again (attempt %d; restart %d in this job)",
                name,
                state["attempts"],
                self.restarts[name],
            )
        return None


def build_session(cfg: gs_config.Config) -> SparkSession:
    """The session with :func:`streaming.spark_conf.session_conf`; resources (master, memory, jars)
    come from spark-submit (:func:`streaming.spark_conf.submit_conf`)."""
    conf = spark_conf.session_conf(cfg)
    if "spark.driver.bindAddress" in conf:  # the UI binds to SPARK_LOCAL_IP only: for a JVM started from here
        os.environ.setdefault("SPARK_LOCAL_IP", conf["spark.driver.bindAddress"])
    builder = SparkSession.builder.appName(cfg.spark.app_name)
    for key, value in conf.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def stop_between_batches(query, timeout_s: float) -> None:
    """Stop a query while no micro-batch runs if one comes within ``timeout_s`` (a query that is
    behind has none: it is then interrupted, which the state stores survive: nothing of ours
    runs in Python downstream of RocksDB)."""
    deadline = time.monotonic() + timeout_s
    while query.isActive and query.status.get("isTriggerActive") and time.monotonic() < deadline:
        time.sleep(0.01)
    query.stop()


# Loggers that warn once per task about something harmless here, burying the job's own lines: the
# Kafka source reads from the Python runner's feeder thread, never an UninterruptibleThread.
NOISY_LOGGERS = ("org.apache.spark.sql.kafka010.consumer.KafkaDataConsumer",)


def quiet_noisy_loggers(spark: SparkSession) -> None:
    """Raise :data:`NOISY_LOGGERS` to ERROR in the driver's JVM (local mode: the executors' too)."""
    jvm = spark.sparkContext._jvm
    if jvm is None:  # a stopped context: nothing to quiet
        return
    for name in NOISY_LOGGERS:
        jvm.org.apache.logging.log4j.core.config.Configurator.setLevel(name, jvm.org.apache.logging.log4j.Level.ERROR)


def run(cfg: gs_config.Config) -> int:
    stop_requested = threading.Event()

    def request_stop(signum, _frame):
        log.info("signal %s: stopping the queries", signal.Signals(signum).name)
        stop_requested.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    if cfg.streaming.create_schema:  # a (re)start while Cassandra is down waits for it, as the sinks do
        sink_retry(cfg, stop_requested).call("schema", lambda: schema.create(cfg), gated=True)
    spark = build_session(cfg)
    spark.sparkContext.setLogLevel("WARN")
    quiet_noisy_loggers(spark)
    ui_url = spark.sparkContext.uiWebUrl
    status_path = cfg.path("streaming.status_file")
    starters = query_starters(spark, cfg, stop_requested)
    queries = [start() for start in starters.values()]
    s = cfg.streaming
    restarter = QueryRestarter(
        starters,
        backend_probes(cfg),
        s.sink_retry_seconds,
        s.sink_retry_initial_seconds,
        s.sink_retry_max_backoff_seconds,
    )
    started_at_ms = int(time.time() * 1000)
    print(f"gaitstream streaming job running; Spark UI: {ui_url}; status: {status_path}", flush=True)
    log.info(
        "archive %s, dead letters %s, checkpoints %s, keyspace %s",
        endpoints.archive_uri(cfg),
        endpoints.deadletter_uri(cfg),
        endpoints.checkpoint_root(cfg),
        cfg.cassandra.keyspace,
    )
    failed = None
    interval = cfg.streaming.status_interval_seconds
    while not stop_requested.is_set():
        status.write_status(status_path, queries, ui_url, "running", started_at_ms)
        failed = restarter.step(queries)  # a query stopped by a transient error is started again alone
        if failed is not None:
            log.error("%s", failed)
            break
        stop_requested.wait(interval)
    for query in queries:
        stop_between_batches(query, cfg.streaming.stop_timeout_seconds)
        log.info("query %s stopped (last batch %s)", query.name, (query.lastProgress or {}).get("batchId"))
    status.write_status(status_path, queries, ui_url, "failed" if failed else "stopped", started_at_ms)
    spark.stop()
    return 1 if failed else 0


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("py4j", "cassandra"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    cfg = gs_config.load()
    try:
        secrecy.require_safe(cfg, "streaming")  # no placeholder secret outside the dev profile
    except secrecy.SecretError as exc:
        log.error("%s", exc)
        return 2
    return run(cfg)


if __name__ == "__main__":
    sys.exit(main())
