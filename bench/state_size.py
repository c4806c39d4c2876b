"""Per-walk state size, new design beside the previous one (every sample kept), same run.

Feeds walks through the stateful function's own path (payload bytes → ``stateful.ingest`` →
state bytes, as Spark's state store keeps them) in one-second micro-batches of 10-sample
records: the longest real walk and a synthetic walk of 360,000 samples (one hour at 100 Hz,
the longest real walk repeated with continuous time). The previous design is fed the same
samples in larger steps (its state is every sample, so its size depends only on the count).
Then checks the incremental features on all walks: any chunking and order within the open
windows gives the offline features to 1e-9.

Last line: ``state bytes per walk: max N`` (N = the new design's maximum over both walks).
Run: var/venv/bin/python bench/state_size.py [--skip-invariance]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bench.baseline_v1 import windowing as windowing_v1  # noqa: E402
from bridge import payload  # noqa: E402
from gaitstream import config as gs_config  # noqa: E402
from gaitstream import gaitpdb  # noqa: E402
from model import features  # noqa: E402
from streaming import stateful  # noqa: E402
from streaming.decode import Limits  # noqa: E402
from streaming.windowing import WalkState, WindowSettings  # noqa: E402

RECORD_SAMPLES = 10  # replay.batch_size
BATCH_SAMPLES = 100  # one second at 100 Hz: one micro-batch of a real-time walk
SYNTHETIC_SAMPLES = 360_000


def longest_walk(folder: Path) -> gaitpdb.Walk:
    refs, _missing = gaitpdb.list_walks(folder)
    walks = [gaitpdb.read_walk(ref) for ref in refs]
    return max(walks, key=len)


def synthetic(walk: gaitpdb.Walk, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The walk repeated to n samples, time continuing at 100 Hz."""
    reps = -(-n // len(walk))
    forces = np.tile(walk.forces, (reps, 1))[:n]
    return np.arange(n) / gaitpdb.SAMPLE_RATE_HZ, forces


def records(subject: str, walk_id: str, time_s: np.ndarray, forces: np.ndarray):
    """Payload bytes of RECORD_SAMPLES samples each, as the bridge puts them in Kafka."""
    values = np.column_stack([time_s, forces])
    for seq in range(0, len(values), RECORD_SAMPLES):
        chunk = values[seq : seq + RECORD_SAMPLES]
        yield payload.encode(
            payload.SampleBatch(
                v=1,
                study="Si",
                subject_id=subject,
                walk_id=walk_id,
                seq=seq,
                sent_at_ms=1_764_000_000_000,
                samples=chunk.tolist(),
            )
        )


def new_design(name: str, time_s: np.ndarray, forces: np.ndarray, settings: WindowSettings) -> tuple[int, float]:
    """Max state bytes over the walk (after every micro-batch) and µs per sample."""
    import pandas as pd

    key = f"{name}/{name}_01"
    raw = list(records(name, f"{name}_01", time_s, forces))
    per_batch = BATCH_SAMPLES // RECORD_SAMPLES
    state, largest, started = WalkState().to_bytes(), 0, time.perf_counter()
    for start in tqdm(
        range(0, len(raw), per_batch), desc=f"new  {name}", unit="batch", leave=False, disable=not sys.stderr.isatty()
    ):
        chunk = raw[start : start + per_batch]
        frame = pd.DataFrame({"key": key, "value": chunk, "partition": 0, "offset": 0, "kafka_ms": 0})
        walk = WalkState.from_bytes(state)
        stateful.ingest(walk, key, frame, settings, Limits())
        state = walk.to_bytes()
        largest = max(largest, len(state))
    return largest, (time.perf_counter() - started) / len(time_s) * 1e6


def old_design(time_s: np.ndarray, forces: np.ndarray) -> int:
    """State bytes of the previous design at the end of the walk (it only grows)."""
    settings = windowing_v1.WindowSettings(features_every=10**9, max_walk_samples=len(time_s) + 1)
    state = windowing_v1.WalkState()
    values = np.column_stack([time_s, forces])
    step = 20_000
    for start in range(0, len(values), step):
        seq = np.arange(start, min(start + step, len(values)))
        windowing_v1.add_samples(state, seq, values[seq], seq, settings)
    return len(state.to_bytes())


def invariance(folder: Path, settings: WindowSettings) -> tuple[int, int, float]:
    """All walks: random chunking, shuffles inside 3 windows, resent duplicates → offline features."""
    from tests.unit.test_features_incremental import stream

    refs, _missing = gaitpdb.list_walks(folder)
    equal, worst = 0, 0.0
    for ref in tqdm(refs, desc="invariance", unit="walk", leave=False, disable=not sys.stderr.isatty()):
        walk = gaitpdb.read_walk(ref)
        rows = stream(walk, np.random.default_rng(len(walk)))
        final = [r for r in rows if r["kind"] == "features" and r["final"]][0]["features"]
        offline = {k: v for k, v in features.gait_features(walk.time, walk.forces).items() if math.isfinite(v)}
        diff = (
            max((abs(final[k] - v) / max(1.0, abs(v)) for k, v in offline.items()), default=0.0)
            if set(final) == set(offline)
            else math.inf
        )
        worst = max(worst, diff)
        equal += diff <= 1e-9
    return equal, len(refs), worst


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-invariance", action="store_true", help="skip the all-walks chunking check")
    args = parser.parse_args()
    cfg = gs_config.load()
    from streaming.job import window_settings

    settings = window_settings(cfg)
    folder = cfg.path("data.gaitpdb_dir")
    walk = longest_walk(folder)
    cases = {
        f"longest real walk ({walk.ref.walk_id}, {len(walk):,} samples)": (walk.time, walk.forces),
        f"synthetic walk ({SYNTHETIC_SAMPLES:,} samples)": synthetic(walk, SYNTHETIC_SAMPLES),
    }
    print(f"{'walk':<46}{'previous design':>18}{'new design':>14}{'new µs/sample':>15}")
    largest = 0
    for name, (time_s, forces) in cases.items():
        old = old_design(time_s, forces)
        new, cost = new_design("SiCo99" if "synthetic" in name else "SiCo98", time_s, forces, settings)
        largest = max(largest, new)
        print(f"{name:<46}{old:>16,} B{new:>12,} B{cost:>15.1f}", flush=True)
    if not args.skip_invariance:
        equal, total, worst = invariance(folder, settings)
        print(
            f"chunking invariance: {equal}/{total} walks give the offline features to 1e-9 "
            f"(largest relative difference {worst:.1e})"
        )
    print(f"state bytes per walk: max {largest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
