"""Fill a keyspace's streaming tables offline from the data-set files, with the stream's own functions.

The API and dashboard tests and the API benchmarks use it to fill a keyspace without running the job:
rows are computed by ``model.features.window_means`` / ``gait_features`` (what the stream
computes) and written with prepared statements, concurrently.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from gaitstream.gaitpdb import FORCE_CHANNELS, WalkRef, read_walk
from model.features import FEATURE_VERSION, gait_features, window_means
from streaming.schema import FEATURES_TABLE, WINDOWS_TABLE

CONCURRENCY = 64


def walk_rows(ref: WalkRef) -> tuple[tuple, list[tuple]]:
    """The ``walk_features`` row and the ``windows`` rows of one walk (sample index = sequence number)."""
    walk = read_walk(ref)
    features = {k: v for k, v in gait_features(walk.time, walk.forces).items() if math.isfinite(v)}
    feature_row = (ref.subject_id, ref.walk_id, ref.study, len(walk), True, FEATURE_VERSION, features)
    seq = np.arange(len(walk))
    window_rows = []
    for w in window_means(seq, walk.forces):
        lo, hi = w["first_seq"], w["last_seq"]
        window_rows.append(
            (
                ref.subject_id,
                ref.walk_id,
                w["window_index"],
                ref.study,
                w["sample_count"],
                w["partial"],
                lo,
                hi,
                float(walk.time[lo]),
                float(walk.time[hi]),
                *(w[c] for c in FORCE_CHANNELS),
            )
        )
    return feature_row, window_rows


def seed_keyspace(
    session, keyspace: str, refs: Iterable[WalkRef], *, windows: bool = True, processes: int = 2
) -> dict[str, int]:
    """Insert the rows of ``refs`` into ``keyspace`` (created beforehand); returns row counts."""
    from cassandra.concurrent import execute_concurrent_with_args

    refs = list(refs)
    with ProcessPoolExecutor(max_workers=processes) as pool:
        results = list(pool.map(walk_rows, refs, chunksize=4))
    insert_walk = session.prepare(
        f"INSERT INTO {keyspace}.{FEATURES_TABLE} "
        "(subject_id, walk_id, study, samples, final, feature_version, features) VALUES (?, ?, ?, ?, ?, ?, ?)"
    )
    walk_params = [feature_row for feature_row, _ in results]
    _run(execute_concurrent_with_args(session, insert_walk, walk_params, concurrency=CONCURRENCY))
    window_params = [row for _, rows in results for row in rows] if windows else []
    if window_params:
        columns = (
            "subject_id, walk_id, window_index, study, sample_count, partial, first_seq, last_seq, "
            "first_time, last_time, " + ", ".join(FORCE_CHANNELS)
        )
        insert_window = session.prepare(
            f"INSERT INTO {keyspace}.{WINDOWS_TABLE} ({columns}) VALUES ({', '.join('?' * len(columns.split(',')))})"
        )
        _run(execute_concurrent_with_args(session, insert_window, window_params, concurrency=CONCURRENCY))
    return {"walks": len(walk_params), "windows": len(window_params)}


def _run(results) -> None:
    for ok, outcome in results:
        if not ok:
            raise outcome


def main(argv: list[str] | None = None) -> int:
    """``python -m streaming.seed [--keyspace K] [--no-windows]``: seed the configured keyspace from the data set."""
    import argparse
    import time

    from gaitstream import clients, config, gaitpdb
    from streaming import schema

    parser = argparse.ArgumentParser(prog="python -m streaming.seed", description=main.__doc__)
    parser.add_argument("--keyspace")
    parser.add_argument("--no-windows", action="store_true")
    args = parser.parse_args(argv)
    cfg = config.load()
    keyspace = schema.identifier(args.keyspace or cfg.cassandra.keyspace)
    refs, _missing = gaitpdb.list_walks(cfg.path("data.gaitpdb_dir"))
    started = time.perf_counter()
    cluster, session = clients.cassandra(cfg, request_timeout=60)
    try:
        schema.create(cfg, keyspace, session=session)
        counts = seed_keyspace(session, keyspace, refs, windows=not args.no_windows)
    finally:
        cluster.shutdown()
    print(
        f"seeded {keyspace}: {counts['walks']} walks, {counts['windows']} windows "
        f"in {time.perf_counter() - started:.1f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
