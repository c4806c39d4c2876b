"""Where the job's rows go: Cassandra (windows, walk_features), the Parquet archive, dead letters.

Cassandra is written per micro-batch through the spark-cassandra-connector (``foreachBatch``):
its append is an upsert on the tables' primary keys, so a micro-batch replayed after a crash
rewrites the same rows with the same values. Dead letters of the same micro-batch go to
``<deadletter>/batch=<id>`` with overwrite: a replayed batch replaces its own files. The
archive is a file sink, exactly-once per Kafka record through its checkpoint and
``_spark_metadata`` log (read it with ``spark.read``).

Outages are ridden out: a write that fails on a transient error (:func:`is_transient`: Cassandra
or HDFS down, refused connections, timeouts) is retried with exponential backoff for at most
:attr:`SinkRetry.total_s` (``streaming.sink_retry_*``) before the micro-batch, and so the query,
fails. Retrying is safe because every write of the batch is idempotent (upserts, overwritten
dead-letter folder). A stop request ends the waiting at once.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import tenacity
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import (
    BooleanType,
    DoubleType,
    IntegerType,
    LongType,
    MapType,
    StringType,
    StructField,
    StructType,
)

from streaming import schema

log = logging.getLogger("gaitstream.streaming.sinks")

CASSANDRA_FORMAT = "org.apache.spark.sql.cassandra"
DEADLETTER_COLUMNS = ("subject_id", "walk_id", "key", "value", "partition", "offset", "kafka_ms", "reason")

# CQL type -> Spark type, to parse the operator's JSON rows (streaming.stateful.OUTPUT_SCHEMA).
_SPARK_TYPES = {
    "text": StringType(),
    "int": IntegerType(),
    "bigint": LongType(),
    "boolean": BooleanType(),
    "double": DoubleType(),
    "map<text, double>": MapType(StringType(), DoubleType()),
}


def _struct(columns: tuple[tuple[str, str], ...]) -> StructType:
    return StructType([StructField(name, _SPARK_TYPES[kind]) for name, kind in columns])


# The columns of each kind of operator row, as its JSON holds them.
WINDOW_ROW = _struct(schema.WINDOW_KEY + schema.WINDOW_COLUMNS)
FEATURE_ROW = _struct(schema.FEATURE_KEY + schema.FEATURE_COLUMNS)
DEADLETTER_ROW = _struct(
    (("subject_id", "text"), ("walk_id", "text"), ("key", "text"))
    + (("partition", "int"), ("offset", "bigint"), ("kafka_ms", "bigint"), ("reason", "text"))
)


def _parsed(outputs: DataFrame, kind: str, row: StructType) -> DataFrame:
    """The operator's rows of one kind, their JSON parsed in the JVM (FAILFAST: a row that does not
    parse is a bug to see, never a silent null)."""
    parsed = F.from_json(F.col("row").cast("string"), row, {"mode": "FAILFAST"}).alias("r")
    return outputs.where(F.col("kind") == kind).select(parsed, "value").select("r.*", "value")


def window_rows(outputs: DataFrame) -> DataFrame:
    """Operator output → rows of the ``windows`` table."""
    return _parsed(outputs, "window", WINDOW_ROW).select(*WINDOW_ROW.names)


def feature_rows(outputs: DataFrame) -> DataFrame:
    """Operator output → rows of the ``walk_features`` table."""
    return _parsed(outputs, "features", FEATURE_ROW).select(*FEATURE_ROW.names)


def dead_letter_rows(outputs: DataFrame) -> DataFrame:
    """Operator output → dead letters: the record's bytes as text, its Kafka coordinates, the reason."""
    return (
        _parsed(outputs, "deadletter", DEADLETTER_ROW)
        .select(*DEADLETTER_COLUMNS)
        .withColumn("value", F.col("value").cast("string"))
        .withColumn("date", F.to_date(F.timestamp_millis("kafka_ms")))
    )


