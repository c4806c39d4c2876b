"""Kafka records → typed sample rows: the payload schema (bridge/payload.py, v1) declared once.

Every step takes and returns a DataFrame, so the unit tests run them on static DataFrames of
Kafka-like rows (``key``, ``value`` binary, ``topic``, ``partition``, ``offset``, ``timestamp``).
A record that does not parse or does not fit the schema is never dropped silently and never
fails the query: :func:`dead_letters` gives it with a reason.
"""
from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import (ArrayType, DoubleType, IntegerType, LongType, StringType, StructField,
                               StructType)

from bridge import payload
from gaitstream.gaitpdb import COLUMNS

PAYLOAD_SCHEMA = StructType([
    StructField("v", IntegerType()),
    StructField("study", StringType()),
    StructField("subject_id", StringType()),
    StructField("walk_id", StringType()),
    StructField("seq", LongType()),
    StructField("sent_at_ms", LongType()),
    StructField("samples", ArrayType(ArrayType(DoubleType()))),
])
KEY_FIELDS = ("study", "subject_id", "walk_id", "seq", "sent_at_ms")


def _reason(p: Column) -> Column:
    """Why a parsed payload is unusable, or null when it is fine (first failing check wins)."""
    samples = p["samples"]
    return (F.when(p.isNull(), F.lit("bad JSON"))
            .when(p["v"].isNull(), F.lit("schema: v missing or not an integer"))
            .when(p["v"] != payload.SCHEMA_VERSION, F.concat(F.lit("unknown schema version "), p["v"].cast("string")))
            .when(F.greatest(*[p[name].isNull() for name in KEY_FIELDS]),
                  F.lit("schema: a key field is missing or of the wrong type"))
            .when((p["seq"] < 0) | (p["seq"] > payload.MAX_SEQ), F.lit("seq out of range"))
            .when(samples.isNull() | (F.size(samples) == 0), F.lit("no samples"))
            .when(F.exists(samples, lambda s: s.isNull() | (F.size(s) != payload.SAMPLE_WIDTH)),
                  F.lit(f"a sample does not have {payload.SAMPLE_WIDTH} numbers"))
            .when(F.exists(samples, lambda s: F.exists(s, lambda x: x.isNull() | F.isnan(x))),
                  F.lit("a sample holds null or NaN")))


def parse_records(kafka: DataFrame) -> DataFrame:
    """Kafka rows → ``payload`` struct + ``reason`` (null when valid), Kafka coordinates kept."""
    value = F.col("value").cast("string")
    parsed = F.from_json(value, PAYLOAD_SCHEMA, {"mode": "PERMISSIVE"})
    # from_json gives an all-null struct (not null) for text that is not JSON: treat it as null.
    parsed = F.when(F.greatest(*[parsed[f.name].isNotNull() for f in PAYLOAD_SCHEMA.fields]), parsed)
    return (kafka.select("key", "value", "topic", "partition", "offset", "timestamp",
                         parsed.alias("payload"))
            .withColumn("reason", _reason(F.col("payload"))))


def dead_letters(records: DataFrame) -> DataFrame:
    """Unusable records with their original bytes, Kafka coordinates and the reason."""
    return (records.where(F.col("reason").isNotNull())
            .select(F.col("key").cast("string").alias("key"), F.col("value").cast("string").alias("value"),
                    "topic", "partition", "offset", F.col("timestamp").alias("kafka_timestamp"), "reason",
                    F.to_date("timestamp").alias("date")))


def valid_batches(records: DataFrame) -> DataFrame:
    """Usable records flattened: one row per Kafka record (a batch of consecutive samples)."""
    return (records.where(F.col("reason").isNull())
            .select(*[F.col("payload")[name].alias(name) for name in KEY_FIELDS], F.col("payload.samples").alias("samples"))
            .withColumn("event_time", F.timestamp_millis("sent_at_ms")))


def dedupe_batches(batches: DataFrame, watermark_seconds: int) -> DataFrame:
    """Drop records Kafka holds twice (the bridge is at-least-once and resends byte for byte).

    A duplicate has the same walk and first seq; one arriving within ``watermark_seconds`` of
    event time (publisher clock) after the first copy is dropped.
    """
    return (batches.withWatermark("event_time", f"{int(watermark_seconds)} seconds")
            .dropDuplicatesWithinWatermark(["walk_id", "seq"]))


def explode_samples(batches: DataFrame) -> DataFrame:
    """One row per sample: seq = record seq + position, ``time`` and the 18 force channels."""
    exploded = batches.select(*KEY_FIELDS, F.posexplode("samples").alias("pos", "sample"))
    return exploded.select(
        "study", "subject_id", "walk_id", (F.col("seq") + F.col("pos")).alias("seq"), "sent_at_ms",
        *[F.col("sample")[i].alias(name) for i, name in enumerate(COLUMNS)])


def archive_rows(samples: DataFrame) -> DataFrame:
    """Samples with the archive's partition column (UTC date the publisher sent them)."""
    return samples.withColumn("date", F.to_date(F.timestamp_millis("sent_at_ms")))


SAMPLE_COLUMNS = ("study", "subject_id", "walk_id", "seq", "sent_at_ms") + COLUMNS
