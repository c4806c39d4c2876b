"""The per-walk windowing state machine on hand-drawn inputs (no Spark)."""

from __future__ import annotations

import numpy as np
import pytest

from gaitstream.gaitpdb import FORCE_CHANNELS
from model import features
from streaming.windowing import WIDTH, Refused, WalkState, WindowSettings, add_samples, check_record, flush

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
    assert feed(state, range(99)) == []  # 0..98: window 0 still open
    (row,) = windows(feed(state, [99]))  # 99 closes it
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
    assert state.frontier == 1 and not state.windows  # window 0 left the state
    assert state.late_samples == 50 and state.duplicate_samples == 50


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


def test_after_the_flush_late_samples_are_counted_never_windowed_and_the_walk_goes_on():
    state = WalkState()
    feed(state, range(150))
    flush(state, SETTINGS)  # window 1 emitted partial (50), detector passed it
    assert len(state.to_bytes()) < 4096  # an idle walk's state is small until it expires
    assert feed(state, [0, 10, 120, 160]) == []  # behind the frontier: no row, nothing replaced
    assert state.late_samples == 4
    assert windows(flush(state, SETTINGS)) == []  # nothing new to flush either
    (row,) = windows(feed(state, range(200, 300)))
    assert (row["window_index"], row["sample_count"], row["partial"]) == (2, 100, False)


def test_features_every_n_completed_windows():
    state = WalkState()
    kinds = [[r["kind"] for r in feed(state, range(start, start + 100))] for start in range(0, 400, 100)]
    # features_every=2: after windows 0+1 and 2+3
    assert kinds == [["window"], ["window", "features"], ["window"], ["window", "features"]]


def test_state_round_trips_through_bytes():
    state = WalkState()
    feed(state, range(130))
    restored = WalkState.from_bytes(state.to_bytes())
    assert np.array_equal(restored.windows[1].values, state.windows[1].values)
    assert restored.detector.samples == state.detector.samples == 100
    assert windows(flush(restored, SETTINGS))[0]["sample_count"] == 30


def test_matches_the_offline_reference():
    rng = np.random.default_rng(7)
    # Out of order within blocks of 3 windows (inside the open-window cap), with duplicates of
    # any earlier sample (behind the frontier they are late: counted, never windowed).
    seq = np.concatenate([rng.permutation(np.arange(a, min(a + 300, 1234))) for a in range(0, 1234, 300)])
    seq = np.insert(seq, rng.integers(300, len(seq), 300), rng.integers(0, 300, 300))
    forces = rng.uniform(0, 900, (1234, len(FORCE_CHANNELS)))[seq]
    values = np.column_stack([seq / 100, forces])
    state = WalkState()
    rows = add_samples(state, seq[:700], values[:700], seq[:700], SETTINGS)
    rows += add_samples(state, seq[700:], values[700:], seq[700:], SETTINGS) + flush(state, SETTINGS)
    got = sorted(windows(rows), key=lambda r: r["window_index"])
    expected = features.window_means(seq, forces)
    assert len(got) == len(expected) == 13
    for g, e in zip(got, expected, strict=True):
        for name in ("window_index", "sample_count", "first_seq", "last_seq", "partial"):
            assert g[name] == e[name]
        for channel in FORCE_CHANNELS:
            assert g[channel] == pytest.approx(e[channel], abs=1e-9)


# A lost sample (max_open_windows=6, so lag 3), seq 50 never arrives:
#
#   window    0 (99 of 100: seq 50 lost) | 1 full | 2 full | 3 full → 3 = frontier + lag: window 0 is forced
#   emitted   1, 2 when complete (rows go out at once) ... 0 partial (99) when forced, then 1-3 follow it
def test_a_lost_sample_forces_its_window_out_once_the_stream_moved_on():
    settings = WindowSettings(features_every=100, max_open_windows=6)
    state = WalkState()
    rows = feed(state, [s for s in range(300) if s != 50], settings)
    assert [r["window_index"] for r in windows(rows)] == [1, 2]
    assert sorted(state.windows) == [0, 1, 2] and state.frontier == 0
    rows = feed(state, range(300, 400), settings)
    assert [(r["window_index"], r["sample_count"], r["partial"]) for r in windows(rows)] == [
        (3, 100, False),
        (0, 99, True),
    ]
    assert state.frontier == 4 and not state.windows and state.detector.samples == 399
    assert feed(state, [50], settings) == [] and state.late_samples == 1


# Open-window cap (max_open_windows=3): sparse windows far ahead (within the jump limit) fill it;
# one more forces the oldest out, partial. Nothing is dropped: every sample is in one window.
def test_the_open_window_cap_forces_the_oldest_window_out_as_partial():
    settings = WindowSettings(features_every=100, max_open_windows=3)
    state = WalkState()
    feed(state, list(range(50)) + [1000, 2000], settings)
    assert sorted(state.windows) == [0, 10, 20]
    (forced,) = windows(feed(state, [3000], settings))
    assert (forced["window_index"], forced["sample_count"], forced["partial"]) == (0, 50, True)
    assert sorted(state.windows) == [10, 20, 30] and state.frontier == 1


def test_a_seq_jump_is_refused_without_allocating():
    state = WalkState()
    feed(state, range(100))
    before = state.to_bytes()
    with pytest.raises(Refused, match="seq_jump"):
        check_record(state, 10**8, SETTINGS)
    check_record(state, 100 + 100 * (SETTINGS.max_seq_jump_windows - 2), SETTINGS)  # just inside: fine
    assert state.to_bytes() == before


def test_state_size_does_not_grow_with_the_walk():
    """A synthetic walk 10x longer than the longest real one (JuPt18_01, 26,366 samples): state stays bounded."""
    rng = np.random.default_rng(3)
    state, sizes = WalkState(), []
    n, step = 270_000, 5_000
    t = np.arange(n) / 100
    phase = (t % 1.1) / 1.1
    load = np.where(phase < 0.6, 700.0, 5.0)
    for start in range(0, n, step):
        seq = np.arange(start, min(start + step, n))
        values = np.zeros((len(seq), WIDTH))
        values[:, 0] = t[seq]
        values[:, 1:] = rng.uniform(0, 50, (len(seq), len(FORCE_CHANNELS)))
        values[:, -2] = load[seq]
        values[:, -1] = np.roll(load, 55)[seq]
        add_samples(state, seq, values, seq, SETTINGS)
        sizes.append(len(state.to_bytes()))
    assert max(sizes) < 64 * 1024
    assert max(sizes[len(sizes) // 2 :]) <= max(sizes[: len(sizes) // 2]) * 1.05  # no upward trend
