"""Per-walk windowing state machine: pure numpy, no Spark, so it is tested on hand-drawn inputs.

One :class:`WalkState` per walk holds every sample received so far, indexed by sequence number
(a duplicate seq is ignored: first arrival wins; arrival order does not matter). Windows are
``window_index = seq // window_size``: window 0 is seq 0..99, exactly ``window_size`` samples.

    seq      0 ......... 99 | 100 ........ 199 | 200 .. 234      (walk idle)
    window   0 (full: emitted as soon as its   | 1 (full)         | 2: emitted partial=True
             100th distinct seq arrives)                             on the idle timeout

A window row is emitted when its last missing seq arrives, and on the idle timeout when it holds
samples not yet emitted (partial). ``emitted[w]`` remembers how many samples window ``w`` had
when last emitted, so a duplicate never re-emits anything and a full window is never replaced
by a partial one; a partial window that later fills is emitted again (same Cassandra key, the
upsert replaces it). Gait features are recomputed over all samples every ``features_every``
newly completed windows and, marked final, on the idle timeout.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field

import numpy as np

from bench.baseline_v1 import features
from gaitstream.gaitpdb import COLUMNS, FORCE_CHANNELS

WIDTH = len(COLUMNS)  # time + 18 force channels


@dataclass(frozen=True)
class WindowSettings:
    window_size: int = 100
    features_every: int = 10  # recompute features after this many newly completed windows
    max_walk_samples: int = 360_000  # seqs at or beyond this are dropped (bounds the state size)


@dataclass
class WalkState:
    """Everything kept for one walk between micro-batches (see module docstring)."""

    samples: np.ndarray = field(default_factory=lambda: np.zeros((0, WIDTH)))  # (capacity, 19) float64
    present: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))  # (capacity,)
    max_sent_ms: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # per window
    emitted: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))  # per window
    features_at_windows: int = 0  # completed windows when features were last computed
    finalized: bool = False  # the idle timeout flushed the walk; cleared when data comes back

    def to_bytes(self) -> bytes:
        return pickle.dumps(
            (self.samples, self.present, self.max_sent_ms, self.emitted, self.features_at_windows, self.finalized),
            protocol=5,
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> WalkState:
        return cls(*pickle.loads(raw))

    def _grow(self, capacity: int, window_size: int) -> None:
        capacity = -(-capacity // window_size) * window_size  # whole windows
        if capacity <= len(self.present):
            return
        extra = capacity - len(self.present)
        self.samples = np.concatenate([self.samples, np.zeros((extra, WIDTH))])
        self.present = np.concatenate([self.present, np.zeros(extra, dtype=bool)])
        windows = capacity // window_size - len(self.emitted)
        self.max_sent_ms = np.concatenate([self.max_sent_ms, np.zeros(windows, dtype=np.int64)])
        self.emitted = np.concatenate([self.emitted, np.zeros(windows, dtype=np.int32)])


def add_samples(
    state: WalkState, seq: np.ndarray, values: np.ndarray, sent_ms: np.ndarray, settings: WindowSettings
) -> list[dict]:
    """Store new samples (``values``: (n, 19) time + channels) and return the rows now due.

    Rows are dicts with ``kind`` = ``"window"`` or ``"features"`` (see :func:`window_row`,
    :func:`features_row`).
    """
    size = settings.window_size
    seq = np.asarray(seq, dtype=np.int64)
    values = np.asarray(values, dtype=np.float64).reshape(-1, WIDTH)
    sent_ms = np.asarray(sent_ms, dtype=np.int64)
    keep = (seq >= 0) & (seq < settings.max_walk_samples)
    seq, values, sent_ms = seq[keep], values[keep], sent_ms[keep]
    if len(seq) == 0:
        return []
    state._grow(int(seq.max()) + 1, size)
    # First arrival wins: drop seqs already stored and repeats inside this batch.
    _, first = np.unique(seq, return_index=True)
    first = first[~state.present[seq[first]]]
    if len(first) == 0:
        return []
    seq, values, sent_ms = seq[first], values[first], sent_ms[first]
    state.samples[seq] = values
    state.present[seq] = True
    np.maximum.at(state.max_sent_ms, seq // size, sent_ms)
    state.finalized = False
    rows = []
    for window_index in np.unique(seq // size):
        count = int(state.present[window_index * size : (window_index + 1) * size].sum())
        if count == size and state.emitted[window_index] < count:
            rows.append(window_row(state, int(window_index), settings))
    completed = int((state.emitted == size).sum())
    if completed - state.features_at_windows >= settings.features_every:
        rows.append(features_row(state, final=False))
        state.features_at_windows = completed
    return rows


def flush(state: WalkState, settings: WindowSettings) -> list[dict]:
    """The walk went idle: emit windows holding unemitted samples (partial) and final features."""
    size = settings.window_size
    counts = state.present.reshape(-1, size).sum(axis=1) if len(state.present) else np.zeros(0, int)
    rows = [window_row(state, int(w), settings) for w in np.flatnonzero(counts > state.emitted)]
    rows.append(features_row(state, final=True))
    state.features_at_windows = int((state.emitted == size).sum())
    state.finalized = True
    return rows


def window_row(state: WalkState, window_index: int, settings: WindowSettings) -> dict:
    """Mean of each channel over the window's distinct samples, in seq order; marks it emitted."""
    size = settings.window_size
    lo = window_index * size
    idx = lo + np.flatnonzero(state.present[lo : lo + size])
    values = state.samples[idx]
    means = values[:, 1:].mean(axis=0)
    state.emitted[window_index] = len(idx)
    return {
        "kind": "window",
        "window_index": window_index,
        "sample_count": len(idx),
        "partial": bool(len(idx) < size),
        "first_seq": int(idx[0]),
        "last_seq": int(idx[-1]),
        "first_time": float(values[0, 0]),
        "last_time": float(values[-1, 0]),
        **{channel: float(m) for channel, m in zip(FORCE_CHANNELS, means, strict=True)},
        "max_sent_at_ms": int(state.max_sent_ms[window_index]),
    }


def features_row(state: WalkState, final: bool) -> dict:
    """Gait features over every sample received so far (in seq order, gaps skipped).

    A feature that cannot be computed yet (NaN) is left out of the map: Arrow would turn it into
    a null map value, which neither Spark's map decoder nor a Cassandra map accepts.
    """
    values = state.samples[state.present]
    computed = features.gait_features(values[:, 0], values[:, 1:])
    return {
        "kind": "features",
        "samples": int(len(values)),
        "final": final,
        "feature_version": features.FEATURE_VERSION,
        "features": {name: float(v) for name, v in computed.items() if np.isfinite(v)},
    }
