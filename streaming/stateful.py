"""The per-walk stateful operator: a thin Spark wrapper around :mod:`streaming.windowing`.

Kafka records are grouped by their key (``<subject>/<walk>``, set by the bridge) and decoded
inside the function (:mod:`streaming.decode`, the bridge's checks), so no JSON is parsed in the
JVM for windowing. ``applyInPandasWithState`` keeps one small state per walk (the bytes of
:class:`~streaming.windowing.WalkState`, bounded whatever the walk's length), with a
processing-time timeout that fires when the walk has been idle for ``idle_timeout_seconds``
(flush: partial windows + final features), then ``state_expiry_seconds`` after which the state
shrinks to a tombstone (:func:`streaming.windowing.close`: a record for a closed walk is
dead-lettered with reason ``walk_closed``, so a finalized walk never regresses), dropped after
``closed_walk_retention_seconds``. Window, feature and dead-letter rows leave as one narrow
schema (``kind``, the row as JSON, a dead letter's bytes); the sink splits and parses them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import msgspec
import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql.streaming.state import GroupState, GroupStateTimeout
from pyspark.sql.types import BinaryType, StringType, StructField, StructType

from streaming.decode import Limits, decode_records
from streaming.windowing import Refused, WalkState, WindowSettings, add_samples, check_record, close, flush

# What the operator reads of each Kafka record.
INPUT_COLUMNS = ("key", "value", "partition", "offset", "kafka_ms")

# The operator's output: one row per window, feature set or dead letter, told apart by ``kind``.
# ``row`` holds that kind's columns as JSON (subject_id and walk_id included), parsed in the JVM by
# the sink (:mod:`streaming.sinks`); ``value`` is a dead letter's record bytes as Kafka had them.
# Three columns rather than one per table column: PySpark converts every output column of every
# group to Arrow on its own, and that cost more than the windowing (the operator alone, file source
# → noop, on a real-time micro-batch of 159 walks: 1.56 → 1.26 CPU-seconds).
OUTPUT_SCHEMA = StructType(
    [StructField("kind", StringType()), StructField("row", BinaryType()), StructField("value", BinaryType())]
)
STATE_SCHEMA = StructType([StructField("walk", BinaryType())])
_encode = msgspec.json.encode


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
    """The rows as one frame of OUTPUT_SCHEMA: each row's columns, with the walk's, as JSON."""
    subject_id, _, walk_id = (key or "").partition("/")
    walk = {"subject_id": subject_id or None, "walk_id": walk_id or None}
    kinds = [row["kind"] for row in rows + dead]
    encoded = [_encode({**walk, "study": study, **row}) for row in rows]
    encoded += [_encode({**walk, **{k: v for k, v in row.items() if k != "value"}}) for row in dead]
    values = [None] * len(rows) + [row["value"] for row in dead]
    return pd.DataFrame({"kind": kinds, "row": encoded, "value": values})


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
