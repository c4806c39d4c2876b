"""Where the job's rows go: Cassandra (windows, walk_features), the Parquet archive, dead letters.

Cassandra is written per micro-batch through the spark-cassandra-connector (``foreachBatch``):
its append is an upsert on the tables' primary keys, so a micro-batch replayed after a crash
rewrites the same rows with the same values. Dead letters of the same micro-batch go to
``<deadletter>/batch=<id>`` with overwrite: a replayed batch replaces its own files. The
archive is a file sink, exactly-once per Kafka record through its checkpoint and
``_spark_metadata`` log (read it with ``spark.read``).
"""
from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from streaming import schema

CASSANDRA_FORMAT = "org.apache.spark.sql.cassandra"
WINDOW_KEY = ("subject_id", "walk_id", "window_index")
FEATURE_KEY = ("subject_id", "walk_id")
DEADLETTER_COLUMNS = ("subject_id", "walk_id", "key", "value", "partition", "offset", "kafka_ms", "reason")


def window_rows(outputs: DataFrame) -> DataFrame:
    """Operator output → rows of the ``windows`` table."""
    columns = WINDOW_KEY + tuple(name for name, _type in schema.WINDOW_COLUMNS)
    return outputs.where(F.col("kind") == "window").select(*columns)


def feature_rows(outputs: DataFrame) -> DataFrame:
    """Operator output → rows of the ``walk_features`` table."""
    columns = FEATURE_KEY + tuple(name for name, _type in schema.FEATURE_COLUMNS)
    return outputs.where(F.col("kind") == "features").select(*columns)


def dead_letter_rows(outputs: DataFrame) -> DataFrame:
    """Operator output → dead letters: the record's bytes as text, its Kafka coordinates, the reason."""
    return (outputs.where(F.col("kind") == "deadletter").select(*DEADLETTER_COLUMNS)
            .withColumn("value", F.col("value").cast("string"))
            .withColumn("date", F.to_date(F.timestamp_millis("kafka_ms"))))


def walk_writer(keyspace: str, deadletter_uri: str):
    """The foreachBatch function: both tables (upserts) and the batch's dead letters, one batch at a time."""

    def write_batch(outputs: DataFrame, batch_id: int) -> None:
        outputs.persist()
        try:
            for table, rows in ((schema.WINDOWS_TABLE, window_rows(outputs)),
                                (schema.FEATURES_TABLE, feature_rows(outputs))):
                (rows.write.format(CASSANDRA_FORMAT).options(keyspace=keyspace, table=table)
                 .mode("append").save())
            dead = dead_letter_rows(outputs)
            if not dead.isEmpty():
                dead.write.mode("overwrite").partitionBy("date").parquet(f"{deadletter_uri.rstrip('/')}/batch={batch_id}")
        finally:
            outputs.unpersist()

    return write_batch


def start_walks(outputs: DataFrame, keyspace: str, deadletter_uri: str, checkpoint: str, trigger_s: float):
    return (outputs.writeStream.queryName("windows").outputMode("append")
            .foreachBatch(walk_writer(keyspace, deadletter_uri))
            .option("checkpointLocation", checkpoint)
            .trigger(processingTime=f"{trigger_s} seconds").start())


def start_parquet(rows: DataFrame, name: str, path: str, partition_by: list[str], checkpoint: str,
                  trigger_s: float):
    """An append-only Parquet file sink (the archive)."""
    return (rows.writeStream.queryName(name).format("parquet").outputMode("append")
            .partitionBy(*partition_by).option("path", path)
            .option("checkpointLocation", checkpoint)
            .trigger(processingTime=f"{trigger_s} seconds").start())
