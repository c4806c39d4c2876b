"""Per-walk gait features and per-window channel means (pure numpy/pandas, no I/O).

Window means carry subject identity, not disease (see shared/notes/diagnosis.md): the PD signal
is in the timing of gait events (stride/stance/swing and their variability, double support,
asymmetry, cadence) and in how the load moves under the foot (centre of pressure, heel/toe
shares, force peaks). :func:`gait_features` detects heel strikes and toe offs from each foot's
total force and summarises them; it also runs on a partial walk (the streaming job calls it on
what has arrived so far) and gives NaN for what cannot be computed yet.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from gaitstream.gaitpdb import FORCE_CHANNELS, SENSOR_XY, SENSORS_LEFT, SENSORS_RIGHT

FEATURE_VERSION = 1

# Contact detection on a foot's total force, relative to its robust range (low..high percentile):
# a heel strike is a rise above ON, a toe off a fall below OFF (hysteresis rejects jitter around
# one threshold; the low percentile absorbs insoles with an offset baseline of 10-20 N).
RANGE_PERCENTILES = (5.0, 95.0)
CONTACT_ON_FRACTION = 0.20
CONTACT_OFF_FRACTION = 0.10
# Below this range (N) the foot is not loaded and unloaded in turn: nobody is walking yet.
MIN_FORCE_RANGE_N = 50.0
# Shorter swings are sensor bounces inside one stance (merged); shorter stances are taps (dropped).
MIN_SWING_S = 0.15
MIN_STANCE_S = 0.20
# Strides outside this range are not walking (standing still, sensor off, a stop).
STRIDE_RANGE_S = (0.5, 3.0)
# Turn-arounds (Ga, Ju corridors) and stumbles: strides, stances or swings further than this many
# robust SDs (1.4826 * MAD) from the walk's median are dropped before any statistic.
OUTLIER_MAD_K = 3.0
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

_FEET = ("l", "r")
_SENSORS = {"l": SENSORS_LEFT, "r": SENSORS_RIGHT}
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
FEATURE_NAMES: tuple[str, ...] = (
    tuple(f"{name}_{foot}" for foot in _FEET for name in _PER_FOOT)
    + ("double_support_ratio", "cadence", "stride_time_asym", "stance_time_asym", "swing_time_asym")
    + tuple(f"load_share_{s}" for s in _SENSORS["l"] + _SENSORS["r"])
)


def gait_features(time: np.ndarray, forces: np.ndarray) -> dict[str, float]:
    """All of FEATURE_NAMES for one (possibly partial) walk; NaN where there is too little data."""
    time = np.asarray(time, dtype=np.float64)
    forces = np.asarray(forces, dtype=np.float64).reshape(-1, len(FORCE_CHANNELS))
    out = dict.fromkeys(FEATURE_NAMES, np.nan)
    if len(time) < 2:
        return out
    totals = {f: forces[:, FORCE_CHANNELS.index(f"total_{f}")] for f in _FEET}
    contact, strides = {}, {}
    for foot in _FEET:
        contact[foot], strides[foot] = _foot_strides(time, totals[foot])
    body_weight = _body_weight(totals["l"] + totals["r"], strides)
    for foot in _FEET:
        out.update(_load_shares(foot, forces))
        out.update(_foot_features(foot, strides[foot], forces, contact[foot], body_weight))
    out.update(_bilateral_features(out, strides, contact))
    return out


def _body_weight(both: np.ndarray, strides: dict[str, pd.DataFrame]) -> float:
    """Mean force of both feet over the valid strides: over whole strides it equals body weight.

    Standing, sitting or an insole off (some walks) would bias a whole-recording mean.
    """
    walking = np.zeros(len(both) + 1, dtype=int)
    for frame in strides.values():
        np.add.at(walking, frame["hs"].to_numpy(int), 1)
        np.add.at(walking, frame["next_hs"].to_numpy(int), -1)
    mask = np.cumsum(walking)[:-1] > 0
    return float(np.mean(both[mask] if mask.any() else both))


def _foot_strides(time: np.ndarray, total: np.ndarray) -> tuple[np.ndarray, pd.DataFrame]:
    """Contact state per sample and the foot's valid strides (heel strike to next heel strike).

    Stride rows: ``hs``/``to``/``next_hs`` sample indices (the first sample past each crossing)
    and ``stride``/``stance``/``swing`` durations from linearly interpolated crossing times.
    """
    low, high = np.percentile(total, RANGE_PERCENTILES)
    contact = np.zeros(len(total), dtype=bool)
    empty = pd.DataFrame(columns=["hs", "to", "next_hs", "stride", "stance", "swing"])
    if high - low < MIN_FORCE_RANGE_N:
        return contact, empty
    on, off = low + CONTACT_ON_FRACTION * (high - low), low + CONTACT_OFF_FRACTION * (high - low)
    # Hysteresis: +1 above ON, -1 below OFF, carried forward through the band in between.
    marks = pd.Series(np.where(total > on, 1.0, np.where(total < off, -1.0, np.nan))).ffill().to_numpy()
    contact = marks == 1.0
    edges = np.diff(contact.astype(np.int8))
    hs = np.flatnonzero(edges == 1) + 1
    to = np.flatnonzero(edges == -1) + 1
    t_hs, t_to = _crossing_times(time, total, hs, on), _crossing_times(time, total, to, off)
    hs, to, t_hs, t_to = _clean_contacts(hs, to, t_hs, t_to)
    # Stride k: hs[k] → to[k] (stance) → hs[k+1] (swing).
    n = min(len(hs) - 1, len(to))
    if n < 1:
        return contact, empty
    frame = pd.DataFrame(
        {
            "hs": hs[:n],
            "to": to[:n],
            "next_hs": hs[1 : n + 1],
            "stride": t_hs[1 : n + 1] - t_hs[:n],
            "stance": t_to[:n] - t_hs[:n],
            "swing": t_hs[1 : n + 1] - t_to[:n],
        }
    )
    return contact, frame[_valid_strides(frame)].reset_index(drop=True)


def _crossing_times(time: np.ndarray, x: np.ndarray, idx: np.ndarray, level: float) -> np.ndarray:
    """Time at which x crosses ``level`` between samples idx-1 and idx (linear interpolation)."""
    if len(idx) == 0:
        return np.empty(0)
    x0, x1 = x[idx - 1], x[idx]
    frac = np.clip((level - x0) / np.where(x1 != x0, x1 - x0, 1.0), 0.0, 1.0)
    return time[idx - 1] + frac * (time[idx] - time[idx - 1])


def _clean_contacts(hs, to, t_hs, t_to):
    """Pair each heel strike with the next toe off; merge short swings, drop short stances."""
    keep_to = to > hs[0] if len(hs) else np.zeros(len(to), dtype=bool)
    to, t_to = to[keep_to], t_to[keep_to]  # a toe off before any heel strike has no stance
    # Contacts alternate now: hs[0] < to[0] < hs[1] < to[1] ...
    i = 0
    hs, to, t_hs, t_to = list(hs), list(to), list(t_hs), list(t_to)
    while i + 1 < len(hs) and i < len(to):
        if t_hs[i + 1] - t_to[i] < MIN_SWING_S:  # bounce: one contact, not two
            del hs[i + 1], t_hs[i + 1], to[i], t_to[i]
        else:
            i += 1
    keep = [k for k in range(len(hs)) if k >= len(to) or t_to[k] - t_hs[k] >= MIN_STANCE_S]
    closed = [k for k in keep if k < len(to)]  # the last heel strike may have no toe off yet
    return (
        np.array([hs[k] for k in keep], dtype=int),
        np.array([to[k] for k in closed], dtype=int),
        np.array([t_hs[k] for k in keep], dtype=float),
        np.array([t_to[k] for k in closed], dtype=float),
    )


def _valid_strides(frame: pd.DataFrame) -> np.ndarray:
    """Plausible strides, without the walk's outliers (turn-arounds, stops) in any of the phases."""
    ok = frame["stride"].between(*STRIDE_RANGE_S).to_numpy()
    for column in ("stride", "stance", "swing"):
        x = frame[column].to_numpy()
        if ok.sum() < MIN_STRIDES:
            break
        med = np.median(x[ok])
        mad = MAD_TO_SD * np.median(np.abs(x[ok] - med))
        ok &= np.abs(x - med) <= OUTLIER_MAD_K * max(mad, MAD_FLOOR_S)
    return ok


