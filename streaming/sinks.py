"""Where the job's rows go: Cassandra (windows, walk_features), the Parquet archive, dead letters.

Cassandra is written per micro-batch through the spark-cassandra-connector (``foreachBatch``):
its append is an upsert on the tables' primary keys, so a micro-batch replayed after a crash
rewrites the same rows with the same values. The file sinks are exactly-once per Kafka record
through their checkpoint and ``_spark_metadata`` log (read the archive with ``spark.read``).
"""
from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from streaming import schema

CASSANDRA_FORMAT = "org.apache.spark.sql.cassandra"
WINDOW_KEY = ("subject_id", "walk_id", "window_index")
FEATURE_KEY = ("subject_id", "walk_id")


def window_rows(outputs: DataFrame) -> DataFrame:
    """Operator output → rows of the ``windows`` table."""
    columns = WINDOW_KEY + tuple(name for name, _type in schema.WINDOW_COLUMNS)
    return outputs.where(F.col("kind") == "window").select(*columns)


def feature_rows(outputs: DataFrame) -> DataFrame:
    """Operator output → rows of the ``walk_features`` table."""
    columns = FEATURE_KEY + tuple(name for name, _type in schema.FEATURE_COLUMNS)
    return outputs.where(F.col("kind") == "features").select(*columns)


def cassandra_writer(keyspace: str):
    """The foreachBatch function: both tables, upserts, one batch at a time."""

    def write_batch(outputs: DataFrame, batch_id: int) -> None:
        outputs.persist()
        try:
            for table, rows in ((schema.WINDOWS_TABLE, window_rows(outputs)),
                                (schema.FEATURES_TABLE, feature_rows(outputs))):
                (rows.write.format(CASSANDRA_FORMAT).options(keyspace=keyspace, table=table)
                 .mode("append").save())
        finally:
            outputs.unpersist()

    return write_batch


def start_cassandra(outputs: DataFrame, keyspace: str, checkpoint: str, trigger_s: float):
    return (outputs.writeStream.queryName("windows").outputMode("append")
            .foreachBatch(cassandra_writer(keyspace))
            .option("checkpointLocation", checkpoint)
            .trigger(processingTime=f"{trigger_s} seconds").start())


def start_parquet(rows: DataFrame, name: str, path: str, partition_by: list[str], checkpoint: str,
                  trigger_s: float):
    """An append-only Parquet file sink (the archive or the dead letters)."""
    return (rows.writeStream.queryName(name).format("parquet").outputMode("append")
            .partitionBy(*partition_by).option("path", path)
            .option("checkpointLocation", checkpoint)
            .trigger(processingTime=f"{trigger_s} seconds").start())
