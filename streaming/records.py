"""Kafka records → archive rows: one row per sample, decoded once by the shared checks.

Every step takes and returns a DataFrame, so the unit tests run them on static DataFrames of
Kafka-like rows (``key``, ``value`` binary, ``topic``, ``partition``, ``offset``, ``timestamp``).
Payloads are decoded in the Python workers (``mapInArrow`` over :mod:`streaming.decode`), with
the bridge's checks: a record that fails them is not archived here; the windows query writes
it to the dead letters with its reason (one judge, one record of it).

Event time is Kafka's record timestamp (set by our bridge's producer), never the device's
``sent_at_ms``: a device with a wrong clock cannot move a watermark.
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, LongType, StringType, StructField, StructType

from gaitstream.gaitpdb import COLUMNS
from streaming.decode import Limits, decode_records

SAMPLE_COLUMNS = ("study", "subject_id", "walk_id", "seq", "sent_at_ms") + COLUMNS
SAMPLE_SCHEMA = StructType([
    StructField("study", StringType()), StructField("subject_id", StringType()), StructField("walk_id", StringType()),
    StructField("seq", LongType()), StructField("sent_at_ms", LongType()),
    *[StructField(name, DoubleType()) for name in COLUMNS],
    StructField("kafka_ms", LongType()),
])


def kafka_records(kafka: DataFrame) -> DataFrame:
    """The columns every query reads: key as text, value bytes, Kafka coordinates and timestamp."""
    return kafka.select(F.col("key").cast("string").alias("key"), "value", "partition", "offset", "timestamp",
                        F.unix_millis("timestamp").alias("kafka_ms"))


def dedupe_records(records: DataFrame, watermark_seconds: int) -> DataFrame:
    """Drop records Kafka holds twice (the bridge is at-least-once and resends byte for byte).

    A duplicate has the same key and the same bytes; one arriving within ``watermark_seconds``
    of Kafka time after the first copy is dropped.
    """
    return (records.withColumn("digest", F.xxhash64("value"))
            .withWatermark("timestamp", f"{int(watermark_seconds)} seconds")
            .dropDuplicatesWithinWatermark(["key", "digest"]))


def explode_batches(limits: Limits):
    """The ``mapInArrow`` function: Arrow batches of records → Arrow batches of valid samples."""

    def explode(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            columns = batch.to_pydict()
            good, _bad = decode_records(columns["key"], columns["value"], limits)
            if not good:
                continue
            counts = [len(r.values) for r in good]
            values = np.concatenate([r.values for r in good])
            arrays = {
                "study": pa.array(np.repeat([r.batch.study for r in good], counts)),
                "subject_id": pa.array(np.repeat([r.batch.subject_id for r in good], counts)),
                "walk_id": pa.array(np.repeat([r.batch.walk_id for r in good], counts)),
                "seq": pa.array(np.concatenate([r.seq for r in good])),
                "sent_at_ms": pa.array(np.repeat([r.batch.sent_at_ms for r in good], counts).astype(np.int64)),
                **{name: pa.array(values[:, i]) for i, name in enumerate(COLUMNS)},
                "kafka_ms": pa.array(np.repeat([columns["kafka_ms"][r.index] for r in good], counts).astype(np.int64)),
            }
            yield pa.RecordBatch.from_pydict(arrays)

    return explode


def archive_rows(records: DataFrame, limits: Limits) -> DataFrame:
    """Records → one row per valid sample, with the archive's partition column (UTC date Kafka got it)."""
    samples = records.select("key", "value", "kafka_ms").mapInArrow(explode_batches(limits), SAMPLE_SCHEMA)
    return samples.withColumn("date", F.to_date(F.timestamp_millis("kafka_ms"))).drop("kafka_ms")
