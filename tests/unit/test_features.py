"""model.features on synthetic walks whose gait parameters are known by construction."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gaitstream.gaitpdb import FORCE_CHANNELS
from model.features import FEATURE_NAMES, gait_features, window_means

RATE = 100
LOAD_N = 800.0
STRIDE_SAMPLES, STANCE_SAMPLES = 110, 66  # 1.1 s stride, 60 % stance


def synthetic_walk(
    heel_strikes: dict[str, list[int]], n: int, stance: int = STANCE_SAMPLES
) -> tuple[np.ndarray, np.ndarray]:
    """Rectangular stances of LOAD_N from each heel strike (a sample index) for ``stance`` samples.

    Within a stance the heel sensor (x1) carries the load for the first half, the toe sensor (x8)
    for the second half, so the centre of pressure jumps from y=-800 to y=+800.
    """
    forces = np.zeros((n, len(FORCE_CHANNELS)))
    for foot, starts in heel_strikes.items():
        heel, toe, total = (FORCE_CHANNELS.index(c) for c in (f"{foot}1", f"{foot}8", f"total_{foot}"))
        for start in starts:
            half = start + stance // 2
            forces[start:half, heel] = LOAD_N
            forces[half : start + stance, toe] = LOAD_N
            forces[start : start + stance, total] = LOAD_N
    return np.arange(n) / RATE, forces


def periodic(n_strides: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Left heel strikes every 110 samples from 20; right ones half a stride later."""
    left = [20 + k * STRIDE_SAMPLES for k in range(n_strides)]
    right = [s + STRIDE_SAMPLES // 2 for s in left]
    return synthetic_walk({"l": left, "r": right}, n=left[-1] + 2 * STRIDE_SAMPLES)


def test_periodic_walk_has_the_constructed_timing():
    feats = gait_features(*periodic())
    assert tuple(feats) == FEATURE_NAMES
    for foot in ("l", "r"):
        assert feats[f"stride_time_mean_{foot}"] == pytest.approx(1.1, abs=1e-9)
        assert feats[f"stride_time_cv_{foot}"] < 1e-6
        assert feats[f"stance_time_cv_{foot}"] < 1e-6
        # Thresholds sit at 20 % (rise) and 10 % (fall) of 800 N; a 0→800 step between two samples
        # is crossed 0.2 and 0.9 of the way in, so the measured stance is one sample longer than
        # 0.65 s less 0.008 s: 0.667 s, and the ratio 0.667 / 1.1 = 0.606.
        assert feats[f"stance_time_mean_{foot}"] == pytest.approx(0.667, abs=1e-6)
        assert feats[f"swing_time_mean_{foot}"] == pytest.approx(1.1 - 0.667, abs=1e-6)
        assert feats[f"stance_ratio_{foot}"] == pytest.approx(0.6, abs=0.01)
        assert feats[f"cop_y_p1_{foot}"] == pytest.approx(-800)  # heel first
        assert feats[f"cop_y_p5_{foot}"] == pytest.approx(800)  # toe last
        assert feats[f"load_share_{foot}1"] == pytest.approx(0.5, abs=0.01)
        assert feats[f"load_share_{foot}3"] == 0.0
        # Body weight proxy = mean of both feet's totals = 2 * 0.6 * 800 N (over whole strides).
        assert feats[f"force_peak_{foot}"] == pytest.approx(800 / 960, rel=0.03)
    # Steps per minute: two steps per 1.1 s stride.
    assert feats["cadence"] == pytest.approx(120 / 1.1)
    # Each foot's stance overlaps the other's by 11 samples at both ends: 22 / 110 = 0.2, except
    # the very first left stride (no right stance before it): 11 / 110. 19 strides per foot.
    assert feats["double_support_ratio"] == pytest.approx((37 * 0.2 + 0.1) / 38, abs=1e-9)
    assert feats["swing_time_asym"] == pytest.approx(0.0, abs=1e-9)
    assert feats["stride_count_l"] >= 17


def test_jittered_strides_have_positive_cv():
    rng = np.random.default_rng(7)
    left = list(20 + np.cumsum(rng.integers(100, 121, size=30)))  # 1.0 .. 1.2 s strides
    right = [s + 55 for s in left]
    feats = gait_features(*synthetic_walk({"l": left, "r": right}, n=left[-1] + 300))
    assert feats["stride_time_mean_l"] == pytest.approx(1.1, abs=0.03)
    assert 0.02 < feats["stride_time_cv_l"] < 0.1  # uniform ±0.1 s: SD ≈ 0.06 s, CV ≈ 0.055


def test_a_stop_mid_walk_is_rejected_as_an_outlier_stride():
    left = [20 + k * STRIDE_SAMPLES for k in range(10)]
    left += [left[-1] + 400 + k * STRIDE_SAMPLES for k in range(10)]  # a 4 s stride (standing still)
    right = [s + 55 for s in left]
    feats = gait_features(*synthetic_walk({"l": left, "r": right}, n=left[-1] + 300))
    assert feats["stride_time_mean_l"] == pytest.approx(1.1, abs=1e-9)
    assert feats["stride_time_cv_l"] < 1e-6


def test_sensor_bounce_inside_a_stance_is_not_a_step():
    time, forces = periodic()
    total = FORCE_CHANNELS.index("total_l")
    forces[50:53, total] = 0.0  # a 30 ms dropout inside the second stance of the left foot
    assert gait_features(time, forces)["stride_time_cv_l"] < 1e-6


# ---------------------------------------------------------------------------------------------
# Feature version 3: bilateral coordination, step time, RMSSD, force-curve shape, regions, COP velocity.


def test_anti_phase_walk_has_phase_180_and_no_coordination_deficit():
    # periodic(): the right heel strikes exactly half a left stride (55 of 110 samples) after the left
    # one, and vice versa: phi = 180 deg every stride, phi_ABS = 0, phi_CV = 0, PCI = 0 (Plotnik 2007).
    feats = gait_features(*periodic())
    assert feats["phase_abs"] == pytest.approx(0.0, abs=1e-6)
    assert feats["phase_cv"] == pytest.approx(0.0, abs=1e-4)
    assert feats["phase_coordination_index"] == pytest.approx(0.0, abs=1e-4)
    for foot in ("l", "r"):
        assert feats[f"step_time_mean_{foot}"] == pytest.approx(0.55, abs=1e-9)
        assert feats[f"step_time_cv_{foot}"] < 1e-6
        assert feats[f"stride_time_rmssd_{foot}"] == pytest.approx(0.0, abs=1e-9)
    assert feats["step_time_asym"] == pytest.approx(0.0, abs=1e-9)


def test_limping_walk_phase_step_times_and_pci():
    # The right foot lands 44 samples (40 %) after the left and stands shorter (60 vs 66 samples),
    # so its swing is the longer one and it is the reference (Plotnik 2007). Within each right
    # stride (110 samples) the left heel strikes 66 samples in:
    #
    #   left  HS |------66------|                      |  (next left HS)
    #   right HS        |---44--|------66------|  ...
    #
    #   phi = 360 * 66 / 110 = 216 deg, phi_ABS = 36, P_phi_ABS = 20 %, phi_CV = 0 → PCI = 20 %.
    #   step_l (right HS → left HS) = 0.66 s, step_r (left HS → right HS) = 0.44 s.
    left = [20 + k * STRIDE_SAMPLES for k in range(20)]
    right = [s + 44 for s in left]
    time, forces = synthetic_walk({"l": left}, n=left[-1] + 2 * STRIDE_SAMPLES)
    _, right_forces = synthetic_walk({"r": right}, n=len(time), stance=60)
    forces += right_forces
    feats = gait_features(time, forces)
    assert feats["swing_time_mean_r"] > feats["swing_time_mean_l"]
    assert feats["phase_abs"] == pytest.approx(36.0, abs=1e-6)
    assert feats["phase_cv"] == pytest.approx(0.0, abs=1e-4)
    assert feats["phase_coordination_index"] == pytest.approx(20.0, abs=1e-4)
    assert feats["step_time_mean_l"] == pytest.approx(0.66, abs=1e-9)
    assert feats["step_time_mean_r"] == pytest.approx(0.44, abs=1e-9)
    assert feats["step_time_asym"] == pytest.approx(math.log(1.5), abs=1e-9)


def test_jittered_phase_gives_phase_abs_and_cv():
    # Right heel strikes alternate 50 and 60 samples after the left ones (strides of 110): with the
    # left foot as reference (shorter stance, longer swing) phi alternates 180 -/+ 360*5/110 deg,
    # so phi_ABS = 16.36 deg and phi_CV = 100 * SD / 180 with SD ~ 16.36 (alternating signs).
    left = [20 + k * STRIDE_SAMPLES for k in range(30)]
    right = [s + (50 if k % 2 else 60) for k, s in enumerate(left)]
    time, forces = synthetic_walk({"l": left}, n=left[-1] + 2 * STRIDE_SAMPLES, stance=60)
    forces += synthetic_walk({"r": right}, n=len(time))[1]
    feats = gait_features(time, forces)
    deviation = 360 * 5 / 110
    assert feats["phase_abs"] == pytest.approx(deviation, abs=1e-6)
    assert feats["phase_cv"] == pytest.approx(100 * deviation / 180, rel=0.05)
    assert feats["phase_coordination_index"] == pytest.approx(feats["phase_cv"] + 100 * deviation / 180, abs=1e-9)


def test_stride_rmssd_is_the_rms_of_successive_stride_differences():
    # Strides cycle 1.0, 1.1, 1.2 s: successive differences +0.1, +0.1, -0.2 s.
    cycle = [100, 110, 120]
    strides = [cycle[k % 3] for k in range(30)]
    left = list(20 + np.concatenate([[0], np.cumsum(strides)]))
    right = [s + 50 for s in left]
    feats = gait_features(*synthetic_walk({"l": left, "r": right}, n=left[-1] + 300, stance=50))
    assert feats["stride_count_l"] == len(strides)
    expected = math.sqrt(np.mean(np.diff(np.array(strides) / RATE) ** 2))
    assert feats["stride_time_rmssd_l"] == pytest.approx(expected, abs=1e-9)


def test_stride_rmssd_skips_the_pair_around_a_rejected_stride():
    # A 4 s stop between two runs of 1.1 s strides: the stop is rejected, and the differences
    # 4.0 - 1.1 and 1.1 - 4.0 are never counted (the chain restarts after it): RMSSD stays 0.
    left = [20 + k * STRIDE_SAMPLES for k in range(10)]
    left += [left[-1] + 400 + k * STRIDE_SAMPLES for k in range(10)]
    right = [s + 55 for s in left]
    feats = gait_features(*synthetic_walk({"l": left, "r": right}, n=left[-1] + 300))
    assert feats["stride_time_rmssd_l"] == pytest.approx(0.0, abs=1e-9)
    assert feats["phase_abs"] == pytest.approx(0.0, abs=1e-6)


def shaped_walk(n_strides: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """periodic() timing with a drawn double-hump force curve and a fixed sensor split.

    Each stance (66 samples) starts with a step to 400 N, rises to the first peak of 880 N 16
    samples after the heel strike, falls to a 600 N valley at 33 and rises to 880 N at 50, then
    falls to 0 at 66. Every sample's load is split over the sensors 0.1 (1, 2, 3, 4, 5, 8) and
    0.2 (6, 7): heel (1-3) 0.3, forefoot (6-8) 0.5 of the foot's load.
    """
    knots_x, knots_y = [0, 16, 33, 50, 66], [400.0, 880.0, 600.0, 880.0, 0.0]
    profile = np.interp(np.arange(66), knots_x, knots_y)
    split = np.array([0.1, 0.1, 0.1, 0.1, 0.1, 0.2, 0.2, 0.1])
    left = [20 + k * STRIDE_SAMPLES for k in range(n_strides)]
    heel_strikes = {"l": left, "r": [s + STRIDE_SAMPLES // 2 for s in left]}
    n = left[-1] + 2 * STRIDE_SAMPLES
    forces = np.zeros((n, len(FORCE_CHANNELS)))
    for foot, starts in heel_strikes.items():
        first = FORCE_CHANNELS.index(f"{foot}1")
        for start in starts:
            forces[start : start + 66, first : first + 8] = profile[:, None] * split
            forces[start : start + 66, FORCE_CHANNELS.index(f"total_{foot}")] = profile
    return np.arange(n) / RATE, forces


def test_force_curve_shape_of_a_drawn_double_hump():
    feats = gait_features(*shaped_walk())
    for foot in ("l", "r"):
        stance = feats[f"stance_time_mean_{foot}"]
        # the heel strike is interpolated inside the sample before the step: up to one sample early
        time_to_peak = feats[f"force_time_to_peak_{foot}"] * stance
        assert 0.16 <= time_to_peak <= 0.17 + 1e-9
        assert feats[f"force_valley_ratio_{foot}"] == pytest.approx(600 / 880, abs=1e-12)
        # loading rate = first peak / time to it / body weight (ratio of means: equal up to rounding here)
        assert feats[f"force_loading_rate_{foot}"] == pytest.approx(
            feats[f"force_heel_peak_{foot}"] / time_to_peak, rel=1e-6
        )
        assert feats[f"heel_load_share_{foot}"] == pytest.approx(0.3, abs=1e-12)
        assert feats[f"forefoot_load_share_{foot}"] == pytest.approx(0.5, abs=1e-12)


def test_forward_cop_velocity_over_stance():
    # periodic(): the COP moves from the heel sensor (y = -800) to the toe sensor (y = +800)
    # between the first and the last loaded sample of the stance, 65 samples apart.
    feats = gait_features(*periodic())
    for foot in ("l", "r"):
        assert feats[f"cop_y_velocity_{foot}"] == pytest.approx(1600 / 0.65, rel=1e-9)


@pytest.mark.parametrize("n", [0, 1, 2, 50, 150, 300])
def test_short_input_gives_nan_not_an_exception(n):
    time, forces = periodic()
    feats = gait_features(time[:n], forces[:n])
    assert tuple(feats) == FEATURE_NAMES
    assert math.isnan(feats["stride_time_mean_l"]) and math.isnan(feats["stride_time_cv_r"])
    assert math.isnan(feats["double_support_ratio"]) and math.isnan(feats["cadence"])


def test_standing_still_or_no_load_gives_nan():
    n = 1000
    for level in (0.0, 500.0):
        forces = np.full((n, len(FORCE_CHANNELS)), level / 8)
        forces[:, -2:] = level
        feats = gait_features(np.arange(n) / RATE, forces)
        assert math.isnan(feats["stride_time_mean_l"]) and math.isnan(feats["cadence"])


def test_partial_walk_gets_features_once_enough_strides_arrived():
    time, forces = periodic()
    assert math.isfinite(gait_features(time[:800], forces[:800])["stride_time_mean_l"])


def test_feature_names_are_unique_snake_case():
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)
    assert all(name.replace("_", "").isalnum() and name == name.lower() for name in FEATURE_NAMES)


# window_means, window=4. Samples arrive out of order, seq 3 twice (the second copy, value 999,
# is ignored), seq 6-8 never arrive:
#
#   arrival:   5   0   1   2   3   3'  4   9
#   window:    1   0   0   0   0   -   1   2
#
#   window 0: seq 0 1 2 3 → values 0 10 20 30 → mean 15, 4 samples, complete
#   window 1: seq 4 5     → values 40 50     → mean 45, 2 samples, partial
#   window 2: seq 9       → value  90        → mean 90, 1 sample,  partial
def test_window_means_dedups_sorts_and_flags_partial_windows():
    seq = np.array([5, 0, 1, 2, 3, 3, 4, 9])
    values = np.array([50, 0, 10, 20, 30, 999, 40, 90], dtype=float)
    forces = np.repeat(values[:, None], len(FORCE_CHANNELS), axis=1)
    forces[:, FORCE_CHANNELS.index("total_r")] *= 2
    windows = window_means(seq, forces, window=4)
    expected = [(0, 4, 0, 3, False, 15.0), (1, 2, 4, 5, True, 45.0), (2, 1, 9, 9, True, 90.0)]
    assert len(windows) == len(expected)
    for got, (index, count, first, last, partial, mean) in zip(windows, expected, strict=True):
        assert (got["window_index"], got["sample_count"], got["first_seq"], got["last_seq"], got["partial"]) == (
            index,
            count,
            first,
            last,
            partial,
        )
        assert got["l1"] == pytest.approx(mean) and got["total_l"] == pytest.approx(mean)
        assert got["total_r"] == pytest.approx(2 * mean)
        assert set(FORCE_CHANNELS) <= set(got)


def test_window_means_default_window_is_100_samples():
    n = 250
    forces = np.tile(np.arange(n, dtype=float)[:, None], (1, len(FORCE_CHANNELS)))
    windows = window_means(np.arange(n), forces)
    assert [w["sample_count"] for w in windows] == [100, 100, 50]
    assert [w["partial"] for w in windows] == [False, False, True]
    assert windows[0]["first_seq"] == 0 and windows[0]["last_seq"] == 99
    assert windows[0]["r5"] == pytest.approx(49.5)


def test_window_means_rejects_mismatched_or_negative_input():
    with pytest.raises(ValueError):
        window_means(np.arange(3), np.zeros((2, len(FORCE_CHANNELS))))
    with pytest.raises(ValueError):
        window_means(np.array([-1]), np.zeros((1, len(FORCE_CHANNELS))))
    assert window_means(np.array([], dtype=int), np.zeros((0, len(FORCE_CHANNELS)))) == []
