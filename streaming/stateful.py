"""The per-walk stateful operator: a thin Spark wrapper around :mod:`streaming.windowing`.

Kafka records are grouped by their key (``<subject>/<walk>``, set by the bridge) and decoded
inside the function (:mod:`streaming.decode`, the bridge's checks), so no JSON is parsed in the
JVM for windowing. ``applyInPandasWithState`` keeps one small state per walk (the bytes of
:class:`~streaming.windowing.WalkState`, bounded whatever the walk's length), with a
processing-time timeout that fires when the walk has been idle for ``idle_timeout_seconds``
(flush: partial windows + final features), then ``state_expiry_seconds`` after which the state
shrinks to a tombstone (:func:`streaming.windowing.close`: a record for a closed walk is
dead-lettered with reason ``walk_closed``, so a finalized walk never regresses), dropped after
``closed_walk_retention_seconds``. Window, feature and dead-letter rows leave in one schema, told
apart by ``kind``; the sink splits them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql.streaming.state import GroupState, GroupStateTimeout
from pyspark.sql.types import (
    BinaryType,
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
from streaming.decode import Limits, decode_records
from streaming.windowing import Refused, WalkState, WindowSettings, add_samples, check_record, close, flush

KEY_COLUMNS = ("subject_id", "walk_id", "study")
# What the operator reads of each Kafka record.
INPUT_COLUMNS = ("key", "value", "partition", "offset", "kafka_ms")

# CQL type -> Spark type of the operator's output columns.
_SPARK_TYPES = {
    "text": StringType(),
    "int": IntegerType(),
    "bigint": LongType(),
    "boolean": BooleanType(),
    "double": DoubleType(),
    "map<text, double>": MapType(StringType(), DoubleType()),
}


def _fields(columns: tuple[tuple[str, str], ...], skip: tuple[str, ...] = KEY_COLUMNS) -> list[StructField]:
    return [StructField(name, _SPARK_TYPES[kind]) for name, kind in columns if name not in skip]


# One row type for the three kinds the operator emits; the window and feature columns are the
# Cassandra tables' (streaming.schema), so a new column is declared there once.
OUTPUT_SCHEMA = StructType(
    [
        StructField("kind", StringType()),
        *[StructField(name, StringType()) for name in KEY_COLUMNS],
        # kind = "window"
        *_fields(schema.WINDOW_KEY + schema.WINDOW_COLUMNS),
        # kind = "features"
        *_fields(schema.FEATURE_COLUMNS),
        # kind = "deadletter": the record as Kafka had it, and why it was not windowed
        StructField("key", StringType()),
        StructField("value", BinaryType()),
        StructField("partition", IntegerType()),
        StructField("offset", LongType()),
        StructField("kafka_ms", LongType()),
        StructField("reason", StringType()),
    ]
)
STATE_SCHEMA = StructType([StructField("walk", BinaryType())])
_OUTPUT_COLUMNS = [f.name for f in OUTPUT_SCHEMA.fields]
_COLUMN_KINDS = [
    (
        f.name,
        "number"
        if isinstance(f.dataType, (DoubleType, IntegerType, LongType))
        else "flag"
        if isinstance(f.dataType, BooleanType)
        else "object",
    )
    for f in OUTPUT_SCHEMA.fields
]


@dataclass(frozen=True)
class Timeouts:
    """Processing-time timeouts of a walk's state, in ms: idle → flush, expiry → tombstone, retention → drop."""

    idle_ms: int
    expiry_ms: int
    closed_ms: int


def walk_function(settings: WindowSettings, limits: Limits, timeouts: Timeouts):
    """The function given to applyInPandasWithState (a closure over plain settings: picklable)."""

    def on_walk(key: tuple, frames: Iterator[pd.DataFrame], state: GroupState) -> Iterator[pd.DataFrame]:
        walk = WalkState.from_bytes(state.get[0]) if state.exists else WalkState()
        # One call per batch: at most one features row per walk per micro-batch, so the
        # Cassandra write of a batch never holds two versions of the same key.
        frame = None if state.hasTimedOut else pd.concat(list(frames), ignore_index=True)
        rows, dead, timeout_ms = step(walk, key[0], frame, settings, limits, timeouts)
        if timeout_ms is None:
            state.remove()
        elif state.exists or rows or walk.frontier or walk.windows or walk.closed:
            state.update((walk.to_bytes(),))
            state.setTimeoutDuration(timeout_ms)
        if rows or dead:
            yield output_frame(key[0], walk.study or None, rows, dead)

    return on_walk


