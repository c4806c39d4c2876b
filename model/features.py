"""Per-walk gait features, computed incrementally: one implementation for the stream, the API and tests.

Window means carry subject identity, not disease (see shared/notes/diagnosis.md): the PD signal
is in the timing of gait events (stride/stance/swing and their variability, double support,
asymmetry, cadence) and in how the load moves under the foot (centre of pressure, heel/toe
shares, force peaks).

:class:`GaitAccumulator` consumes a walk one 100-sample window at a time, in sequence order, and
keeps only a bounded summary: the event detector's carry-over (thresholds of the last walking
windows, contact state, the open contact, a tail of at most :data:`TAIL_MAX_SAMPLES` derived
samples), the last few strides awaiting their outlier verdict, and running sums over accepted
strides. :func:`gait_features` feeds a whole walk through the same class, so the offline value
and the streamed value are the same computation: windows are fixed by sequence number, every
step is a pure function of (summary, window), and the result does not depend on how the samples
were chunked on the way (``tests/unit/test_features_incremental.py``).

Feature version 2 (streaming-friendly definitions; version 1 used whole-walk statistics):

* contact thresholds per foot: median over the last :data:`THRESHOLD_WINDOWS` *walking* windows
  (p95 - p5 of the foot's total >= :data:`MIN_FORCE_RANGE_N`) of each window's p5 and p95,
  instead of the whole walk's p5/p95 (a stream cannot know those before the walk ends);
* stride outliers (turn-arounds, stops): median/MAD over the stride's neighbours (±
  :data:`OUTLIER_HALF_WIDTH` strides) instead of the whole walk;
* body weight: mean force of both feet over the accepted strides of either foot.

Feature version 3 adds the gait-literature features we did not compute (shared/notes/diagnosis.md,
issue 14), each cited where it is computed:

* bilateral coordination: phase coordination index and its parts (Plotnik et al. 2007), step
  time mean/CV per foot and step-time asymmetry (Yogev et al. 2007), stride-time RMSSD;
* force-curve shape per foot: time to the first (heel) peak, loading rate, valley/first-peak ratio;
* heel and forefoot load shares (sensor groups by insole position) and forward centre-of-pressure
  velocity during stance.

Swing % of stride is not a separate column: per stride, swing = stride - stance exactly, so it is
100 * (1 - stance_ratio). DFA alpha of stride intervals is not computed: it needs the whole stride
series (unbounded state) and is noisy on walks of <= ~100 strides.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

import msgspec
import numpy as np

from gaitstream.gaitpdb import FORCE_CHANNELS, SENSOR_XY, SENSORS_LEFT, SENSORS_RIGHT

FEATURE_VERSION = 3

# Contact detection on a foot's total force, relative to its robust range (low..high): a heel
# strike is a rise above ON, a toe off a fall below OFF (hysteresis rejects jitter around one
# threshold; the low percentile absorbs insoles with an offset baseline of 10-20 N).
RANGE_PERCENTILES = (5.0, 95.0)
CONTACT_ON_FRACTION = 0.20
CONTACT_OFF_FRACTION = 0.10
# A window whose range is below this (N) is not walking (standing, insole off): not a threshold source.
MIN_FORCE_RANGE_N = 50.0
# Thresholds follow the median of the last walking windows (~30 s of walking).
THRESHOLD_WINDOWS = 32
# Shorter swings are sensor bounces inside one stance (merged); shorter stances are taps (dropped).
MIN_SWING_S = 0.15
MIN_STANCE_S = 0.20
# Strides outside this range are not walking (standing still, sensor off, a stop).
STRIDE_RANGE_S = (0.5, 3.0)
# Turn-arounds (Ga, Ju corridors) and stumbles: strides, stances or swings further than this many
# robust SDs (1.4826 * MAD) from the median of the neighbouring strides are not counted.
OUTLIER_MAD_K = 3.0
OUTLIER_HALF_WIDTH = 7
MAD_TO_SD = 1.4826
# A very regular walker's MAD can be a few ms: never reject closer than this to the median (1 sample).
MAD_FLOOR_S = 0.01
MIN_STRIDES = 3
# Centre of pressure is only meaningful with real load on the insole.
COP_MIN_FORCE_FRACTION = 0.2
# Stance is cut into this many equal phases (heel strike .. toe off) for force and COP profiles:
# PD shows as a flat-foot contact (COP forward early in stance), weak push-off, and phase-wise
# step-to-step variability.
STANCE_PHASES = 5
# Derived samples kept for strides still open (from the last step's heel strike): a stride longer
# than STRIDE_RANGE_S[1], plus the next stance, is never counted, so older samples are never needed
# at 100 Hz (the cap also bounds faster devices and a walker standing still).
TAIL_MAX_SAMPLES = 600
# Heel-strike times of each foot's last steps, for the other foot's phase and step time. A stride is
# judged OUTLIER_HALF_WIDTH strides after it ended (~9 steps of the other foot); older steps are dropped.
STEP_HISTORY = 24
# Insole regions by sensor Y position (format.txt): heel (sensor 1 and the rear pair 2, 3 at
# Y <= -400), forefoot (the front pair 6, 7 and the toe sensor 8 at Y >= 400).
HEEL_MAX_Y, FOREFOOT_MIN_Y = -400, 400

_FEET = ("l", "r")
_SENSORS = {"l": SENSORS_LEFT, "r": SENSORS_RIGHT}
_TOTAL = {f: FORCE_CHANNELS.index(f"total_{f}") for f in _FEET}
_SENSOR_SLICE = {
    f: slice(FORCE_CHANNELS.index(_SENSORS[f][0]), FORCE_CHANNELS.index(_SENSORS[f][-1]) + 1) for f in _FEET
}
_SENSOR_XY = {f: np.array([SENSOR_XY[s] for s in _SENSORS[f]], dtype=float) for f in _FEET}
_REGIONS = {
    f: {
        "heel": [FORCE_CHANNELS.index(s) for s in _SENSORS[f] if SENSOR_XY[s][1] <= HEEL_MAX_Y],
        "forefoot": [FORCE_CHANNELS.index(s) for s in _SENSORS[f] if SENSOR_XY[s][1] >= FOREFOOT_MIN_Y],
    }
    for f in _FEET
}
_PER_FOOT = (
    "stride_time_mean",
    "stride_time_cv",
    "stance_time_mean",
    "stance_time_cv",
    "swing_time_mean",
    "swing_time_cv",
    "stance_ratio",
    "stride_count",
    "force_peak",
    "force_heel_peak",
    "force_push_peak",
    "force_valley",
    "cop_x_mean",
    "cop_x_std",
    "cop_y_mean",
    "cop_y_std",
    "cop_y_range",
) + tuple(
    f"{kind}_p{k}{stat}"
    for kind in ("force", "cop_x", "cop_y")
    for stat in ("", "_sd")
    for k in range(1, STANCE_PHASES + 1)
)
# Version 3 (appended, so version 2's names keep their order).
_PER_FOOT_V3 = (
    "step_time_mean",
    "step_time_cv",
    "stride_time_rmssd",
    "force_time_to_peak",
    "force_loading_rate",
    "force_valley_ratio",
    "heel_load_share",
    "forefoot_load_share",
    "cop_y_velocity",
)
FEATURE_NAMES: tuple[str, ...] = (
    tuple(f"{name}_{foot}" for foot in _FEET for name in _PER_FOOT)
    + ("double_support_ratio", "cadence", "stride_time_asym", "stance_time_asym", "swing_time_asym")
    + tuple(f"load_share_{s}" for s in _SENSORS["l"] + _SENSORS["r"])
    + tuple(f"{name}_{foot}" for foot in _FEET for name in _PER_FOOT_V3)
    + ("step_time_asym", "phase_coordination_index", "phase_abs", "phase_cv")
)

# Tail columns (one row per sample, derived at window time).
_T, _TOT_L, _TOT_R, _CX_L, _CY_L, _CX_R, _CY_R, _BOTH = range(8)
_TAIL_WIDTH = 8
_COP_COLUMNS = {"l": (_CX_L, _CY_L), "r": (_CX_R, _CY_R)}
_TOTAL_COLUMN = {"l": _TOT_L, "r": _TOT_R}

# One accepted stride's contribution, a fixed-length vector; running sums, sums of squares and
# counts of its finite entries give every per-stride mean and SD. Sample-level COP sums ride along.
_STRIDE, _STANCE, _SWING, _STANCE_RATIO = 0, 1, 2, 3
_HEEL, _PUSH, _PEAK, _VALLEY = 4, 5, 6, 7
_BW_SUM, _BW_N, _DS = 8, 9, 10
_COP_SX, _COP_SY, _COP_SXX, _COP_SYY, _COP_N, _COP_Y_RANGE = 11, 12, 13, 14, 15, 16
_FORCE_P = 17
_COPX_P = _FORCE_P + STANCE_PHASES
_COPY_P = _COPX_P + STANCE_PHASES
# Version 3: force-curve shape and COP velocity (at the stride's end, from the tail), then the
# entries filled when the stride is accepted (_judge): they need the other foot's later heel
# strikes and the previous accepted stride.
_TTP, _TTP_S, _VALLEY_RATIO, _COP_VY = (_COPY_P + STANCE_PHASES + k for k in range(4))
_STEP, _PHASE, _PHASE_ABS, _SUCC_SQ = (_COP_VY + 1 + k for k in range(4))
_CONTRIB_WIDTH = _SUCC_SQ + 1


def gait_features(time: np.ndarray, forces: np.ndarray, window_size: int = 100) -> dict[str, float]:
    """All of FEATURE_NAMES for one (possibly partial) walk in sequence order; NaN where too little data."""
    time = np.asarray(time, dtype=np.float64)
    forces = np.asarray(forces, dtype=np.float64).reshape(-1, len(FORCE_CHANNELS))
    acc = GaitAccumulator()
    for start in range(0, len(time), window_size):
        acc.feed(time[start : start + window_size], forces[start : start + window_size])
    return acc.features()


# ---------------------------------------------------------------------------------------------
# Summary kept between windows (msgpack, never pickle: the state store is outside our process).


class _Contact(msgspec.Struct, array_like=True):
    hs_g: int
    hs_t: float
    to_g: int = -1
    to_t: float = math.nan


class _FootState(msgspec.Struct, array_like=True):
    lows: list[float] = []  # p5 of the last walking windows
    highs: list[float] = []  # p95 of the last walking windows
    contact: bool = False  # contact state after the last sample
    current: _Contact | None = None  # the contact in progress (its toe off may still be merged away)
    current_kept: bool = False  # `current` already counts as a step
    kept: _Contact | None = None  # the last finished contact counted as a step
    strides: list[list[float]] = []  # last strides: [stride, stance, swing, plausible, heel strike t] (2H+1 at most)
    first_stride: int = 0  # stride number of strides[0]
    pending: list[list[float]] = []  # contribution vectors of strides not judged yet (oldest first)
    first_pending: int = 0  # stride number of pending[0]
    sums: list[float] = []  # over accepted strides: sum, sum of squares, count per entry
    squares: list[float] = []
    counts: list[float] = []
    steps: list[float] = []  # heel-strike times of the last STEP_HISTORY contacts counted as steps
    steps_floor: float = -math.inf  # every step after this time is in `steps` (the last one dropped)
    last_accepted: int = -2  # stride number of the last accepted stride (RMSSD pairs)
    last_accepted_stride: float = math.nan


class _Wire(msgspec.Struct, array_like=True):
    samples: int
    prev: list[float]  # last sample: time, total_l, total_r (crossing interpolation)
    channel_sums: list[float]  # per force channel, over every sample (load shares)
    tail_start: int  # global sample index of tail[0]
    tail: bytes  # (n, _TAIL_WIDTH) float64
    feet: list[_FootState]


_wire_encoder = msgspec.msgpack.Encoder()
_wire_decoder = msgspec.msgpack.Decoder(_Wire)


@dataclass
class GaitAccumulator:
    """Incremental gait features of one walk (see module docstring); ``feed`` one window at a time."""

    samples: int = 0
    prev: list[float] = field(default_factory=list)
    channel_sums: np.ndarray = field(default_factory=lambda: np.zeros(len(FORCE_CHANNELS)))
    tail_start: int = 0
    tail: np.ndarray = field(default_factory=lambda: np.zeros((0, _TAIL_WIDTH)))
    feet: dict[str, _FootState] = field(default_factory=lambda: {f: _new_foot() for f in _FEET})

    # -- persistence ------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        return _wire_encoder.encode(
            _Wire(
                self.samples,
                self.prev,
                self.channel_sums.tolist(),
                self.tail_start,
                self.tail.tobytes(),
                [self.feet[f] for f in _FEET],
            )
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> GaitAccumulator:
        wire = _wire_decoder.decode(raw)
        tail = np.frombuffer(wire.tail, dtype=np.float64).reshape(-1, _TAIL_WIDTH).copy()
        return cls(
            wire.samples,
            wire.prev,
            np.array(wire.channel_sums, dtype=np.float64),
            wire.tail_start,
            tail,
            dict(zip(_FEET, wire.feet, strict=True)),
        )

    # -- one window -------------------------------------------------------------------------
    def feed(self, time: np.ndarray, forces: np.ndarray) -> None:
        """Consume one window's samples (sequence order, gaps skipped); the unit of all state changes."""
        time = np.asarray(time, dtype=np.float64)
        forces = np.asarray(forces, dtype=np.float64).reshape(-1, len(FORCE_CHANNELS))
        n = len(time)
        if n == 0:
            return
        self.channel_sums += forces.sum(axis=0)
        rows = np.empty((n, _TAIL_WIDTH))
        rows[:, _T] = time
        contact, levels = {}, {}
        for foot in _FEET:
            total = forces[:, _TOTAL[foot]]
            rows[:, _TOTAL_COLUMN[foot]] = total
            state = self.feet[foot]
            on, off, high = levels[foot] = _thresholds(state, total)
            contact[foot] = _hysteresis(total, on, off, state.contact if self.samples else None)
            cx, cy = _COP_COLUMNS[foot]
            rows[:, cx], rows[:, cy] = _cop(forces, foot, high)
        rows[:, _BOTH] = contact["l"] & contact["r"]
        self.tail = np.concatenate([self.tail, rows])
        for foot in _FEET:
            state = self.feet[foot]
            on, off, _high = levels[foot]
            for kind, g, t in _events(
                contact[foot],
                state.contact if self.samples else contact[foot][0],
                rows,
                self.prev,
                self.samples,
                foot,
                on,
                off,
            ):
                self._on_event(foot, kind, g, t)
            state.contact = bool(contact[foot][-1])
        self.samples += n
        self.prev = [float(time[-1]), float(rows[-1, _TOT_L]), float(rows[-1, _TOT_R])]
        self._trim_tail()

    def _on_event(self, foot: str, kind: str, g: int, t: float) -> None:
        """Online contact cleaning: merge short swings (bounces), drop short stances (taps).

        A contact is counted as a step once its stance reaches MIN_STANCE_S at a toe off (merging
        a bounce only lengthens it); the stride from the previous step ends at its heel strike.
        """
        state = self.feet[foot]
        current = state.current
        if kind == "to":
            if current is None:
                return  # a toe off before any heel strike has no stance
            current.to_g, current.to_t = g, t
            if not state.current_kept and t - current.hs_t >= MIN_STANCE_S:
                state.steps.append(current.hs_t)
                if len(state.steps) > STEP_HISTORY:
                    state.steps_floor = state.steps.pop(0)
                if state.kept is not None:
                    self._add_stride(foot, state, state.kept, current.hs_g, current.hs_t)
                state.current_kept = True
            return
        if current is not None and current.to_g >= 0 and t - current.to_t < MIN_SWING_S:
            current.to_g, current.to_t = -1, math.nan  # bounce: one contact, not two
            return
        if current is not None and state.current_kept:
            state.kept = current  # a step; an uncounted contact was a tap
        state.current, state.current_kept = _Contact(g, t), False

    def _add_stride(self, foot: str, state: _FootState, kept: _Contact, next_g: int, next_t: float) -> None:
        stride, stance, swing = next_t - kept.hs_t, kept.to_t - kept.hs_t, next_t - kept.to_t
        plausible = STRIDE_RANGE_S[0] <= stride <= STRIDE_RANGE_S[1] and kept.hs_g >= self.tail_start
        contribution = self._contribution(foot, kept, next_g, stride, stance, swing) if plausible else None
        state.strides.append([stride, stance, swing, 1.0 if plausible else 0.0, kept.hs_t])
        state.pending.append(contribution if contribution is not None else [])
        _judge(state, self.feet[_other(foot)], final=False)

    def _contribution(
        self, foot: str, kept: _Contact, next_g: int, stride: float, stance: float, swing: float
    ) -> list[float]:
        """What one stride adds to the running sums (computed now, while its samples are in the tail)."""
        base = self.tail_start
        hs, to, nxt = kept.hs_g - base, kept.to_g - base, next_g - base
        tail = self.tail
        total = tail[:, _TOTAL_COLUMN[foot]]
        out = np.full(_CONTRIB_WIDTH, np.nan)
        out[_STRIDE], out[_STANCE], out[_SWING], out[_STANCE_RATIO] = stride, stance, swing, stance / stride
        mid, q1, q3 = (hs + to) // 2, hs + (to - hs) // 4, hs + 3 * (to - hs) // 4
        first_peak = hs + int(np.argmax(total[hs:mid])) if mid > hs else hs
        heel, push = float(total[first_peak]), _seg_max(total, mid, to)
        valley = _seg_min(total, q1, q3)
        out[_HEEL], out[_PUSH], out[_PEAK], out[_VALLEY] = heel, push, max(heel, push), valley
        # Force-curve shape (the vertical GRF's "double hump"; PD flattens it, e.g. Alam et al. 2017,
        # Lee & Lim 2012): time from heel strike to the first (heel-loading) peak, as a share of stance
        # and in seconds (for the loading rate), and the mid-stance valley relative to that peak.
        out[_TTP_S] = tail[first_peak, _T] - kept.hs_t
        out[_TTP] = out[_TTP_S] / stance
        out[_VALLEY_RATIO] = valley / heel if heel > 0 else math.nan
        both_feet = tail[hs:nxt, _TOT_L] + tail[hs:nxt, _TOT_R]
        out[_BW_SUM], out[_BW_N] = both_feet.sum(), nxt - hs
        out[_DS] = tail[hs:nxt, _BOTH].sum() / (nxt - hs)
        bounds = hs + np.round(np.arange(STANCE_PHASES + 1) * (to - hs) / STANCE_PHASES).astype(int)
        cx, cy = _COP_COLUMNS[foot]
        profiles = _phase_means(tail[:, (_TOTAL_COLUMN[foot], cx, cy)], bounds)  # (phases, 3)
        out[_FORCE_P : _FORCE_P + STANCE_PHASES] = profiles[:, 0]
        out[_COPX_P : _COPX_P + STANCE_PHASES] = profiles[:, 1]
        out[_COPY_P : _COPY_P + STANCE_PHASES] = profiles[:, 2]
        x, y = tail[hs:to, cx], tail[hs:to, cy]
        loaded = x == x  # not NaN
        if loaded.any():
            x, y = x[loaded], y[loaded]
            out[_COP_SX], out[_COP_SY] = x.sum(), y.sum()
            out[_COP_SXX], out[_COP_SYY], out[_COP_N] = (x * x).sum(), (y * y).sum(), len(x)
            out[_COP_Y_RANGE] = y.max() - y.min()
            # Forward COP velocity: net heel-to-toe progression of the COP over the loaded stance
            # (insole units/s; slower roll-over in PD: Alam et al. 2017, diagnosis.md).
            t = tail[hs:to, _T][loaded]
            if len(t) > 1 and t[-1] > t[0]:
                out[_COP_VY] = (y[-1] - y[0]) / (t[-1] - t[0])
        return out.tolist()

    def _trim_tail(self) -> None:
        """Keep the samples a stride may still need: from the oldest counted or open heel strike."""
        end = self.tail_start + len(self.tail)
        needed = end
        for state in self.feet.values():
            for contact in (state.kept, state.current):
                if contact is not None:
                    needed = min(needed, contact.hs_g)
        start = max(needed, end - TAIL_MAX_SAMPLES, self.tail_start)
        if start > self.tail_start:
            self.tail = self.tail[start - self.tail_start :].copy()
            self.tail_start = start

    def release_tail(self) -> None:
        """Drop the derived samples (the walk went idle): any stride across the pause is longer
        than STRIDE_RANGE_S allows, so nothing they could still feed would count."""
        self.tail_start += len(self.tail)
        self.tail = self.tail[:0].copy()

    # -- read-out ---------------------------------------------------------------------------
    def features(self) -> dict[str, float]:
        """Features as if the walk ended now (the accumulator itself is not changed)."""
        out = dict.fromkeys(FEATURE_NAMES, np.nan)
        if self.samples < 2:
            return out
        finished = GaitAccumulator.from_bytes(self.to_bytes())
        for foot in _FEET:
            state = finished.feet[foot]
            current = state.current
            if current is not None and current.to_g < 0 and not state.current_kept and state.kept is not None:
                # the walk ends in a contact: its heel strike ends the last stride (no toe off needed)
                finished._add_stride(foot, state, state.kept, current.hs_g, current.hs_t)
            _judge(state, finished.feet[_other(foot)], final=True)
        stats = {foot: _Stats(finished.feet[foot]) for foot in _FEET}
        bw_sum = sum(s.total(_BW_SUM) for s in stats.values())
        bw_n = sum(s.total(_BW_N) for s in stats.values())
        sums = self.channel_sums
        weight = bw_sum / bw_n if bw_n > 0 else (sums[_TOTAL["l"]] + sums[_TOTAL["r"]]) / self.samples
        for foot in _FEET:
            out.update(_load_shares(foot, sums))
            out.update(_foot_features(foot, stats[foot], weight))
        out.update(_bilateral_features(out, stats))
        return out


