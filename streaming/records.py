"""Kafka records → archive rows: one row per sample, decoded once by the shared checks.

Every step takes and returns a DataFrame, so the unit tests run them on static DataFrames of
Kafka-like rows (``key``, ``value`` binary, ``topic``, ``partition``, ``offset``, ``timestamp``).
Payloads are decoded in the Python workers (``mapInArrow`` over :mod:`streaming.decode`, before
the shuffle), with the bridge's checks: a record that fails them is not archived here; the
windows query writes it to the dead letters with its reason (one judge, one record of it).
Duplicates are dropped per (walk, first seq), then records are exploded in the JVM.

Event time is Kafka's record timestamp (set by our bridge's producer), never the device's
``sent_at_ms``: a device with a wrong clock cannot move a watermark.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import to_arrow_schema
from pyspark.sql.types import ArrayType, DoubleType, LongType, StringType, StructField, StructType, TimestampType

from gaitstream.gaitpdb import COLUMNS
from streaming.decode import Limits, decode_records

SAMPLE_COLUMNS = ("study", "subject_id", "walk_id", "seq", "sent_at_ms") + COLUMNS
# A valid record, decoded in the Python workers (before the shuffle: no Python runs downstream of
# the dedupe's RocksDB state, whose native iterator must not be closed under a Python writer thread).
RECORD_SCHEMA = StructType(
    [
        StructField("study", StringType()),
        StructField("subject_id", StringType()),
        StructField("walk_id", StringType()),
        StructField("seq", LongType()),
        StructField("sent_at_ms", LongType()),
        StructField("samples", ArrayType(ArrayType(DoubleType()))),
        StructField("timestamp", TimestampType()),
    ]
)
_RECORD_ARROW_SCHEMA = to_arrow_schema(RECORD_SCHEMA)


def kafka_records(kafka: DataFrame) -> DataFrame:
    """The columns every query reads: key as text, value bytes, Kafka coordinates and timestamp."""
    return kafka.select(
        F.col("key").cast("string").alias("key"),
        "value",
        "partition",
        "offset",
        "timestamp",
        F.unix_millis("timestamp").alias("kafka_ms"),
    )


def decode_batches(limits: Limits):
    """The ``mapInArrow`` function: Arrow batches of Kafka records → Arrow batches of valid records."""

    def decode(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            # Keys and values as Python objects; the timestamps stay Arrow (Python datetimes cost
            # more than the decode of a small record).
            good, _bad = decode_records(batch.column("key").to_pylist(), batch.column("value").to_pylist(), limits)
            if not good:
                continue
            counts = np.array([len(r.values) for r in good], dtype=np.int32)
            flat = pa.array(np.concatenate([r.values for r in good]).ravel())
            width = len(COLUMNS)
            rows = pa.ListArray.from_arrays(pa.array(np.arange(0, len(flat) + 1, width, dtype=np.int32)), flat)
            samples = pa.ListArray.from_arrays(
                pa.array(np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)), rows
            )
            yield pa.RecordBatch.from_arrays(
                [
                    pa.array([r.batch.study for r in good]),
                    pa.array([r.batch.subject_id for r in good]),
                    pa.array([r.batch.walk_id for r in good]),
                    pa.array([r.batch.seq for r in good], pa.int64()),
                    pa.array([r.batch.sent_at_ms for r in good], pa.int64()),
                    samples,
                    batch.column("timestamp")
                    .take(pa.array([r.index for r in good], pa.int64()))
                    .cast(pa.timestamp("us", tz="UTC")),
                ],
                schema=_RECORD_ARROW_SCHEMA,
            )

    return decode


def valid_records(records: DataFrame, limits: Limits) -> DataFrame:
    """Kafka records (:func:`kafka_records`) → the valid ones, decoded (one row per record)."""
    return records.select("key", "value", "timestamp").mapInArrow(decode_batches(limits), RECORD_SCHEMA)


def dedupe_records(records: DataFrame, watermark_seconds: int) -> DataFrame:
    """Drop records Kafka holds twice (the bridge is at-least-once and resends byte for byte).

    A duplicate has the same walk and first seq; one arriving within ``watermark_seconds`` of
    Kafka time after the first copy is dropped.
    """
    return records.withWatermark("timestamp", f"{int(watermark_seconds)} seconds").dropDuplicatesWithinWatermark(
        ["walk_id", "seq"]
    )


def at_most(frame: DataFrame, tasks: int) -> DataFrame:
    """``frame`` computed by at most ``tasks`` tasks (``coalesce``, no shuffle); 0 = as it is."""
    return frame.coalesce(tasks) if tasks > 0 else frame


def archive_rows(records: DataFrame, tasks: int = 0) -> DataFrame:
    """Decoded records → one row per sample (seq = record seq + position), with the archive's
    partition column (the UTC date Kafka received the record). ``tasks`` > 0 coalesces the
    deduplicated records to that many tasks (the dedupe's state partitions are unchanged)."""
    exploded = at_most(records, tasks).select(
        *SAMPLE_COLUMNS[:5], F.to_date("timestamp").alias("date"), F.posexplode("samples").alias("pos", "sample")
    )
    return exploded.select(
        "study",
        "subject_id",
        "walk_id",
        (F.col("seq") + F.col("pos")).alias("seq"),
        "sent_at_ms",
        *[F.col("sample")[i].alias(name) for i, name in enumerate(COLUMNS)],
        "date",
    )
