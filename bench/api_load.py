"""/diagnose under load, measured by a real load generator (locust, headless), beside the previous figures.

1. A bench keyspace with every walk's windows and features (seeded offline with the stream's own
   functions, ``streaming.seed``, the first time), the default model trained and promoted in a temporary
   registry, and every subject scored into ``subject_predictions`` by the streaming job's scorer
   (``streaming.predictions.LiveScorer``): what a running pipeline holds.
2. ``gaitstream api --workers N`` on a free port over it.
3. locust (FastHttpUser, ``constant_throughput`` per user, so the offered rate is users × rate)
   POSTs /diagnose for random subjects at each rate for ``--seconds``; prints offered and achieved
   rate, p50/p95/p99 and errors per rate, the previous design's figures beside them, and the knee
   (the highest rate meeting p99 < 50 ms with no error).

Run: var/venv/bin/python bench/api_load.py [--rates 50,200,500 --seconds 60 --workers 2]
(installs locust into the venv on first use). Needs Cassandra and FerretDB up.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from gaitstream import config, gaitpdb  # noqa: E402

LOCUST = "locust==2.47.0"
BENCH_KEYSPACE = "gaitstream_bench"
USER_RATE = 5.0  # requests/s per simulated user
P99_TARGET_MS = 50.0
# The previous design (every request: Cassandra read of all walks into pandas + predict), as the
# issue measured it on this machine with the stack running.
PREVIOUS = {50: "p99 201 ms", 200: "fell behind: p99 4.4 s, 8 errors / 2,000"}

LOCUSTFILE = """
import json, os, random
from locust import FastHttpUser, constant_throughput, task

SUBJECTS = json.loads(os.environ["BENCH_SUBJECTS"])
RATE = float(os.environ["BENCH_USER_RATE"])


class Clinician(FastHttpUser):
    wait_time = constant_throughput(RATE)

    @task
    def diagnose(self):
        self.client.post("/diagnose", json={"subject_id": random.choice(SUBJECTS)}, name="/diagnose")
