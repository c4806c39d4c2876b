"""Per-walk windowing state machine: pure numpy, no Spark, so it is tested on hand-drawn inputs.

Windows are ``window_index = seq // window_size``: window 0 is seq 0..99, exactly ``window_size``
samples. A :class:`WalkState` keeps only what is still needed, whatever the walk's length:

* the **open windows** (sparse, keyed by window index): samples of windows at or past the
  *frontier*, the first window the gait detector has not consumed yet;
* the gait detector's summary (:class:`model.features.GaitAccumulator`) and a few counters.

::

    seq      0 ......... 99 | 100 ........ 199 | 200 .. 234      (walk idle)
    window   0 (full: emitted as soon as its   | 1 (full)         | 2: emitted partial=True
             100th distinct seq arrives)                             on the idle timeout
    frontier ──────────────────────────────────────────────────────▶ windows are handed to the
             detector in order once complete (or partial, on the idle flush / when forced)

A duplicate seq inside an open window is ignored (first arrival wins; order does not matter).
A window row is emitted when its last missing seq arrives, and on the idle flush when it holds
samples not yet emitted (partial). A sample for a window behind the frontier is *late*: it is
counted, never windowed (its window and the features already went out). Once a window
``max_open_windows // 2`` or more past the frontier is complete, the frontier window goes to the
detector as it is (emitted partial: a lost sample is a gap, skipped seqs are skipped). At most
``max_open_windows`` windows are open: one more forces the oldest out the same way. A record more
than ``max_seq_jump_windows`` past the frontier is refused (``Refused`` with a reason: the caller
dead-letters it) without allocating anything.
Gait features are emitted every ``features_every`` newly completed windows and, marked final,
on the idle flush.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec
import numpy as np

from gaitstream.gaitpdb import COLUMNS, FORCE_CHANNELS
from model import features

WIDTH = len(COLUMNS)  # time + 18 force channels
STATE_FORMAT = 3  # bumped when the bytes below change (a new checkpoint is then required)


@dataclass(frozen=True)
class WindowSettings:
    window_size: int = 100
    features_every: int = 10  # emit running features after this many newly completed windows
    max_open_windows: int = 8  # open windows per walk (bounds the state)
    max_seq_jump_windows: int = 600  # a record starting further past the frontier is refused

    @property
    def force_lag(self) -> int:
        """A window this far past the frontier, complete, forces the frontier window out."""
        return max(1, self.max_open_windows // 2)


class Refused(ValueError):
    """A record the windowing will not take (the reason goes to the dead-letter output)."""


class _OpenWindow(msgspec.Struct, array_like=True):
    index: int
    max_sent_ms: int
    emitted: int  # sample count when last emitted (0 = never)
    seq: bytes  # int64 (k,), sorted
    values: bytes  # float64 (k, WIDTH), in seq order


class _Wire(msgspec.Struct, array_like=True):
    format: int
    study: str
    frontier: int
    completed: int
    features_at: int
    finalized: bool
    late_samples: int
    duplicate_samples: int
    windows: list[_OpenWindow]
    detector: bytes
    closed: bool = False  # optional trailing field: states written without it decode as open


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(_Wire)


@dataclass
class OpenWindow:
    index: int
    seq: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    values: np.ndarray = field(default_factory=lambda: np.zeros((0, WIDTH)))
    max_sent_ms: int = 0
    emitted: int = 0


@dataclass
class WalkState:
    """Everything kept for one walk between micro-batches (see module docstring)."""

    study: str = ""  # from the walk's payloads (flush rows carry it too)
    frontier: int = 0  # windows below this went to the detector
    completed: int = 0  # windows emitted full
    features_at: int = 0  # `completed` when features were last emitted
    finalized: bool = False  # the idle timeout flushed the walk; cleared when data comes back
    late_samples: int = 0  # samples for windows behind the frontier (not windowed)
    duplicate_samples: int = 0  # repeats of a seq in an open window (ignored)
    windows: dict[int, OpenWindow] = field(default_factory=dict)
    detector: features.GaitAccumulator = field(default_factory=features.GaitAccumulator)
    closed: bool = False  # finalized and expired: a tombstone, every later record is refused

    def to_bytes(self) -> bytes:
        windows = [
            _OpenWindow(w.index, w.max_sent_ms, w.emitted, w.seq.tobytes(), w.values.tobytes())
            for w in self.windows.values()
        ]
        return _encoder.encode(
            _Wire(
                STATE_FORMAT,
                self.study,
                self.frontier,
                self.completed,
                self.features_at,
                self.finalized,
                self.late_samples,
                self.duplicate_samples,
                windows,
                self.detector.to_bytes(),
                self.closed,
            )
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> WalkState:
        wire = _decoder.decode(raw)
        if wire.format != STATE_FORMAT:
            raise ValueError(f"walk state format {wire.format}, expected {STATE_FORMAT}: start from a new checkpoint")
        windows = {
            w.index: OpenWindow(
                w.index,
                np.frombuffer(w.seq, dtype=np.int64).copy(),
                np.frombuffer(w.values, dtype=np.float64).reshape(-1, WIDTH).copy(),
                w.max_sent_ms,
                w.emitted,
            )
            for w in wire.windows
        }
        return cls(
            wire.study,
            wire.frontier,
            wire.completed,
            wire.features_at,
            wire.finalized,
            wire.late_samples,
            wire.duplicate_samples,
            windows,
            features.GaitAccumulator.from_bytes(wire.detector),
            wire.closed,
        )


def check_record(state: WalkState, first_seq: int, settings: WindowSettings) -> None:
    """Raise :class:`Refused` for a record whose first sample is too far past the frontier."""
    jump = first_seq // settings.window_size - state.frontier
    if jump >= settings.max_seq_jump_windows:
        raise Refused(
            f"seq_jump: seq {first_seq} is {jump} windows past the walk's next window "
            f"{state.frontier} (max {settings.max_seq_jump_windows})"
        )


def add_samples(
    state: WalkState, seq: np.ndarray, values: np.ndarray, sent_ms: np.ndarray, settings: WindowSettings
) -> list[dict]:
    """Store new samples (``values``: (n, 19) time + channels) and return the rows now due.

    Rows are dicts with ``kind`` = ``"window"`` or ``"features"`` (see :func:`window_row`,
    :func:`features_row`). Callers refuse far jumps first with :func:`check_record`.
    """
    size = settings.window_size
    seq = np.asarray(seq, dtype=np.int64)
    values = np.asarray(values, dtype=np.float64).reshape(-1, WIDTH)
    sent_ms = np.asarray(sent_ms, dtype=np.int64)
    late = seq < state.frontier * size
    state.late_samples += int(late.sum())
    seq, values, sent_ms = seq[~late], values[~late], sent_ms[~late]
    rows: list[dict] = []
    if len(seq) == 0:
        return rows
    state.finalized = False
    order = np.argsort(seq, kind="stable")
    seq, values, sent_ms = seq[order], values[order], sent_ms[order]
    index = seq // size
    bounds = np.flatnonzero(np.diff(index)) + 1
    for lo, hi in zip(np.concatenate([[0], bounds]), np.concatenate([bounds, [len(seq)]]), strict=True):
        w = int(index[lo])
        if w < state.frontier:  # forced past while this batch was being added
            state.late_samples += int(hi - lo)
            continue
        window = state.windows.get(w)
        if window is None:
            rows += _make_room(state, w, settings)
            window = state.windows[w] = OpenWindow(w)
        before = len(window.seq)
        merged_seq = np.concatenate([window.seq, seq[lo:hi]])
        merged_values = np.concatenate([window.values, values[lo:hi]])
        uniq, first = np.unique(merged_seq, return_index=True)  # first arrival wins
        state.duplicate_samples += len(merged_seq) - len(uniq)
        window.seq, window.values = uniq, merged_values[first]
        window.max_sent_ms = max(window.max_sent_ms, int(sent_ms[lo:hi].max()))
        if len(window.seq) == size and window.emitted < size and len(window.seq) > before:
            rows.append(window_row(state, window, settings))
            state.completed += 1
    rows += _advance(state, settings)
    if state.completed - state.features_at >= settings.features_every:
        rows.append(features_row(state, final=False))
        state.features_at = state.completed
    return rows


def _make_room(state: WalkState, new_index: int, settings: WindowSettings) -> list[dict]:
    """Before opening ``new_index``: force the oldest open windows out while the cap is reached."""
    rows: list[dict] = []
    while len(state.windows) >= settings.max_open_windows:
        oldest = min(state.windows)
        if oldest > new_index:
            break
        rows += _pass(state, state.windows.pop(oldest), settings)
        state.frontier = oldest + 1
    return rows


def _advance(state: WalkState, settings: WindowSettings) -> list[dict]:
    """Hand windows to the detector in order: the frontier window once complete, and the oldest
    open window whatever its count once a window ``lag`` or more past the frontier is complete
    (the stream moved on: a missing sample is lost, or a range of seqs was skipped)."""
    rows: list[dict] = []
    size, lag = settings.window_size, settings.force_lag
    while state.windows:
        oldest = min(state.windows)
        ready = oldest == state.frontier and len(state.windows[oldest].seq) == size
        if not ready and not any(i >= state.frontier + lag and len(w.seq) == size for i, w in state.windows.items()):
            break
        rows += _pass(state, state.windows.pop(oldest), settings)
        state.frontier = oldest + 1
    return rows


def _pass(state: WalkState, window: OpenWindow, settings: WindowSettings) -> list[dict]:
    """The window leaves the state: emit it if it holds unemitted samples, feed the detector."""
    rows = []
    if len(window.seq) > window.emitted:
        rows.append(window_row(state, window, settings))
        if len(window.seq) == settings.window_size:
            state.completed += 1
    state.detector.feed(window.values[:, 0], window.values[:, 1:])
    return rows


def flush(state: WalkState, settings: WindowSettings) -> list[dict]:
    """The walk went idle: emit open windows holding unemitted samples (partial) and final features."""
    rows: list[dict] = []
    for index in sorted(state.windows):
        rows += _pass(state, state.windows.pop(index), settings)
        state.frontier = index + 1
    rows.append(features_row(state, final=True))
    state.features_at = state.completed
    state.finalized = True
    state.detector.release_tail()  # the idle state stays small (~2 KiB) until it expires
    return rows


def close(state: WalkState) -> None:
    """A finalized walk's state expired: keep a tombstone (a few dozen bytes) instead of nothing,
    so data arriving for it later is refused rather than starting a fragment that would overwrite
    its full windows with partial ones and its final features with a fragment's."""
    state.windows.clear()
    state.detector = features.GaitAccumulator()
    state.closed = True


