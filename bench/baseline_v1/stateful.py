"""The per-walk stateful operator: a thin Spark wrapper around :mod:`streaming.windowing`.

``groupBy(subject_id, walk_id, study).applyInPandasWithState``: one state per walk (the pickled
:class:`~streaming.windowing.WalkState`), a processing-time timeout that fires when the walk has
been idle for ``idle_timeout_seconds`` (flush: partial windows + final features), then a long
``state_expiry_seconds`` timeout after which the state is dropped. Window and feature rows
leave in one schema, told apart by ``kind``; the sink splits them.
"""

from __future__ import annotations

from collections.abc import Iterator

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

from bench.baseline_v1.windowing import WalkState, WindowSettings, add_samples, flush
from gaitstream.gaitpdb import COLUMNS, FORCE_CHANNELS

KEY_COLUMNS = ("subject_id", "walk_id", "study")

OUTPUT_SCHEMA = StructType(
    [
        StructField("kind", StringType()),
        *[StructField(name, StringType()) for name in KEY_COLUMNS],
        # kind = "window"
        StructField("window_index", IntegerType()),
        StructField("sample_count", IntegerType()),
        StructField("partial", BooleanType()),
        StructField("first_seq", IntegerType()),
        StructField("last_seq", IntegerType()),
        StructField("first_time", DoubleType()),
        StructField("last_time", DoubleType()),
        *[StructField(channel, DoubleType()) for channel in FORCE_CHANNELS],
        StructField("max_sent_at_ms", LongType()),
        # kind = "features"
        StructField("samples", IntegerType()),
        StructField("final", BooleanType()),
        StructField("feature_version", IntegerType()),
        StructField("features", MapType(StringType(), DoubleType())),
    ]
)
STATE_SCHEMA = StructType([StructField("walk", BinaryType())])
_OUTPUT_COLUMNS = [f.name for f in OUTPUT_SCHEMA.fields]


def walk_function(settings: WindowSettings, idle_timeout_ms: int, expiry_ms: int):
    """The function given to applyInPandasWithState (a closure over plain settings: picklable)."""

    def on_walk(key: tuple, frames: Iterator[pd.DataFrame], state: GroupState) -> Iterator[pd.DataFrame]:
        walk = WalkState.from_bytes(state.get[0]) if state.exists else WalkState()
        if state.hasTimedOut:
            if walk.finalized:  # idle for idle_timeout + expiry: forget the walk
                state.remove()
                return
            rows = flush(walk, settings)
            timeout_ms = expiry_ms
        else:
            # One call per batch: at most one features row per walk per micro-batch, so the
            # Cassandra write of a batch never holds two versions of the same key.
            frame = pd.concat(list(frames), ignore_index=True)
            rows = add_samples(
                walk, frame["seq"].to_numpy(), frame[list(COLUMNS)].to_numpy(), frame["sent_at_ms"].to_numpy(), settings
            )
            timeout_ms = idle_timeout_ms
        state.update((walk.to_bytes(),))
        state.setTimeoutDuration(timeout_ms)
        if rows:
            yield output_frame(key, rows)

    return on_walk


def output_frame(key: tuple, rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    for name, value in zip(KEY_COLUMNS, key, strict=True):
        frame[name] = value
    frame = frame.reindex(columns=_OUTPUT_COLUMNS)
    # Window rows have no feature map: None, not the NaN reindex puts there (Arrow wants a dict or None).
    frame["features"] = pd.Series([row.get("features") for row in rows], dtype=object)
    return frame


def walk_outputs(samples: DataFrame, settings: WindowSettings, idle_timeout_s: float, expiry_s: float) -> DataFrame:
    """Sample rows → window and feature rows (``kind``), per walk, as described above."""
    return samples.groupBy(*KEY_COLUMNS).applyInPandasWithState(
        walk_function(settings, int(idle_timeout_s * 1000), int(expiry_s * 1000)),
        OUTPUT_SCHEMA,
        STATE_SCHEMA,
        "append",
        GroupStateTimeout.ProcessingTimeTimeout,
    )
