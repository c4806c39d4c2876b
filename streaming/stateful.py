"""The per-walk stateful operator: a thin Spark wrapper around :mod:`streaming.windowing`.

Kafka records are keyed ``<subject>/<walk>`` by the bridge and decoded inside the function
(:mod:`streaming.decode`, the bridge's checks), so no JSON is parsed in the JVM for windowing.
Spark's group is a *bucket* of walks (``pmod(hash(key), state_buckets)``), not a walk: Spark's
pandas-with-state path costs about 3 ms per group per micro-batch, so 159 walks as 159 groups
spent more time in Spark than in the windowing. A bucket's state is a map walk → (bytes of its
:class:`~streaming.windowing.WalkState`, bounded whatever the walk's length, and the walk's own
processing-time deadline). Every call (new records, or Spark's timeout for a bucket that had
none) first handles the records per walk, then every walk whose deadline has passed: idle for
``idle_timeout_seconds`` → flush (partial windows + final features); ``state_expiry_seconds``
later → a tombstone (:func:`streaming.windowing.close`: a record for a closed walk is
dead-lettered with reason ``walk_closed``, so a finalized walk never regresses), dropped after
``closed_walk_retention_seconds``. The bucket's own timeout is its earliest walk deadline.
Window, feature and dead-letter rows leave in one schema, told apart by ``kind``; the sink
splits them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import msgspec
import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
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
# A bucket's walks: msgpack of {walk key: [WalkState bytes, deadline ms]} (see module docstring).
STATE_SCHEMA = StructType([StructField("walks", BinaryType())])
BUCKET_COLUMN = "bucket"
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


_bucket_encoder = msgspec.msgpack.Encoder()
_bucket_decoder = msgspec.msgpack.Decoder(dict[str, tuple[bytes, int]])


# Module functions (pickled by reference: the closure below must not carry the msgspec codecs).
def decode_bucket(raw: bytes) -> dict[str, tuple[bytes, int]]:
    return _bucket_decoder.decode(raw)


def encode_bucket(walks: dict[str, tuple[bytes, int]]) -> bytes:
    return _bucket_encoder.encode(walks)


def bucket_function(settings: WindowSettings, limits: Limits, timeouts: Timeouts):
    """The function given to applyInPandasWithState (a closure over plain settings: picklable)."""

    def on_bucket(key: tuple, frames: Iterator[pd.DataFrame], state: GroupState) -> Iterator[pd.DataFrame]:
        walks = decode_bucket(state.get[0]) if state.exists else {}
        frame = None if state.hasTimedOut else pd.concat(list(frames), ignore_index=True)
        now = int(state.getCurrentProcessingTimeMs())
        parts = run_bucket(walks, frame, now, settings, limits, timeouts)
        if walks:
            state.update((encode_bucket(walks),))
            state.setTimeoutDuration(max(1, min(deadline for _raw, deadline in walks.values()) - now))
        elif state.exists:
            state.remove()
        if parts:
            yield output_frame(parts)

    return on_bucket


def run_bucket(
    walks: dict[str, tuple[bytes, int]],
    frame: pd.DataFrame | None,
    now: int,
    settings: WindowSettings,
    limits: Limits,
    timeouts: Timeouts,
) -> list[tuple[str | None, str | None, list[dict], list[dict]]]:
    """One call for a bucket: each walk's new records, then each other walk past its deadline.
    Updates ``walks`` in place (a walk whose next timeout is None is dropped); returns per walk
    (key, study, rows, dead letters) for the walks that produced any. One step per walk per call:
    at most one features row per walk per micro-batch, so a Cassandra write never holds two
    versions of the same key."""
    parts = []
    fed: set[str | None] = set()
    if frame is not None and len(frame):
        for walk_key, records in frame.groupby("key", sort=False, dropna=False):
            walk_key = walk_key if isinstance(walk_key, str) else None  # a record without a key
            fed.add(walk_key)
            parts.append(_step_walk(walks, walk_key, records, now, settings, limits, timeouts))
    for walk_key, (_raw, deadline) in list(walks.items()):
        if walk_key not in fed and deadline <= now:
            parts.append(_step_walk(walks, walk_key, None, now, settings, limits, timeouts))
    return [part for part in parts if part[2] or part[3]]


def _step_walk(
    walks: dict[str, tuple[bytes, int]],
    walk_key: str | None,
    records: pd.DataFrame | None,
    now: int,
    settings: WindowSettings,
    limits: Limits,
    timeouts: Timeouts,
) -> tuple[str | None, str | None, list[dict], list[dict]]:
    """One walk's step; its state goes back into ``walks`` with its next deadline (or leaves)."""
    stored = walks.get(walk_key) if walk_key is not None else None  # a record without a key: no state
    walk = WalkState.from_bytes(stored[0]) if stored else WalkState()
    rows, dead, timeout_ms = step(walk, walk_key, records, settings, limits, timeouts)
    if walk_key is None:
        pass
    elif timeout_ms is None:
        walks.pop(walk_key, None)
    elif stored or rows or walk.frontier or walk.windows or walk.closed:
        walks[walk_key] = (walk.to_bytes(), now + timeout_ms)
    return walk_key, walk.study or None, rows, dead


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


def output_frame(parts: list[tuple[str | None, str | None, list[dict], list[dict]]]) -> pd.DataFrame:
    """The rows of several walks ((key, study, rows, dead letters) each) as one frame of
    OUTPUT_SCHEMA, built from typed column arrays: pandas' inference over object columns cost more
    than the whole windowing. A number a row does not have is NaN (numbers) or None; Spark reads
    NaN in an integer or boolean column as null."""
    everything: list[dict] = []
    fixed: dict[str, list] = {"subject_id": [], "walk_id": [], "study": []}
    for key, study, rows, dead in parts:
        subject_id, _, walk_id = (key or "").partition("/")
        n = len(rows) + len(dead)
        everything += rows
        everything += dead
        fixed["subject_id"] += [subject_id or None] * n
        fixed["walk_id"] += [walk_id or None] * n
        fixed["study"] += [study] * n
    n = len(everything)
    columns = {}
    for name, kind in _COLUMN_KINDS:
        if name in fixed or kind == "object":
            values = fixed[name] if name in fixed else [row.get(name) for row in everything]
            column = np.empty(n, dtype=object)
            column[:] = values
            columns[name] = column
        elif kind == "number":
            columns[name] = np.array([row.get(name, np.nan) for row in everything], dtype=np.float64)
        else:
            columns[name] = pd.array([row.get(name) for row in everything], dtype="boolean")
    return pd.DataFrame(columns, copy=False)


def walk_outputs(
    records: DataFrame,
    settings: WindowSettings,
    limits: Limits,
    idle_timeout_s: float,
    expiry_s: float,
    closed_retention_s: float = 7 * 86400,
    buckets: int = 16,
) -> DataFrame:
    """Kafka records (:func:`streaming.records.kafka_records`) → window, feature and dead-letter rows
    (``kind``), per walk, grouped in ``buckets`` state groups (fixed in the checkpoint)."""
    function = bucket_function(
        settings, limits, Timeouts(int(idle_timeout_s * 1000), int(expiry_s * 1000), int(closed_retention_s * 1000))
    )
    return (
        records.select(*INPUT_COLUMNS)
        .withColumn(BUCKET_COLUMN, F.pmod(F.hash("key"), F.lit(buckets)))
        .groupBy(BUCKET_COLUMN)
        .applyInPandasWithState(
            function, OUTPUT_SCHEMA, STATE_SCHEMA, "append", GroupStateTimeout.ProcessingTimeTimeout
        )
    )
