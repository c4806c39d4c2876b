"""The job's transformations on static DataFrames of Kafka-like rows (local Spark, no services)."""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import datetime

import pytest

pyspark = pytest.importorskip("pyspark")
import pandas as pd  # noqa: E402
from pyspark.sql import SparkSession  # noqa: E402

from model import features  # noqa: E402
from streaming import records, sinks, stateful  # noqa: E402
from streaming.decode import Limits  # noqa: E402
from streaming.windowing import WalkState, WindowSettings  # noqa: E402

SETTINGS = WindowSettings()


@pytest.fixture(scope="module")
def spark():
    os.environ["PYSPARK_PYTHON"] = sys.executable  # Python workers need this venv's pandas/pyarrow
    session = (
        SparkSession.builder.master("local[1]")
        .appName("gaitstream-unit")
        .config("spark.sql.shuffle.partitions", 1)
        .config("spark.ui.enabled", False)
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    yield session
    session.stop()


def payload(seq, n, walk="GaCo01_01", **override):
    body = {
        "v": 1,
        "study": "Ga",
        "subject_id": walk.split("_")[0],
        "walk_id": walk,
        "seq": seq,
        "sent_at_ms": 1_764_000_000_000 + seq,
        "samples": [[(seq + i) / 100] + [float(seq + i)] * 18 for i in range(n)],
    }
    return json.dumps({**body, **override}).encode()


def kafka_rows(spark, values, key=b"GaCo01/GaCo01_01"):
    rows = [
        (key, value, "t", 0, offset, datetime(2026, 11, 28, 12, 0, offset % 60)) for offset, value in enumerate(values)
    ]
    return spark.createDataFrame(
        rows, "key binary, value binary, topic string, partition int, offset long, timestamp timestamp"
    )


# What the bridge refuses, the job refuses too, with the bridge's reason (bridge/payload.py).
BAD = {
    b"not json": "bad JSON",
    b'{"v": 1': "bad JSON",
    payload(0, 2, v=2): "unknown schema version 2",
    payload(0, 2, v="x"): "schema: Expected `int`",
    payload(0, 2, sent_at_ms="zero"): "schema: Expected `int`",
    payload(0, 2, walk_id=None): "schema: Expected `str`",
    payload(0, 2, samples=[]): "no samples",
    payload(0, 2, samples=[[0.0] * 18]): "sample 0: 18 values, expected 19",
    payload(0, 2, samples=[[0.0] * 18 + [None]]): "schema: Expected `float`",
    payload(-3, 2): "seq -3 out of range",
    payload(0, 1, samples=[[0.0] + [1e300] * 18]): "sample 0: force outside",
    payload(0, 1, walk="GaCo02_01"): "kafka key 'GaCo01/GaCo01_01' does not match",
}


def _frame(values, key="GaCo01/GaCo01_01"):
    return pd.DataFrame(
        {
            "key": [key] * len(values),
            "value": values,
            "partition": 0,
            "offset": range(len(values)),
            "kafka_ms": 1_764_000_000_000,
        }
    )


def test_malformed_records_become_dead_letters_with_the_bridges_reason():
    walk = WalkState()
    rows, dead = stateful.ingest(walk, "GaCo01/GaCo01_01", _frame([payload(0, 3), *BAD]), SETTINGS, Limits())
    reasons = {row["value"]: row["reason"] for row in dead}
    assert set(reasons) == set(BAD)
    for value, reason in BAD.items():
        assert reasons[value].startswith(reason), (value, reasons[value])
    assert rows == [] and walk.detector.samples == 0 and sum(len(w.seq) for w in walk.windows.values()) == 3


def test_a_seq_bomb_is_dead_lettered_and_the_walk_goes_on():
    walk = WalkState()
    rows, dead = stateful.ingest(
        walk,
        "GaCo01/GaCo01_01",
        _frame([payload(0, 100), payload(10**8, 1, samples=[[1.0] * 19]), payload(100, 100)]),
        SETTINGS,
        Limits(),
    )
    assert [d["reason"].split(":")[0] for d in dead] == ["seq_jump"]
    assert [r["window_index"] for r in rows if r["kind"] == "window"] == [0, 1]


@pytest.mark.parametrize("tasks", [0, 1])
def test_archive_rows_one_per_valid_sample_with_its_seq(spark, tasks):
    kafka = kafka_rows(spark, [payload(100, 3), payload(103, 2), b"not json", payload(0, 2, walk="GaCo02_01")])
    archive = records.archive_rows(records.valid_records(records.kafka_records(kafka), Limits()), tasks)
    if tasks:
        assert archive.rdd.getNumPartitions() == tasks
    rows = archive.orderBy("seq").collect()
    assert [r["seq"] for r in rows] == [100, 101, 102, 103, 104]
    assert [r["time"] for r in rows] == [1.0, 1.01, 1.02, 1.03, 1.04]
    assert rows[2]["total_r"] == 102.0 and rows[0]["walk_id"] == "GaCo01_01"
    assert list(rows[0].asDict()) == list(records.SAMPLE_COLUMNS) + ["date"]
    assert str(rows[0]["date"]) == "2026-11-28"  # Kafka's day, not the device's sent_at_ms


def test_walk_operator_in_a_stream_and_the_sink_split(spark, tmp_path):
    # seq 0..149 sent twice (duplicated records), then the walk goes idle:
    #   window 0 (0..99): emitted full once; window 1 (100..149): flushed partial on the timeout.
    values = [payload(seq, 10) for seq in range(0, 150, 10)] * 2 + [b"garbage"]
    source = kafka_rows(spark, values)
    source.write.parquet(str(tmp_path / "in"))
    stream = spark.readStream.schema(source.schema).parquet(str(tmp_path / "in"))
    outputs = stateful.walk_outputs(records.kafka_records(stream), WindowSettings(features_every=1), Limits(), 1.0, 600)
    query = (
        outputs.writeStream.format("memory")
        .queryName("walk_outputs")
        .trigger(processingTime="0.5 seconds")
        .option("checkpointLocation", str(tmp_path / "checkpoint"))
        .start()
    )
    try:  # until the idle timeout has flushed the walk (final features)
        deadline = time.monotonic() + 90

        def finals() -> int:
            return sinks.feature_rows(spark.table("walk_outputs")).where("final").count()

        while not finals() and time.monotonic() < deadline:
            assert query.exception() is None
            time.sleep(0.5)
    finally:
        query.stop()
    table = spark.table("walk_outputs")
    windows = sorted(sinks.window_rows(table).collect(), key=lambda w: w["window_index"])
    assert [(w["window_index"], w["sample_count"], w["partial"]) for w in windows] == [(0, 100, False), (1, 50, True)]
    assert windows[0]["l1"] == pytest.approx(49.5) and windows[0]["max_sent_at_ms"] == 1_764_000_000_090
    assert windows[1]["l1"] == pytest.approx(124.5) and windows[1]["study"] == "Ga"
    feature_rows = sorted(sinks.feature_rows(table).collect(), key=lambda f: (f["samples"], f["final"]))
    assert [(f["samples"], f["final"]) for f in feature_rows] == [(100, False), (150, True)]
    assert feature_rows[0]["feature_version"] == features.FEATURE_VERSION
    assert isinstance(feature_rows[0]["features"], dict)
    (dead,) = sinks.dead_letter_rows(table).collect()
    assert dead["value"] == "garbage" and dead["reason"].startswith("bad JSON") and dead["walk_id"] == "GaCo01_01"


def test_a_finalized_walk_never_regresses_after_its_state_expires():
    """Expiry leaves a tombstone: the walk's samples sent again are dead-lettered (walk_closed), so no
    partial window or fragment's features can overwrite what was stored; the tombstone is dropped last."""
    timeouts = stateful.Timeouts(idle_ms=1_000, expiry_ms=2_000, closed_ms=3_000)
    walk = WalkState()
    walk_payloads = [payload(seq, 10) for seq in range(0, 250, 10)]
    rows, dead, timeout = stateful.step(walk, "GaCo01/GaCo01_01", _frame(walk_payloads), SETTINGS, Limits(), timeouts)
    assert [r["window_index"] for r in rows if r["kind"] == "window"] == [0, 1] and timeout == 1_000
    rows, _, timeout = stateful.step(walk, "GaCo01/GaCo01_01", None, SETTINGS, Limits(), timeouts)  # idle: flush
    assert [(r["kind"], r.get("final")) for r in rows] == [("window", None), ("features", True)] and timeout == 2_000
    rows, _, timeout = stateful.step(walk, "GaCo01/GaCo01_01", None, SETTINGS, Limits(), timeouts)  # expiry
    assert rows == [] and timeout == 3_000 and walk.closed
    tombstone = WalkState.from_bytes(walk.to_bytes())
    assert tombstone.closed and len(walk.to_bytes()) < 4096
    rows, dead, timeout = stateful.step(
        tombstone, "GaCo01/GaCo01_01", _frame(walk_payloads), SETTINGS, Limits(), timeouts
    )
    assert rows == [] and len(dead) == len(walk_payloads) and timeout == 3_000
    assert {d["reason"].split(":")[0] for d in dead} == {"walk_closed"}
    assert stateful.step(tombstone, "GaCo01/GaCo01_01", None, SETTINGS, Limits(), timeouts)[2] is None  # dropped


def test_states_written_without_the_closed_field_still_load():
    """A state without the trailing `closed` field decodes as an open walk."""
    import msgspec

    from streaming import windowing

    walk = WalkState(study="Ga", frontier=3)
    wire = msgspec.msgpack.decode(walk.to_bytes())
    old = msgspec.msgpack.encode(wire[:-1])  # without the trailing `closed`
    loaded = WalkState.from_bytes(old)
    assert (loaded.study, loaded.frontier, loaded.closed) == ("Ga", 3, False) and windowing.STATE_FORMAT == 3
