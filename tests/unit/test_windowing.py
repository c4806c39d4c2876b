"""The per-walk windowing state machine on hand-drawn inputs (no Spark)."""
from __future__ import annotations

import numpy as np
import pytest

from gaitstream.gaitpdb import FORCE_CHANNELS
from streaming import features
from streaming.windowing import WIDTH, WalkState, WindowSettings, add_samples, flush

SETTINGS = WindowSettings(window_size=100, features_every=2)


def samples(seqs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sample ``s`` has time s/100 and channel c = s + c (easy to average by hand)."""
    seq = np.asarray(list(seqs), dtype=np.int64)
    values = np.zeros((len(seq), WIDTH))
    values[:, 0] = seq / 100
    values[:, 1:] = seq[:, None] + np.arange(len(FORCE_CHANNELS))[None, :]
    return seq, values, 1_000 + seq


def feed(state, seqs, settings=SETTINGS):
    return add_samples(state, *samples(seqs), settings)


def windows(rows):
    return [r for r in rows if r["kind"] == "window"]


def test_first_window_is_seq_0_to_99_exactly_100_samples():
    state = WalkState()
    assert feed(state, range(99)) == []            # 0..98: window 0 still open
    (row,) = windows(feed(state, [99]))            # 99 closes it
    assert (row["window_index"], row["sample_count"], row["first_seq"], row["last_seq"]) == (0, 100, 0, 99)
    assert not row["partial"]
    assert row["l1"] == pytest.approx(49.5) and row["total_r"] == pytest.approx(49.5 + 17)
    assert (row["first_time"], row["last_time"], row["max_sent_at_ms"]) == (0.0, 0.99, 1_099)


def test_duplicates_are_ignored_and_nothing_is_emitted_twice():
    state = WalkState()
    #  batch 1: 0..99 and 0..49 again        → window 0 once
    #  batch 2: 50..99 again (all duplicates) → nothing
    rows = feed(state, list(range(100)) + list(range(50)))
    assert [r["window_index"] for r in windows(rows)] == [0]
    assert windows(rows)[0]["sample_count"] == 100
    assert feed(state, range(50, 100)) == []
    assert int(state.present.sum()) == 100


def test_out_of_order_within_a_window_gives_the_in_order_result():
    shuffled = np.random.default_rng(1).permutation(200)
    a, b = WalkState(), WalkState()
    rows_a = feed(a, shuffled[:120]) + feed(a, shuffled[120:])
    rows_b = feed(b, range(200))
    key = lambda r: r["window_index"]  # noqa: E731
    assert sorted(windows(rows_a), key=key) == sorted(windows(rows_b), key=key)


def test_idle_flush_emits_the_partial_last_window_and_final_features():
    state = WalkState()
    #  seq 0 ...... 99 | 100 ..... 199 | 200 .. 234   (idle)
    #      window 0    |   window 1    | window 2: partial, 35 samples
    rows = feed(state, range(235))
    assert [r["window_index"] for r in windows(rows)] == [0, 1]
    flushed = flush(state, SETTINGS)
    (last,) = windows(flushed)
    assert (last["window_index"], last["sample_count"], last["partial"]) == (2, 35, True)
    assert last["l1"] == pytest.approx(np.mean(np.arange(200, 235)))
    (final,) = [r for r in flushed if r["kind"] == "features"]
    assert final["final"] and final["samples"] == 235
    assert set(final["features"]) <= set(features.FEATURE_NAMES)
    assert all(np.isfinite(v) for v in final["features"].values())  # not computable yet = absent


def test_after_the_flush_a_duplicate_changes_nothing_and_the_rest_completes_the_window():
    state = WalkState()
    feed(state, range(150))
    flush(state, SETTINGS)                        # window 1 emitted partial (50)
    assert feed(state, [0, 10, 120]) == []        # duplicates: no row, full window 0 stays full
    assert windows(flush(state, SETTINGS)) == []  # nothing new to flush either
    (row,) = windows(feed(state, range(150, 200)))
    assert (row["window_index"], row["sample_count"], row["partial"]) == (1, 100, False)


def test_features_every_n_completed_windows():
    state = WalkState()
    kinds = [[r["kind"] for r in feed(state, range(start, start + 100))] for start in range(0, 400, 100)]
    # features_every=2: after windows 0+1 and 2+3
    assert kinds == [["window"], ["window", "features"], ["window"], ["window", "features"]]


def test_state_round_trips_through_bytes():
    state = WalkState()
    feed(state, range(130))
    restored = WalkState.from_bytes(state.to_bytes())
    assert windows(flush(restored, SETTINGS))[0]["sample_count"] == 30
    assert np.array_equal(restored.samples, state.samples)


def test_matches_the_offline_reference():
    rng = np.random.default_rng(7)
    seq = np.concatenate([np.arange(1234), rng.integers(0, 1234, 300)])  # with duplicates
    seq = seq[rng.permutation(len(seq))]
    forces = rng.uniform(0, 900, (1234, len(FORCE_CHANNELS)))[seq]
    values = np.column_stack([seq / 100, forces])
    state = WalkState()
    rows = add_samples(state, seq[:700], values[:700], seq[:700], SETTINGS)
    rows += add_samples(state, seq[700:], values[700:], seq[700:], SETTINGS) + flush(state, SETTINGS)
    got = sorted(windows(rows), key=lambda r: r["window_index"])
    expected = features.window_means(seq, forces)
    assert len(got) == len(expected) == 13
    for g, e in zip(got, expected):
        for name in ("window_index", "sample_count", "first_seq", "last_seq", "partial"):
            assert g[name] == e[name]
        for channel in FORCE_CHANNELS:
            assert g[channel] == pytest.approx(e[channel], abs=1e-9)