def _mean_cv(x: np.ndarray) -> tuple[float, float]:
    if len(x) < MIN_STRIDES:
        return np.nan, np.nan
    mean = float(np.mean(x))
    return mean, float(np.std(x, ddof=1) / mean)


def _foot_features(
    foot: str, strides: pd.DataFrame, forces: np.ndarray, contact: np.ndarray, body_weight: float
) -> dict[str, float]:
    out: dict[str, float] = {f"stride_count_{foot}": float(len(strides))}
    for phase in ("stride", "stance", "swing"):
        out[f"{phase}_time_mean_{foot}"], out[f"{phase}_time_cv_{foot}"] = _mean_cv(strides[phase].to_numpy(float))
    if len(strides) < MIN_STRIDES:
        return out
    out[f"stance_ratio_{foot}"] = float(np.mean(strides["stance"] / strides["stride"]))
    total = forces[:, FORCE_CHANNELS.index(f"total_{foot}")]
    hs, to = strides["hs"].to_numpy(int), strides["to"].to_numpy(int)
    mid = (hs + to) // 2
    # Each stance split in halves: loading (heel) peak, push-off peak, and the mid-stance valley.
    seg = np.stack([hs, mid, to], axis=1).ravel()
    maxima = np.maximum.reduceat(total, seg)
    heel, push = maxima[0::3], maxima[1::3]
    q1, q3 = hs + (to - hs) // 4, hs + 3 * (to - hs) // 4
    valley = np.minimum.reduceat(total, np.stack([q1, q3], axis=1).ravel())[0::2]
    weight = body_weight if body_weight > 0 else np.nan
    out[f"force_peak_{foot}"] = float(np.mean(np.maximum(heel, push)) / weight)
    out[f"force_heel_peak_{foot}"] = float(np.mean(heel) / weight)
    out[f"force_push_peak_{foot}"] = float(np.mean(push) / weight)
    out[f"force_valley_{foot}"] = float(np.mean(valley) / weight)
    out.update(_phase_profile("force", foot, total / weight, hs, to))
    out.update(_cop_features(foot, strides, forces, total))
    return out


