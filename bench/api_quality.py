"""Quality and speed of the API's models on the full data set, side by side with the seed's.

1. Reads the streaming tables (``cassandra.keyspace``); if they hold fewer walks than the data set,
   seeds a bench keyspace offline with the stream's own functions (streaming.seed, ~1 min).
2. Runs the service's training function (what POST /retrain runs) for: the seed's model (KNN k=5 on
   window means), and the gait-feature families (forest, boosting, SVM, logistic regression; nested
   selection and calibration, usual walks only, one row per subject). Prints the seed's
   leaky number (random window split), then subject-wise per-subject accuracy/ROC-AUC, study held out,
   and the retrain time of each.
3. Starts `gaitstream api` on a free port over that keyspace and sends /diagnose requests at a fixed
   rate (default 2000 at 200 req/s, 127.0.0.1), printing p50/p99 latency.

The service's model is [api] default_family, fixed before looking at these numbers; the other rows
are for comparison (picking the best of them here would be selection on the test folds).
Run: var/venv/bin/python bench/api_quality.py [--requests 2000 --rate 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from api.data import CassandraStore  # noqa: E402
from api.runs import RunStore  # noqa: E402
from api.settings import ApiSettings  # noqa: E402
from api.training import TrainingParams, train  # noqa: E402
from gaitstream import (  # noqa: E402
    clients,  # noqa: E402
    config,
    gaitpdb,
)
from model.registry import Registry  # noqa: E402
from streaming import schema  # noqa: E402
from streaming.seed import seed_keyspace  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCH_KEYSPACE = "gaitstream_bench"
CANDIDATES = (
    ("knn", "windows", "seed model: KNN k=5, window means"),
    ("forest", "gait", "random forest, gait features"),
    ("gboost", "gait", "gradient boosting, gait features"),
    ("svm", "gait", "RBF SVM, gait features"),
    ("logreg", "gait", "logistic regression, gait features"),
)


def keyspace_with_data(cfg) -> str:
    """The configured keyspace if the stream filled it with every walk, else a seeded bench keyspace."""
    refs, _ = gaitpdb.list_walks(cfg.path("data.gaitpdb_dir"))
    for keyspace in (cfg.cassandra.keyspace, BENCH_KEYSPACE):
        store = CassandraStore(cfg, keyspace, 10)
        try:
            walks = store.walk_features()
            windows = store.windows()
            if walks["final"].fillna(False).sum() >= len(refs) and len(windows) > 100 * len(refs):
                return keyspace
        except Exception:
            pass
        finally:
            store.close()
    print(f"streaming tables incomplete: seeding {BENCH_KEYSPACE} offline from {len(refs)} walks ...", flush=True)
    cluster, session = clients.cassandra(cfg, request_timeout=60)
    try:
        schema.create(cfg, BENCH_KEYSPACE, session=session)
        seed_keyspace(session, BENCH_KEYSPACE, refs)
    finally:
        cluster.shutdown()
    return BENCH_KEYSPACE


def fmt(metrics: dict | None, key: str = "subjects") -> str:
    if not metrics:
        return f"{'-':>8}{'-':>8}"
    part = metrics[key]
    auc = part["roc_auc"]
    return f"{part['accuracy']:>8.3f}{(auc if auc is not None else float('nan')):>8.3f}"


async def load_test(url: str, bodies: list[dict], rate: float, count: int) -> tuple[list[float], int]:
    import httpx

    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(limits=limits, timeout=10) as client:
        started = time.perf_counter()

        async def one(i: int) -> None:
            nonlocal errors
            await asyncio.sleep(max(0.0, started + i / rate - time.perf_counter()))
            t0 = time.perf_counter()
            try:
                response = await client.post(url, json=bodies[i % len(bodies)])
                errors += response.status_code != 200
            except httpx.HTTPError:  # a reset connection counts as a failed request, with its latency
                errors += 1
            latencies.append(time.perf_counter() - t0)

        await asyncio.gather(*(one(i) for i in range(count)))
    return latencies, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=200.0)
    args = parser.parse_args()
    tag = uuid.uuid4().hex[:8]
    registry_dir = Path(tempfile.mkdtemp(prefix="gaitstream-bench-registry-"))
    base_cfg = config.load()
    keyspace = keyspace_with_data(base_cfg)
    env = {
        **os.environ,
        "GAITSTREAM_CASSANDRA_KEYSPACE": keyspace,
        "GAITSTREAM_MONGO_DATABASE": f"bench_{tag}",
        "GAITSTREAM_API_REGISTRY_DIR": str(registry_dir),
    }
    cfg = config.load(env=env)
    settings = ApiSettings.from_config(cfg)
    store = CassandraStore(cfg, keyspace, 10)
    client = clients.mongo(cfg, timeout=5)
    runs, registry = RunStore(client, settings.mongo_database, settings.runs_collection), Registry(registry_dir)
    results = {}
    try:
        for family, feature_set, _ in CANDIDATES:
            run_id = uuid.uuid4().hex
            params = TrainingParams(
                family, feature_set, "full", settings.seed, promote=(family == settings.default_family)
            )
            runs.create(run_id, {})
            results[family] = train(settings, store, runs, registry, run_id, params)
            results[family]["data"] = runs.get(run_id)["data"]
    finally:
        store.close()
    data = results["forest"]["data"]
    print(
        f"\nkeyspace {keyspace}: {data['walks']} usual walks ({data['walks_all_conditions']} in all), "
        f"{data['subjects']} subjects "
        f"({data['classes']['parkinsons']} PD, {data['classes']['control']} control), "
        f"{results['knn']['data']['rows']} full windows; {settings.cv_folds}-fold StratifiedGroupKFold by subject "
        f"x {settings.cv_repeats} repeats\n"
    )
    print(
        f"{'model':<40}{'leaky rows acc':>15}{'subject-wise per subject':>26}{'rows (window/walk)':>20}{'retrain':>9}"
    )
    print(f"{'':<40}{'(random split)':>15}{'acc':>10}{'AUC':>8}{'sd AUC':>8}{'acc':>12}{'AUC':>8}{'s':>9}")
    for family, feature_set, label in CANDIDATES:
        m = results[family]["metrics"]
        summary = m["subject_wise"]["summary"]
        marker = " *" if family == settings.default_family and feature_set == settings.default_feature_set else ""
        print(
            f"{label + marker:<40}{m['leaky_random_row_split']['rows']['accuracy']:>15.3f}"
            f"{summary['subjects']['accuracy']:>10.3f}{summary['subjects']['roc_auc']:>8.3f}{summary['subjects']['roc_auc_sd']:>8.3f}"
            f"{summary['rows']['accuracy']:>12.3f}{summary['rows']['roc_auc']:>8.3f}{results[family]['timings']['total_s']:>9.1f}"
        )
    print(
        "* the service's default model ([api] default_family/default_feature_set). "
        "Targets (issue 14, nested, per subject): AUC >= 0.93 pooled, >= 0.90 per held-out study, accuracy >= 0.88."
    )
    print("\nstudy held out (train on the other two studies; per-subject acc / AUC)")
    for family, _, label in CANDIDATES:
        held = results[family]["metrics"]["study_held_out"]
        print(f"{label:<40}" + "".join(f"  {s}: {fmt(held.get(s))}" for s in ("Ga", "Ju", "Si")))
    print(f"\nbias/variance (0-1 loss, {settings.bias_variance_rounds} rounds, one subject-wise split; rows)")
    for family, _, label in CANDIDATES:
        bv = results[family]["metrics"]["bias_variance"]
        print(f"{label:<40}  loss {bv['expected_loss']:.3f}  bias {bv['bias']:.3f}  variance {bv['variance']:.3f}")

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log_path = registry_dir / "api.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "api", "--port", str(port)],
            env=env,
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        import httpx

        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=2).json().get("status") == "ok":
                    break
            except (httpx.HTTPError, ValueError):
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit(f"API did not start:\n{log_path.read_text()[-2000:]}")
            time.sleep(0.3)
        refs, _ = gaitpdb.list_walks(cfg.path("data.gaitpdb_dir"))
        subjects = sorted({ref.subject_id for ref in refs})  # those with walks (demographics lists a few more)
        bodies = [{"subject_id": s} for s in subjects]
        latencies, errors = asyncio.run(load_test(f"{base}/diagnose", bodies, args.rate, args.requests))
        ms = np.array(latencies) * 1000
        print(
            f"\n/diagnose (subject_id -> Cassandra read + {settings.default_family} predict): {len(ms)} requests at "
            f"{args.rate:.0f} req/s: p50 {np.percentile(ms, 50):.1f} ms, p99 {np.percentile(ms, 99):.1f} ms, "
            f"max {ms.max():.1f} ms, non-200: {errors}"
        )
    finally:
        proc.terminate()
        proc.wait(30)
        client.drop_database(settings.mongo_database)
        client.close()


if __name__ == "__main__":
    main()