def step(
    walk: WalkState,
    key: str | None,
    frame: pd.DataFrame | None,
    settings: WindowSettings,
    limits: Limits,
    timeouts: Timeouts,
) -> tuple[list[dict], list[dict], int | None]:
    """One call of the operator for a walk: new records (``frame``) or a timeout (``None``).
    Returns the rows, the dead letters and the next timeout (None: drop the state)."""
    if frame is None:
        if walk.closed:
            return [], [], None
        if walk.finalized:  # idle for idle_timeout + expiry: keep only a tombstone
            close(walk)
            return [], [], timeouts.closed_ms
        return flush(walk, settings), [], timeouts.expiry_ms
    if walk.closed:
        reason = (
            f"walk_closed: walk {key} was finalized and its state expired (state_expiry_seconds); "
            "its stored windows and final features stay as they are"
        )
        return [], [dead_letter(frame, i, reason) for i in range(len(frame))], timeouts.closed_ms
    rows, dead = ingest(walk, key, frame, settings, limits)
    return rows, dead, timeouts.idle_ms


def ingest(
    walk: WalkState, key: str | None, frame: pd.DataFrame, settings: WindowSettings, limits: Limits
) -> tuple[list[dict], list[dict]]:
    """Decode one batch of a walk's records, window the accepted ones; refused ones become dead letters."""
    good, bad = decode_records(frame["key"].tolist(), frame["value"].tolist(), limits)
    dead = [dead_letter(frame, i, reason) for i, reason in bad]
    accepted = []
    for record in sorted(good, key=lambda r: r.batch.seq):
        try:
            check_record(walk, record.batch.seq, settings)
        except Refused as exc:
            dead.append(dead_letter(frame, record.index, str(exc)))
            continue
        accepted.append(record)
    if not accepted:
        return [], dead
    walk.study = walk.study or accepted[0].batch.study
    seq = np.concatenate([r.seq for r in accepted])
    values = np.concatenate([r.values for r in accepted])
    sent = np.concatenate([np.full(len(r.values), r.batch.sent_at_ms, dtype=np.int64) for r in accepted])
    return add_samples(walk, seq, values, sent, settings), dead


def dead_letter(frame: pd.DataFrame, i: int, reason: str) -> dict:
    row = frame.iloc[i]
    return {
        "kind": "deadletter",
        "key": row["key"],
        "value": row["value"],
        "partition": int(row["partition"]),
        "offset": int(row["offset"]),
        "kafka_ms": int(row["kafka_ms"]),
        "reason": reason,
    }


def output_frame(key: str | None, study: str | None, rows: list[dict], dead: list[dict]) -> pd.DataFrame:
    """The rows as one frame of OUTPUT_SCHEMA, built from typed column arrays: pandas' inference
    over object columns cost more than the whole windowing. A number a row does not have is NaN
    (numbers) or None; Spark reads NaN in an integer or boolean column as null."""
    subject_id, _, walk_id = (key or "").partition("/")
    everything = rows + dead
    n = len(everything)
    fixed = {"subject_id": subject_id or None, "walk_id": walk_id or None, "study": study}
    columns = {}
    for name, kind in _COLUMN_KINDS:
        if name in fixed:
            columns[name] = np.full(n, fixed[name], dtype=object)
        elif kind == "number":
            columns[name] = np.array([row.get(name, np.nan) for row in everything], dtype=np.float64)
        elif kind == "flag":
            columns[name] = pd.array([row.get(name) for row in everything], dtype="boolean")
        else:
            column = np.empty(n, dtype=object)
            column[:] = [row.get(name) for row in everything]
            columns[name] = column
    return pd.DataFrame(columns, copy=False)


def walk_outputs(
    records: DataFrame,
    settings: WindowSettings,
    limits: Limits,
    idle_timeout_s: float,
    expiry_s: float,
    closed_retention_s: float = 7 * 86400,
) -> DataFrame:
    """Kafka records (:func:`streaming.records.kafka_records`) → window, feature and dead-letter rows
    (``kind``), per walk."""
    function = walk_function(
        settings, limits, Timeouts(int(idle_timeout_s * 1000), int(expiry_s * 1000), int(closed_retention_s * 1000))
    )
    return (
        records.select(*INPUT_COLUMNS)
        .groupBy("key")
        .applyInPandasWithState(
            function, OUTPUT_SCHEMA, STATE_SCHEMA, "append", GroupStateTimeout.ProcessingTimeTimeout
        )
    )