def _cop_features(foot: str, strides: pd.DataFrame, forces: np.ndarray, total: np.ndarray) -> dict[str, float]:
    """Centre of pressure (sensor-position weighted force) during the loaded part of valid stances."""
    names = _SENSORS[foot]
    sensor = forces[:, [FORCE_CHANNELS.index(s) for s in names]]
    xy = np.array([SENSOR_XY[s] for s in names], dtype=float)
    load = sensor.sum(axis=1)
    hs, to = strides["hs"].to_numpy(int), strides["to"].to_numpy(int)
    in_stance = np.zeros(len(total) + 1, dtype=int)
    np.add.at(in_stance, hs, 1)
    np.add.at(in_stance, to, -1)
    mask = (np.cumsum(in_stance)[:-1] > 0) & (
        load > COP_MIN_FORCE_FRACTION * np.percentile(total, RANGE_PERCENTILES[1])
    )
    if mask.sum() < MIN_STRIDES:
        return {}
    cop = (sensor[mask] @ xy) / load[mask, None]
    # Heel-to-toe excursion per step: range of COP y within each stance (loaded samples only).
    cop_y = np.full(len(total), np.nan)
    cop_y[mask] = cop[:, 1]
    ranges = [np.nanmax(cop_y[a:b]) - np.nanmin(cop_y[a:b]) for a, b in zip(hs, to, strict=False) if mask[a:b].any()]
    out = {
        f"cop_x_mean_{foot}": float(cop[:, 0].mean()),
        f"cop_x_std_{foot}": float(cop[:, 0].std()),
        f"cop_y_mean_{foot}": float(cop[:, 1].mean()),
        f"cop_y_std_{foot}": float(cop[:, 1].std()),
        f"cop_y_range_{foot}": float(np.mean(ranges)) if ranges else np.nan,
    }
    cop_x = np.full(len(total), np.nan)
    cop_x[mask] = cop[:, 0]
    for kind, values in (("cop_x", cop_x), ("cop_y", cop_y)):
        out.update(_phase_profile(f"{kind}", foot, values, hs, to))
    return out


