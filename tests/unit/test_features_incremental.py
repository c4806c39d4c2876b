"""The streamed gait features equal the offline ones, whatever the chunking and arrival order.

Each real walk is fed to a :class:`~streaming.windowing.WalkState` in random chunks, with the
state round-tripped through its bytes between chunks (as Spark's state store does), samples
shuffled within blocks of three windows (inside the open-window cap) and 5 % resent duplicates; the
final features must equal :func:`model.features.gait_features` on the whole walk to 1e-9,
and every window the numpy mean of its samples to 1e-6. ``bench/state_size.py`` runs all 280.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest

from gaitstream import gaitpdb
from model import features
from streaming.windowing import WalkState, WindowSettings, add_samples, flush

DATA_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "gaitpdb"
SETTINGS = WindowSettings(features_every=5)


def _walks(count: int) -> list[gaitpdb.WalkRef]:
    refs, _missing = gaitpdb.list_walks(DATA_DIR)
    step = max(1, len(refs) // count)
    return refs[::step][:count]


def stream(walk: gaitpdb.Walk, rng: np.random.Generator) -> list[dict]:
    n = len(walk)
    seq = np.arange(n)
    values = np.column_stack([walk.time, walk.forces])
    order = np.concatenate([rng.permutation(np.arange(a, min(a + 300, n))) for a in range(0, n, 300)])
    # 5 % duplicates, each some time after its first copy (at-least-once resends)
    at = rng.integers(0, n, n // 20)
    order = np.insert(order, at, order[np.maximum(at - rng.integers(1, 2000, len(at)), 0)])
    state, rows, i = WalkState(), [], 0
    while i < len(order):
        chunk = order[i : i + int(rng.integers(1, 500))]
        i += len(chunk)
        state = WalkState.from_bytes(state.to_bytes())
        rows += add_samples(state, seq[chunk], values[chunk], seq[chunk], SETTINGS)
    return rows + flush(state, SETTINGS)


@pytest.mark.parametrize("ref", _walks(12), ids=lambda r: r.walk_id)
def test_streamed_features_and_windows_equal_the_offline_computation(ref):
    walk = gaitpdb.read_walk(ref)
    rows = stream(walk, np.random.default_rng(len(walk)))
    (final,) = [r for r in rows if r["kind"] == "features" and r["final"]]
    offline = {k: v for k, v in features.gait_features(walk.time, walk.forces).items() if math.isfinite(v)}
    assert final["samples"] == len(walk)
    assert set(final["features"]) == set(offline)
    assert len(offline) > 0.9 * len(features.FEATURE_NAMES)
    for name, expected in offline.items():
        assert final["features"][name] == pytest.approx(expected, rel=1e-9, abs=1e-9), name
    got = {r["window_index"]: r for r in rows if r["kind"] == "window"}
    reference = features.window_means(np.arange(len(walk)), walk.forces)
    assert sorted(got) == [w["window_index"] for w in reference]
    for expected in reference:
        window = got[expected["window_index"]]
        assert (window["sample_count"], window["partial"]) == (expected["sample_count"], expected["partial"])
        for channel in gaitpdb.FORCE_CHANNELS:
            assert window[channel] == pytest.approx(expected[channel], abs=1e-6)


def test_running_features_converge_to_the_final_ones():
    walk = gaitpdb.read_walk(_walks(1)[0])
    rows = stream(walk, np.random.default_rng(0))
    running = [r for r in rows if r["kind"] == "features" and not r["final"]]
    assert len(running) >= 10 and all(a["samples"] < b["samples"] for a, b in itertools.pairwise(running))
    final = rows[-1]["features"]
    assert running[-1]["features"]["stride_time_mean_l"] == pytest.approx(final["stride_time_mean_l"], rel=0.02)