def _other(foot: str) -> str:
    return "r" if foot == "l" else "l"


def _new_foot() -> _FootState:
    zeros = [0.0] * _CONTRIB_WIDTH
    return _FootState(
        lows=[], highs=[], strides=[], pending=[], sums=list(zeros), squares=list(zeros), counts=list(zeros)
    )


# ---------------------------------------------------------------------------------------------
# Event detection.


def _thresholds(state: _FootState, total: np.ndarray) -> tuple[float, float, float]:
    """Record this window's range when it is walking; ON, OFF and the high level (NaN: none yet)."""
    low, high = _percentiles(total)
    if high - low >= MIN_FORCE_RANGE_N:
        state.lows = (state.lows + [float(low)])[-THRESHOLD_WINDOWS:]
        state.highs = (state.highs + [float(high)])[-THRESHOLD_WINDOWS:]
    return _current_thresholds(state)


def _current_thresholds(state: _FootState) -> tuple[float, float, float]:
    if not state.highs:
        return math.nan, math.nan, math.nan
    low, high = _median(state.lows), _median(state.highs)
    if high - low < MIN_FORCE_RANGE_N:
        return math.nan, math.nan, high
    return low + CONTACT_ON_FRACTION * (high - low), low + CONTACT_OFF_FRACTION * (high - low), high