# Errors that mean "the database or file system is away or slow", in the text of the Python or
# Java exception (py4j carries the whole Java cause chain): worth waiting for.
TRANSIENT = re.compile(
    "|".join(
        (
            r"AllNodesFailedException",
            r"NoNodeAvailableException",
            r"NoHostAvailable",
            r"DriverTimeoutException",
            r"Failed to open native connection",
            r"Failed to write statements",
            r"ClosedConnectionException",
            r"HeartbeatException",
            r"BusyConnectionException",
            r"ConnectionInitException",
            r"WriteTimeoutException",
            r"ReadTimeoutException",
            r"UnavailableException",
            # The same unavailability reached through an auth check: a schema refresh's query refused
            # while a node was partitioned away ("Unable to perform authorization of super-user
            # permission: Cannot achieve consistency level LOCAL_QUORUM"; cluster fault test).
            r"Cannot achieve consistency level",
            r"OverloadedException",
            r"ConnectException",
            r"Connection refused",
            r"Connection reset",
            r"SocketTimeoutException",
            r"NodeUnavailableException",
            r"Control channel not available",
            r"aborting schema refresh",
            r"WriteHung",
            r"BackendDown",
            r"SafeModeException",
            r"RetriableException",
            r"StandbyException",
            r"minReplication",
            r"EOFException",
            r"Failed on local exception",  # an HDFS RPC connection dropped by a dying NameNode
            # Kafka metadata not ready: a topic being created (the bridge creates it on first use,
            # maybe just as the job starts) or a partition's leader moving.
            r"UnknownTopicOrPartitionException",
            r"LeaderNotAvailableException",
            r"NotLeaderOrFollowerException",
        )
    )
)


def is_transient(exc: BaseException) -> bool:
    return bool(TRANSIENT.search(f"{type(exc).__name__}: {exc}"))


def worth_waiting_out(error: str, backend_away: Callable[[], bool]) -> bool:
    """Whether a failed write or query (``error``: its type and text) is an outage to wait out: never
    a stop asked for (``StopRequested``); else words of :data:`TRANSIENT`, or any error while its
    backend does not answer (``backend_away()``, probed only then): a node killed mid-write fails it
    with whatever its client was doing, in words TRANSIENT need not know."""
    if "StopRequested" in error:
        return False
    return bool(TRANSIENT.search(error)) or backend_away()


class StopRequested(RuntimeError):
    """The job is stopping: a write being retried gives up at once."""


class BackendDown(ConnectionError):
    """The backend's port does not answer yet: the write is not even tried (see :attr:`SinkRetry.ready`)."""


def tcp_probe(hosts: list[str], port: int, timeout_s: float = 2.0) -> Callable[[], bool]:
    """A readiness check: True when one of ``hosts`` accepts a TCP connection on ``port``."""
    import socket

    def ready() -> bool:
        for host in hosts:
            try:
                socket.create_connection((host, port), timeout_s).close()
                return True
            except OSError:
                continue
        return False

    return ready


class WriteHung(RuntimeError):
    """A retried write did not return within the attempt timeout (seen: the Cassandra driver's
    schema refresh waiting forever on a control connection lost during the outage)."""


def call_with_timeout(write: Callable[[], object], timeout_s: float, what: str) -> None:
    """``write()`` in a daemon thread (its own JVM thread through py4j); :class:`WriteHung` when it
    has not returned after ``timeout_s``: the stuck call is abandoned, the next attempt starts afresh."""
    outcome: dict = {}

    def run() -> None:
        try:
            write()
        except BaseException as exc:  # handed to the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, name=f"sink-attempt {what}", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        raise WriteHung(f"{what}: write hung for {timeout_s:.0f}s")
    if "error" in outcome:
        raise outcome["error"]


