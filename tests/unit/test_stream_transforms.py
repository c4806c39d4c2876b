"""The job's transformations on static DataFrames of Kafka-like rows (local Spark, no services)."""
from __future__ import annotations

import json
import os
import sys
import time

import pytest

pyspark = pytest.importorskip("pyspark")
from pyspark.sql import SparkSession  # noqa: E402

from streaming import records, sinks, stateful  # noqa: E402
from streaming.windowing import WindowSettings  # noqa: E402


@pytest.fixture(scope="module")
def spark():
    os.environ["PYSPARK_PYTHON"] = sys.executable  # Python workers need this venv's pandas/pyarrow
    session = (SparkSession.builder.master("local[1]").appName("gaitstream-unit")
               .config("spark.sql.shuffle.partitions", 1).config("spark.ui.enabled", False)
               .config("spark.sql.session.timeZone", "UTC").getOrCreate())
    yield session
    session.stop()


def payload(seq, n, walk="GaCo01_01", **override):
    body = {"v": 1, "study": "Ga", "subject_id": walk.split("_")[0], "walk_id": walk, "seq": seq,
            "sent_at_ms": 1_764_000_000_000 + seq,
            "samples": [[(seq + i) / 100] + [float(seq + i)] * 18 for i in range(n)]}
    return json.dumps({**body, **override}).encode()


def kafka_rows(spark, values):
    rows = [(b"k", value, "t", 0, offset, None) for offset, value in enumerate(values)]
    frame = spark.createDataFrame(rows, "key binary, value binary, topic string, partition int, offset long, "
                                        "timestamp timestamp")
    return frame.withColumn("timestamp", frame["timestamp"].cast("timestamp"))


BAD = {
    b"not json": "bad JSON",
    b'{"v": 1': "bad JSON",
    payload(0, 2, v=2): "unknown schema version 2",
    payload(0, 2, v="x"): "schema: v missing",
    payload(0, 2, sent_at_ms="zero"): "schema: a key field",
    payload(0, 2, walk_id=None): "schema: a key field",
    payload(0, 2, samples=[]): "no samples",
    payload(0, 2, samples=[[0.0] * 18]): "a sample does not have 19",
    payload(0, 2, samples=[[0.0] * 18 + [None]]): "a sample holds null",
    payload(-3, 2): "seq out of range",
}


def test_malformed_records_become_dead_letters_with_a_reason(spark):
    parsed = records.parse_records(kafka_rows(spark, [payload(0, 3), *BAD]))
    dead = {row["value"].encode(): row["reason"] for row in records.dead_letters(parsed).collect()}
    assert set(dead) == set(BAD)
    for value, reason in BAD.items():
        assert dead[value].startswith(reason), (value, dead[value])
    assert records.valid_batches(parsed).count() == 1


def test_explode_gives_one_row_per_sample_with_its_seq(spark):
    parsed = records.parse_records(kafka_rows(spark, [payload(100, 3), payload(103, 2, walk="GaCo01_01")]))
    rows = records.explode_samples(records.valid_batches(parsed)).orderBy("seq").collect()
    assert [r["seq"] for r in rows] == [100, 101, 102, 103, 104]
    assert [r["time"] for r in rows] == [1.0, 1.01, 1.02, 1.03, 1.04]
    assert rows[2]["total_r"] == 102.0 and rows[0]["walk_id"] == "GaCo01_01"
    assert list(rows[0].asDict()) == list(records.SAMPLE_COLUMNS)


def test_walk_operator_in_a_stream_and_the_sink_split(spark, tmp_path):
    # seq 0..149 sent twice (duplicated records), then the walk goes idle:
    #   window 0 (0..99): emitted full once; window 1 (100..149): flushed partial on the timeout.
    values = [payload(seq, 10) for seq in range(0, 150, 10)] * 2
    source = kafka_rows(spark, values)
    source.write.parquet(str(tmp_path / "in"))
    stream = spark.readStream.schema(source.schema).parquet(str(tmp_path / "in"))
    samples = records.explode_samples(records.valid_batches(records.parse_records(stream)))
    outputs = stateful.walk_outputs(samples, WindowSettings(features_every=1), 1.0, 600)
    query = (outputs.writeStream.format("memory").queryName("walk_outputs").trigger(processingTime="0.5 seconds")
             .option("checkpointLocation", str(tmp_path / "checkpoint")).start())
    try:  # until the idle timeout has flushed the walk (final features)
        deadline = time.monotonic() + 90
        while not spark.table("walk_outputs").where("final").count() and time.monotonic() < deadline:
            assert query.exception() is None
            time.sleep(0.5)
    finally:
        query.stop()
    table = spark.table("walk_outputs")
    windows = sorted(sinks.window_rows(table).collect(), key=lambda w: w["window_index"])
    assert [(w["window_index"], w["sample_count"], w["partial"]) for w in windows] == [(0, 100, False), (1, 50, True)]
    assert windows[0]["l1"] == pytest.approx(49.5) and windows[0]["max_sent_at_ms"] == 1_764_000_000_090
    assert windows[1]["l1"] == pytest.approx(124.5)
    feature_rows = sorted(sinks.feature_rows(table).collect(), key=lambda f: f["samples"])
    assert [(f["samples"], f["final"]) for f in feature_rows] == [(150, False), (150, True)]
    assert feature_rows[0]["feature_version"] == 1 and isinstance(feature_rows[0]["features"], dict)