def _percentiles(x: np.ndarray) -> tuple[float, float]:
    """np.percentile(x, RANGE_PERCENTILES) (linear interpolation), without its per-call overhead."""
    ordered = np.sort(x)
    out = []
    for q in RANGE_PERCENTILES:
        pos = q / 100.0 * (len(ordered) - 1)
        lo = int(pos)
        hi = min(lo + 1, len(ordered) - 1)
        out.append(float(ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)))
    return out[0], out[1]


def _median(values: list[float]) -> float:
    """Median of a short list (Python's sort beats numpy's call overhead below ~100 values)."""
    ordered = sorted(values)
    n = len(ordered)
    return ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2.0


def _hysteresis(total: np.ndarray, on: float, off: float, carry: bool | None) -> np.ndarray:
    """Contact per sample: above ON → in contact, below OFF → not, in between → as before."""
    n = len(total)
    start = bool(carry) if carry is not None else False
    if math.isnan(on):
        return np.full(n, start)
    marks = np.where(total > on, 1, np.where(total < off, 0, -1)).astype(np.int8)
    idx = np.where(marks >= 0, np.arange(n), -1)
    np.maximum.accumulate(idx, out=idx)
    return np.where(idx >= 0, marks[np.maximum(idx, 0)] == 1, start)


def _events(
    contact: np.ndarray,
    before: bool,
    rows: np.ndarray,
    prev: list[float],
    first_g: int,
    foot: str,
    on: float,
    off: float,
) -> list[tuple[str, int, float]]:
    """Heel strikes (rises) and toe offs (falls) with linearly interpolated crossing times."""
    previous = np.concatenate([[before], contact[:-1]])
    changed = np.flatnonzero(contact != previous)
    if len(changed) == 0:
        return []
    column = _TOTAL_COLUMN[foot]
    out = []
    for i in changed:
        if i > 0:
            t0, x0 = rows[i - 1, _T], rows[i - 1, column]
        else:
            t0, x0 = prev[0], prev[1 + _FEET.index(foot)]
        t1, x1 = rows[i, _T], rows[i, column]
        rising = bool(contact[i])
        level = on if rising else off
        frac = min(max((level - x0) / (x1 - x0 if x1 != x0 else 1.0), 0.0), 1.0)
        out.append(("hs" if rising else "to", first_g + int(i), float(t0 + frac * (t1 - t0))))
    return out