@dataclass(frozen=True)
class SinkRetry:
    """How long a failing write of one micro-batch is retried (``streaming.sink_retry_*``)."""

    total_s: float = 600.0
    initial_s: float = 1.0
    max_backoff_s: float = 5.0
    stop: threading.Event = field(default_factory=threading.Event, compare=False)
    # A retry (never the first attempt) that has not returned after this long is abandoned; after
    # max_hung such attempts the batch fails (the job exits, its supervisor restarts it afresh).
    attempt_timeout_s: float = 30.0
    max_hung: int = 2
    # After a failure, a gated write is tried again only once ``ready()`` holds (the backend's port
    # answers), and ``settle_s`` after it first does (the connector's session reconnects within its
    # reconnection delay): calling the connector while the node is away is what hangs it.
    ready: Callable[[], bool] | None = field(default=None, compare=False)
    settle_s: float = 0.0
    # Called when the backend answers again and after a hung attempt: drops the connector's
    # cached sessions, so the next write opens a fresh one instead of waiting on a connection
    # (and its schema refresh) left over from before the outage.
    reset: Callable[[], None] | None = field(default=None, compare=False)

    def _reset(self, what: str) -> None:
        if self.reset is None:
            return
        try:
            self.reset()
        except Exception as exc:  # a failed reset must not turn a retry into a failure
            log.warning("%s: could not reset the connector's sessions: %s", what, exc)

    def _sleep(self, seconds: float) -> None:
        """tenacity's backoff sleep, cut short by a stop (the stop condition then ends the retries)."""
        self.stop.wait(seconds)

    def call(self, what: str, write: Callable[[], object], gated: bool = False) -> None:
        """``write()``, retried on transient errors; logs each failed attempt and the recovery."""
        started = time.monotonic()
        failures, hung, was_down = [0], [0], [False]

        def attempt() -> None:
            if not failures[0]:
                write()  # the usual path: inline, on the query's own thread
                return
            if self.stop.is_set():  # woken from the backoff by a stop: do not wait again
                raise StopRequested(f"{what}: stop requested while the write was failing")
            if gated and self.ready is not None:
                if not self.ready():
                    was_down[0] = True
                    raise BackendDown(f"{what}: backend not reachable yet")
                if was_down[0]:
                    was_down[0] = False
                    log.warning("%s: backend reachable again; writing in %.0fs", what, self.settle_s)
                    self._reset(what)
                    if self.stop.wait(self.settle_s):
                        raise StopRequested(f"{what}: stop requested while the write was failing")
            try:
                call_with_timeout(write, self.attempt_timeout_s, what)
            except WriteHung:
                hung[0] += 1
                self._reset(what)
                if hung[0] >= self.max_hung:
                    raise StopRequested(
                        f"{what}: {hung[0]} attempts hung; failing the batch for a fresh start"
                    ) from None
                raise

        def before_sleep(state: tenacity.RetryCallState) -> None:
            assert state.outcome is not None and state.next_action is not None  # set before any sleep
            failures[0] += 1
            exc = state.outcome.exception()
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            cause = TRANSIENT.search(str(exc))
            log.warning(
                "%s failed (%s%s), attempt %d, retrying in %.1fs (gives up %.0fs after the first failure)",
                what,
                cause.group(0) if cause else type(exc).__name__,
                f": {first[:200]}" if first else "",
                state.attempt_number,
                state.next_action.sleep,
                self.total_s,
            )

        def worth_retrying(exc: BaseException) -> bool:
            ready = self.ready if gated else None
            return worth_waiting_out(f"{type(exc).__name__}: {exc}", lambda: ready is not None and not ready())

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(worth_retrying),
            stop=tenacity.stop_after_delay(self.total_s) | tenacity.stop_when_event_set(self.stop),
            wait=tenacity.wait_exponential(multiplier=self.initial_s, max=self.max_backoff_s),
            sleep=self._sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        retrying(attempt)
        if failures[0]:
            log.warning("%s succeeded after %d failed attempts (%.0fs)", what, failures[0], time.monotonic() - started)


def evict_cassandra_sessions() -> None:
    """Close the spark-cassandra-connector's idle cached sessions in the driver's JVM
    (``CassandraConnector.evictCache``); the next write connects afresh."""
    from pyspark import SparkContext

    sc = SparkContext._active_spark_context
    if sc is not None and sc._jvm is not None:
        sc._jvm.com.datastax.spark.connector.cql.CassandraConnector.evictCache()