def window_row(state: WalkState, window: OpenWindow, settings: WindowSettings) -> dict:
    """Mean of each channel over the window's distinct samples, in seq order; marks it emitted."""
    values, count = window.values, len(window.seq)
    means = values[:, 1:].mean(axis=0)
    window.emitted = count
    return {
        "kind": "window",
        "window_index": window.index,
        "sample_count": count,
        "partial": bool(count < settings.window_size),
        "first_seq": int(window.seq[0]),
        "last_seq": int(window.seq[-1]),
        "first_time": float(values[0, 0]),
        "last_time": float(values[-1, 0]),
        **{channel: float(m) for channel, m in zip(FORCE_CHANNELS, means, strict=True)},
        "max_sent_at_ms": int(window.max_sent_ms),
    }


def features_row(state: WalkState, final: bool) -> dict:
    """Gait features over every sample the detector consumed (in seq order, gaps skipped).

    A feature that cannot be computed yet (NaN) is left out of the map: Arrow would turn it into
    a null map value, which neither Spark's map decoder nor a Cassandra map accepts.
    """
    computed = state.detector.features()
    return {
        "kind": "features",
        "samples": int(state.detector.samples),
        "final": final,
        "feature_version": features.FEATURE_VERSION,
        "features": {name: float(v) for name, v in computed.items() if np.isfinite(v)},
    }