def _phase_profile(kind: str, foot: str, values: np.ndarray, hs: np.ndarray, to: np.ndarray) -> dict[str, float]:
    """Mean over steps (``{kind}_p{k}``) and step-to-step SD (``_sd``) of values in each stance phase.

    NaN samples (unloaded insole) are left out of a phase's mean.
    """
    bounds = hs[:, None] + np.round(np.arange(STANCE_PHASES + 1) * (to - hs)[:, None] / STANCE_PHASES).astype(int)
    finite = np.isfinite(values)
    sums = np.add.reduceat(np.where(finite, values, 0.0), bounds.ravel())
    counts = np.add.reduceat(finite.astype(float), bounds.ravel())
    per_step = (sums / np.where(counts > 0, counts, np.nan)).reshape(len(hs), STANCE_PHASES + 1)[:, :STANCE_PHASES]
    out = {}
    with np.errstate(all="ignore"):  # a phase never loaded gives NaN, not a warning per walk
        for k in range(STANCE_PHASES):
            out[f"{kind}_p{k + 1}_{foot}"] = float(np.nanmean(per_step[:, k]))
            out[f"{kind}_p{k + 1}_sd_{foot}"] = float(np.nanstd(per_step[:, k]))
    return out


def _load_shares(foot: str, forces: np.ndarray) -> dict[str, float]:
    """Each sensor's share of the foot's load (mean over the walk): heel vs toe, medial vs lateral."""
    total = forces[:, FORCE_CHANNELS.index(f"total_{foot}")].mean()
    if total <= 0:
        return {}
    return {f"load_share_{s}": float(forces[:, FORCE_CHANNELS.index(s)].mean() / total) for s in _SENSORS[foot]}


def _bilateral_features(
    out: dict[str, float], strides: dict[str, pd.DataFrame], contact: dict[str, np.ndarray]
) -> dict[str, float]:
    res: dict[str, float] = {}
    both = contact["l"] & contact["r"]
    fractions = []
    for foot in _FEET:
        frame = strides[foot]
        if len(frame) >= MIN_STRIDES:
            counts = np.add.reduceat(both.astype(int), np.stack([frame["hs"], frame["next_hs"]], axis=1).ravel())[0::2]
            fractions.append(counts / (frame["next_hs"] - frame["hs"]).to_numpy())
    if len(fractions) == 2:
        res["double_support_ratio"] = float(np.mean(np.concatenate(fractions)))
    stride_l, stride_r = out["stride_time_mean_l"], out["stride_time_mean_r"]
    res["cadence"] = 120.0 / np.nanmean([stride_l, stride_r]) if np.isfinite([stride_l, stride_r]).any() else np.nan
    for phase in ("stride", "stance", "swing"):
        left, right = out[f"{phase}_time_mean_l"], out[f"{phase}_time_mean_r"]
        res[f"{phase}_time_asym"] = float(abs(np.log(left / right))) if left > 0 and right > 0 else np.nan
    return res


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
    frame = pd.DataFrame(forces, columns=list(FORCE_CHANNELS))
    frame.insert(0, "seq", seq)
    frame = frame.drop_duplicates("seq", keep="first")
    frame.insert(0, "window_index", frame["seq"] // window)
    grouped = frame.groupby("window_index", sort=True)
    stats = grouped[list(FORCE_CHANNELS)].mean()
    stats.insert(0, "last_seq", grouped["seq"].max())
    stats.insert(0, "first_seq", grouped["seq"].min())
    stats.insert(0, "sample_count", grouped.size())
    rows = []
    for index, row in stats.iterrows():
        count = int(row["sample_count"])
        rows.append(
            {
                "window_index": int(index),
                "sample_count": count,
                "first_seq": int(row["first_seq"]),
                "last_seq": int(row["last_seq"]),
                "partial": count < window,
                **{c: float(row[c]) for c in FORCE_CHANNELS},
            }
        )
    return rows