def walk_writer(
    keyspace: str, deadletter_uri: str, retry: SinkRetry | None = None, scorer=None, slow_s: float = float("inf")
):
    """The foreachBatch function: both tables (upserts) and the batch's dead letters, one batch at a
    time, each write retried through ``retry`` while its backend is away; then, with a
    :class:`streaming.predictions.LiveScorer`, the live predictions of the batch's features.
    A batch that takes longer than ``slow_s`` is logged with the time of each step."""
    retry = retry or SinkRetry()

    def score(rows: list[dict], batch_id: int) -> None:
        try:
            scorer.score(rows)
        except Exception as exc:  # a model that cannot score must not stop the windows
            if is_transient(exc):
                raise
            log.error("batch %s: live predictions skipped: %s: %s", batch_id, type(exc).__name__, exc)

    def write_batch(outputs: DataFrame, batch_id: int) -> None:
        steps: dict[str, float] = {}
        mark = time.monotonic()

        def done(step: str) -> None:
            nonlocal mark
            now = time.monotonic()
            steps[step] = now - mark
            mark = now

        outputs.persist()
        try:
            # One job computes the batch (into the cache) and counts its rows by kind; a kind with
            # no rows costs no Spark job (most micro-batches have no features and no dead letters).
            counts = {row["kind"]: row["count"] for row in outputs.groupBy("kind").count().collect()}
            done("operator")
            for kind, table, rows in (
                ("window", schema.WINDOWS_TABLE, window_rows(outputs)),
                ("features", schema.FEATURES_TABLE, feature_rows(outputs)),
            ):
                if not counts.get(kind):
                    continue
                writer = rows.write.format(CASSANDRA_FORMAT).options(keyspace=keyspace, table=table).mode("append")
                retry.call(f"batch {batch_id}: Cassandra {keyspace}.{table}", writer.save, gated=True)
                done(table)
            if scorer is not None and counts.get("features"):
                features = [row.asDict(recursive=True) for row in feature_rows(outputs).collect()]
                retry.call(f"batch {batch_id}: live predictions", lambda: score(features, batch_id))
                done("predictions")
            if counts.get("deadletter"):
                dead = dead_letter_rows(outputs)
                target = f"{deadletter_uri.rstrip('/')}/batch={batch_id}"
                retry.call(
                    f"batch {batch_id}: dead letters {target}",
                    lambda: dead.write.mode("overwrite").partitionBy("date").parquet(target),
                )
                done("dead letters")
        finally:
            outputs.unpersist()
        if sum(steps.values()) > slow_s:
            log.info(
                "batch %s took %.1fs: %s; rows %s",
                batch_id,
                sum(steps.values()),
                ", ".join(f"{step} {seconds:.2f}s" for step, seconds in steps.items()),
                counts,
            )

    return write_batch


def start_walks(
    outputs: DataFrame,
    keyspace: str,
    deadletter_uri: str,
    checkpoint: str,
    trigger_s: float,
    retry: SinkRetry | None = None,
    scorer=None,
):
    return (
        outputs.writeStream.queryName("windows")
        .outputMode("append")
        .foreachBatch(walk_writer(keyspace, deadletter_uri, retry, scorer, slow_s=2 * trigger_s))
        .option("checkpointLocation", checkpoint)
        .trigger(processingTime=f"{trigger_s} seconds")
        .start()
    )


def start_parquet(rows: DataFrame, name: str, path: str, partition_by: list[str], checkpoint: str, trigger_s: float):
    """An append-only Parquet file sink (the archive)."""
    return (
        rows.writeStream.queryName(name)
        .format("parquet")
        .outputMode("append")
        .partitionBy(*partition_by)
        .option("path", path)
        .option("checkpointLocation", checkpoint)
        .trigger(processingTime=f"{trigger_s} seconds")
        .start()
    )