"""


def ensure_locust() -> None:
    if importlib.util.find_spec("locust") is None:
        print(f"installing {LOCUST} into {sys.prefix} (first run only) ...", flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", LOCUST], check=True)


def bench_keyspace(cfg) -> list[str]:
    """Seed the bench keyspace if it lacks walks; returns the subjects with features."""
    from gaitstream import clients
    from streaming import schema
    from streaming.seed import seed_keyspace

    refs, _ = gaitpdb.list_walks(cfg.path("data.gaitpdb_dir"))
    cluster, session = clients.cassandra(cfg, request_timeout=60)
    try:
        schema.create(cfg, BENCH_KEYSPACE, session=session)
        stored = list(session.execute(f"SELECT subject_id, walk_id, final FROM {BENCH_KEYSPACE}.walk_features"))
        if sum(1 for r in stored if r.final) < len(refs):
            print(f"seeding {BENCH_KEYSPACE} offline from {len(refs)} walks (first run only) ...", flush=True)
            seed_keyspace(session, BENCH_KEYSPACE, refs)
            stored = list(session.execute(f"SELECT subject_id, walk_id, final FROM {BENCH_KEYSPACE}.walk_features"))
    finally:
        cluster.shutdown()
    return sorted({r.subject_id for r in stored})


def train_and_score(cfg, registry_dir: Path) -> str:
    """Train the default model (what POST /retrain runs), promote it, score every walk and subject."""
    from api.data import CassandraStore
    from api.runs import RunStore
    from api.settings import ApiSettings
    from api.training import TrainingParams, train
    from gaitstream import clients
    from model.registry import Registry
    from streaming.predictions import LiveScorer

    settings = ApiSettings.from_config(cfg)
    store, client = CassandraStore(cfg, BENCH_KEYSPACE, 10), clients.mongo(cfg, timeout=5)
    registry = Registry(registry_dir)
    try:
        runs = RunStore(client, settings.mongo_database, settings.runs_collection)
        run_id = uuid.uuid4().hex
        runs.create(run_id, {})
        params = TrainingParams(
            settings.default_family, settings.default_feature_set, "subject_kfold", settings.seed, promote=True
        )
        version = train(settings, store, runs, registry, run_id, params)["model_version"]
        client.drop_database(settings.mongo_database)
    finally:
        store.close()
        client.close()
    scorer = LiveScorer(registry, BENCH_KEYSPACE, lambda: clients.cassandra(cfg, request_timeout=60))
    cluster, session = clients.cassandra(cfg, request_timeout=60)
    try:
        rows = [
            r._asdict()
            for r in session.execute(
                "SELECT subject_id, walk_id, study, samples, final, feature_version, features "
                f"FROM {BENCH_KEYSPACE}.walk_features"
            )
        ]
    finally:
        cluster.shutdown()
    scorer.score(rows)
    scorer.close()
    return version


def run_locust(base: str, subjects: list[str], rate: float, seconds: int, folder: Path) -> dict[str, float]:
    locustfile = folder / "locustfile.py"
    locustfile.write_text(LOCUSTFILE)
    users = max(1, round(rate / USER_RATE))
    prefix = folder / f"rate{int(rate)}"
    env = {**os.environ, "BENCH_SUBJECTS": __import__("json").dumps(subjects), "BENCH_USER_RATE": str(rate / users)}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(locustfile),
            "--headless",
            "--host",
            base,
            "-u",
            str(users),
            "-r",
            str(users),
            "-t",
            f"{seconds}s",
            "--csv",
            str(prefix),
            "--only-summary",
            "--loglevel",
            "WARNING",
            "--stop-timeout",
            "5",
        ],
        env=env,
        check=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    with open(f"{prefix}_stats.csv") as handle:
        row = next(r for r in csv.DictReader(handle) if r["Name"] == "Aggregated")
    return {
        "requests": float(row["Request Count"]),
        "failures": float(row["Failure Count"]),
        "achieved": float(row["Requests/s"]),
        "p50": float(row["50%"]),
        "p95": float(row["95%"]),
        "p99": float(row["99%"]),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="50,200,500", help="offered requests/s, comma-separated")
    parser.add_argument("--seconds", type=int, default=60, help="duration of each rate")
    parser.add_argument("--workers", type=int, default=None, help="uvicorn workers (default [api] workers)")
    args = parser.parse_args()
    ensure_locust()
    tag = uuid.uuid4().hex[:8]
    registry_dir = Path(tempfile.mkdtemp(prefix="gaitstream-bench-registry-"))
    env = {
        **os.environ,
        "GAITSTREAM_CASSANDRA_KEYSPACE": BENCH_KEYSPACE,
        "GAITSTREAM_MONGO_DATABASE": f"bench_{tag}",
        "GAITSTREAM_API_REGISTRY_DIR": str(registry_dir),
    }
    cfg = config.load(env=env)
    subjects = bench_keyspace(cfg)
    version = train_and_score(cfg, registry_dir)
    workers = args.workers or cfg.api.workers
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log_path = registry_dir / "api.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "api", "--port", str(port), "--workers", str(workers)],
            env=env,
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        import httpx

        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.post(f"{base}/diagnose", json={"subject_id": subjects[0]}, timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit(f"API did not answer /diagnose:\n{log_path.read_text()[-2000:]}")
            time.sleep(0.5)
        print(
            f"\n/diagnose for {len(subjects)} subjects (keyspace {BENCH_KEYSPACE}, model {version}, "
            f"{workers} uvicorn workers, whole stack running); locust, {args.seconds} s per rate\n"
        )
        print(
            f"{'offered req/s':>14}{'achieved':>10}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'errors':>8}"
            "   previous design"
        )
        knee = None
        for rate in (float(r) for r in args.rates.split(",")):
            r = run_locust(base, subjects, rate, args.seconds, registry_dir)
            ok = r["p99"] < P99_TARGET_MS and r["failures"] == 0 and r["achieved"] >= 0.95 * rate
            knee = rate if ok else knee
            print(
                f"{rate:>14,.0f}{r['achieved']:>10,.1f}{r['p50']:>9,.0f}{r['p95']:>9,.0f}{r['p99']:>9,.0f}"
                f"{int(r['failures']):>8}   {PREVIOUS.get(int(rate), '-')}",
                flush=True,
            )
        print(
            f"\ntarget: p99 < {P99_TARGET_MS:.0f} ms at 200 req/s with zero errors. "
            f"knee (highest rate meeting p99 < {P99_TARGET_MS:.0f} ms, no error, >= 95% achieved): "
            f"{f'{knee:,.0f} req/s' if knee else 'below the lowest rate'}"
        )
    finally:
        proc.terminate()
        proc.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