def _cop(forces: np.ndarray, foot: str, high: float) -> tuple[np.ndarray, np.ndarray]:
    """Centre of pressure (sensor-position weighted force), NaN when the insole is not loaded."""
    sensor = forces[:, _SENSOR_SLICE[foot]]
    load = sensor.sum(axis=1)
    loaded = load > COP_MIN_FORCE_FRACTION * high if not math.isnan(high) else np.zeros(len(load), dtype=bool)
    cop = np.full((len(load), 2), np.nan)
    if loaded.any():
        cop[loaded] = (sensor[loaded] @ _SENSOR_XY[foot]) / load[loaded, None]
    return cop[:, 0], cop[:, 1]


def _seg_max(x: np.ndarray, a: int, b: int) -> float:
    return float(x[a:b].max()) if b > a else float(x[a])


def _seg_min(x: np.ndarray, a: int, b: int) -> float:
    return float(x[a:b].min()) if b > a else float(x[a])


def _phase_means(values: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Per column, mean of the non-NaN values in each phase [bounds[k], bounds[k+1]) (one sample if empty)."""
    part = values[bounds[0] : bounds[-1] + 1]
    finite = part == part  # not NaN
    local = bounds - bounds[0]
    sums = np.add.reduceat(np.where(finite, part, 0.0), local, axis=0)[:STANCE_PHASES]
    counts = np.add.reduceat(finite.astype(np.float64), local, axis=0)[:STANCE_PHASES]
    out = np.full(sums.shape, np.nan)
    np.divide(sums, counts, out=out, where=counts > 0)
    return out


# ---------------------------------------------------------------------------------------------
# Stride verdicts and running sums.


def _judge(state: _FootState, other: _FootState, final: bool) -> None:
    """Accept or reject the pending strides whose neighbourhood (± H strides) is known.

    An accepted stride's bilateral timing (phase, step time) and its successive difference are
    filled in here: by now the other foot's heel strikes inside the stride are known (`other`).
    """
    last = state.first_stride + len(state.strides) - 1
    while state.pending:
        j = state.first_pending
        if not final and j + OUTLIER_HALF_WIDTH > last:
            break
        lo = max(j - OUTLIER_HALF_WIDTH, state.first_stride)
        hood = state.strides[lo - state.first_stride : j + OUTLIER_HALF_WIDTH + 1 - state.first_stride]
        ok = [row[3] > 0 for row in hood]
        for column in range(3):
            if sum(ok) < MIN_STRIDES:
                break
            kept = [row[column] for row, good in zip(hood, ok, strict=True) if good]
            med = _median(kept)
            limit = OUTLIER_MAD_K * max(MAD_TO_SD * _median([abs(x - med) for x in kept]), MAD_FLOOR_S)
            ok = [good and abs(row[column] - med) <= limit for row, good in zip(hood, ok, strict=True)]
        contribution = state.pending.pop(0)
        state.first_pending += 1
        if ok[j - lo] and contribution:
            _accepted_timing(state, other, j, contribution)
            finite = [v == v for v in contribution]  # not NaN
            state.sums = [s + v if f else s for s, v, f in zip(state.sums, contribution, finite, strict=True)]
            state.squares = [s + v * v if f else s for s, v, f in zip(state.squares, contribution, finite, strict=True)]
            state.counts = [c + 1.0 if f else c for c, f in zip(state.counts, finite, strict=True)]
    keep_from = max(state.first_pending - OUTLIER_HALF_WIDTH, state.first_stride)
    if keep_from > state.first_stride:
        del state.strides[: keep_from - state.first_stride]
        state.first_stride = keep_from


def _accepted_timing(state: _FootState, other: _FootState, j: int, contribution: list[float]) -> None:
    """Fill an accepted stride's bilateral timing and successive difference into its contribution.

    Phase (Plotnik, Giladi & Hausdorff 2007, Exp Brain Res 181:561, "Bilateral coordination of
    walking and freezing of gait in Parkinson's disease"): the other foot's heel strike inside the
    stride, as a share of the stride in degrees, phi = 360 * (t_other_HS - t_HS) / stride (180 in a
    perfectly anti-phased gait). Step time: from that heel strike to this foot's next one (the step
    this foot takes). Squared successive difference of stride times (for the RMSSD): only between
    two consecutive strides that were both accepted, so a rejected stride (a turn, a stop) breaks
    the chain instead of making a jump.
    """
    stride, start = state.strides[j - state.first_stride][0], state.strides[j - state.first_stride][4]
    if other.steps_floor <= start:  # every heel strike of the other foot after `start` is still known
        k = bisect.bisect_right(other.steps, start)
        if k < len(other.steps) and other.steps[k] < start + stride:
            phase = 360.0 * (other.steps[k] - start) / stride
            contribution[_PHASE], contribution[_PHASE_ABS] = phase, abs(phase - 180.0)
            contribution[_STEP] = start + stride - other.steps[k]
    if state.last_accepted == j - 1:
        contribution[_SUCC_SQ] = (stride - state.last_accepted_stride) ** 2
    state.last_accepted, state.last_accepted_stride = j, stride


class _Stats:
    """Mean / SD / count of each contribution entry over a foot's accepted strides."""

    def __init__(self, state: _FootState):
        self.sums, self.squares = np.asarray(state.sums), np.asarray(state.squares)
        self.counts = np.asarray(state.counts)
        self.strides = int(self.counts[_STRIDE])

    def total(self, i: int) -> float:
        return float(self.sums[i])

    def mean(self, i: int) -> float:
        n = self.counts[i]
        return float(self.sums[i] / n) if n > 0 else math.nan

    def sd(self, i: int, ddof: int) -> float:
        n = self.counts[i]
        if n - ddof <= 0:
            return math.nan
        mean = self.sums[i] / n
        return float(math.sqrt(max(self.squares[i] - n * mean * mean, 0.0) / (n - ddof)))


def _foot_features(foot: str, stats: _Stats, weight: float) -> dict[str, float]:
    out: dict[str, float] = {f"stride_count_{foot}": float(stats.strides)}
    if stats.strides < MIN_STRIDES:
        return out
    for name, i in (("stride", _STRIDE), ("stance", _STANCE), ("swing", _SWING)):
        mean = stats.mean(i)
        out[f"{name}_time_mean_{foot}"], out[f"{name}_time_cv_{foot}"] = mean, stats.sd(i, 1) / mean
    out[f"stance_ratio_{foot}"] = stats.mean(_STANCE_RATIO)
    # Step time (other foot's heel strike to this foot's) and its variability: Yogev et al. 2007
    # (Exp Brain Res 177:336, "Gait asymmetry in patients with Parkinson's disease and elderly
    # fallers"), Plotnik et al. 2007; CV of strides with a known other-foot heel strike.
    if stats.counts[_STEP] >= MIN_STRIDES:
        mean = stats.mean(_STEP)
        out[f"step_time_mean_{foot}"], out[f"step_time_cv_{foot}"] = mean, stats.sd(_STEP, 1) / mean
    # Stride-time RMSSD (s): root mean square of successive differences of consecutive accepted
    # strides, the short-term (stride-to-stride) part of the variability that the CV mixes with drift
    # (Hausdorff 2005/2007 on stride-to-stride fluctuations in PD; RMSSD as in heart-rate variability).
    if stats.counts[_SUCC_SQ] >= MIN_STRIDES - 1:
        out[f"stride_time_rmssd_{foot}"] = math.sqrt(stats.mean(_SUCC_SQ))
    weight = weight if weight > 0 else math.nan
    # Force-curve shape: time to the first peak (share of stance), loading rate (first peak / time
    # to it, in body weights per second: a ratio of the means over strides, so one stride whose peak
    # sits at its heel strike cannot dominate), valley / first peak.
    out[f"force_time_to_peak_{foot}"] = stats.mean(_TTP)
    ttp_s = stats.mean(_TTP_S)
    out[f"force_loading_rate_{foot}"] = stats.mean(_HEEL) / ttp_s / weight if ttp_s > 0 else math.nan
    out[f"force_valley_ratio_{foot}"] = stats.mean(_VALLEY_RATIO)
    for name, i in (
        ("force_peak", _PEAK),
        ("force_heel_peak", _HEEL),
        ("force_push_peak", _PUSH),
        ("force_valley", _VALLEY),
    ):
        out[f"{name}_{foot}"] = stats.mean(i) / weight
    for k in range(STANCE_PHASES):
        out[f"force_p{k + 1}_{foot}"] = stats.mean(_FORCE_P + k) / weight
        out[f"force_p{k + 1}_sd_{foot}"] = stats.sd(_FORCE_P + k, 0) / weight
    n_cop = stats.total(_COP_N)
    if n_cop >= MIN_STRIDES:
        for axis, s, ss in (("x", _COP_SX, _COP_SXX), ("y", _COP_SY, _COP_SYY)):
            mean = stats.total(s) / n_cop
            out[f"cop_{axis}_mean_{foot}"] = mean
            out[f"cop_{axis}_std_{foot}"] = math.sqrt(max(stats.total(ss) / n_cop - mean * mean, 0.0))
        out[f"cop_y_range_{foot}"] = stats.mean(_COP_Y_RANGE)
        out[f"cop_y_velocity_{foot}"] = stats.mean(_COP_VY)
        for kind, first in (("cop_x", _COPX_P), ("cop_y", _COPY_P)):
            for k in range(STANCE_PHASES):
                out[f"{kind}_p{k + 1}_{foot}"] = stats.mean(first + k)
                out[f"{kind}_p{k + 1}_sd_{foot}"] = stats.sd(first + k, 0)
    return out


def _load_shares(foot: str, channel_sums: np.ndarray) -> dict[str, float]:
    """Each sensor's share of the foot's load (over the walk): heel vs toe, medial vs lateral.

    Heel and forefoot shares: the regions' sensors (HEEL_MAX_Y, FOREFOOT_MIN_Y) over the foot's
    eight sensors; PD walkers load the heel less and land flat-footed (Kimmeskamp & Hennig 2001,
    Clin Biomech 16:806, "Heel to toe motion characteristics in Parkinson patients during free
    walking"; Alam et al. 2017).
    """
    out: dict[str, float] = {}
    total = channel_sums[_TOTAL[foot]]
    if total > 0:
        out = {f"load_share_{s}": float(channel_sums[FORCE_CHANNELS.index(s)] / total) for s in _SENSORS[foot]}
    sensors = channel_sums[_SENSOR_SLICE[foot]].sum()
    if sensors > 0:
        for region, channels in _REGIONS[foot].items():
            out[f"{region}_load_share_{foot}"] = float(channel_sums[channels].sum() / sensors)
    return out


def _bilateral_features(out: dict[str, float], stats: dict[str, _Stats]) -> dict[str, float]:
    res: dict[str, float] = {}
    if all(s.strides >= MIN_STRIDES for s in stats.values()):
        res["double_support_ratio"] = sum(s.total(_DS) for s in stats.values()) / sum(
            s.counts[_DS] for s in stats.values()
        )
    stride_l, stride_r = out["stride_time_mean_l"], out["stride_time_mean_r"]
    finite = [v for v in (stride_l, stride_r) if math.isfinite(v)]
    res["cadence"] = 120.0 / (sum(finite) / len(finite)) if finite else math.nan
    for phase in ("stride", "stance", "swing"):
        left, right = out[f"{phase}_time_mean_l"], out[f"{phase}_time_mean_r"]
        res[f"{phase}_time_asym"] = abs(math.log(left / right)) if left > 0 and right > 0 else math.nan
    # Step-time asymmetry as Yogev et al. 2007 define gait asymmetry (|ln| of the ratio; they use swing).
    left, right = out["step_time_mean_l"], out["step_time_mean_r"]
    res["step_time_asym"] = abs(math.log(left / right)) if left > 0 and right > 0 else math.nan
    res.update(_phase_coordination(out, stats))
    return res


def _phase_coordination(out: dict[str, float], stats: dict[str, _Stats]) -> dict[str, float]:
    """Phase coordination index (Plotnik et al. 2007): PCI = phi_CV + P_phi_ABS, in %.

    phi per stride of the reference foot (the one with the longer mean swing time, as in the
    paper), phi_CV = 100 * SD(phi) / mean(phi) (consistency), phi_ABS = mean |phi - 180| in degrees
    (accuracy), P_phi_ABS = 100 * phi_ABS / 180. Higher is worse coordinated (PD, more so with
    freezing of gait).
    """
    swing_l, swing_r = out["swing_time_mean_l"], out["swing_time_mean_r"]
    if not (math.isfinite(swing_l) and math.isfinite(swing_r)):
        return {}
    ref = stats["l" if swing_l >= swing_r else "r"]
    if ref.counts[_PHASE] < MIN_STRIDES:
        return {}
    phase_cv = 100.0 * ref.sd(_PHASE, 1) / ref.mean(_PHASE)
    phase_abs = ref.mean(_PHASE_ABS)
    return {
        "phase_coordination_index": phase_cv + 100.0 * phase_abs / 180.0,
        "phase_abs": phase_abs,
        "phase_cv": phase_cv,
    }


def window_means(seq: np.ndarray, forces: np.ndarray, window: int = 100) -> list[dict]:
    """Reference per-window means: window_index = seq // window; a repeated seq counts once (first).

    Returns one dict per window, sorted by window_index, with window_index, sample_count,
    first_seq, last_seq, partial (fewer than ``window`` distinct samples) and one mean per
    FORCE_CHANNELS name.
    """
    seq = np.asarray(seq, dtype=np.int64)
    forces = np.asarray(forces, dtype=np.float64).reshape(-1, len(FORCE_CHANNELS))
    if len(seq) != len(forces):
        raise ValueError(f"{len(seq)} sequence numbers for {len(forces)} samples")
    if window < 1 or (len(seq) and seq.min() < 0):
        raise ValueError("window must be >= 1 and sequence numbers >= 0")
    _, first = np.unique(seq, return_index=True)  # sorted by seq, first arrival of each
    seq, forces = seq[first], forces[first]
    index = seq // window
    rows = []
    for w in np.unique(index):
        part = index == w
        count = int(part.sum())
        means = forces[part].mean(axis=0)
        rows.append(
            {
                "window_index": int(w),
                "sample_count": count,
                "first_seq": int(seq[part][0]),
                "last_seq": int(seq[part][-1]),
                "partial": count < window,
                **{c: float(m) for c, m in zip(FORCE_CHANNELS, means, strict=True)},
            }
        )
    return rows
