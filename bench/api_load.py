"""/diagnose under load, measured by a real load generator (oha, headless), beside the previous figures.

1. A bench keyspace with every walk's windows and features (seeded offline with the stream's own
   functions, ``streaming.seed``, the first time), the default model trained and promoted in a temporary
   registry, and every subject scored into ``subject_predictions`` by the streaming job's scorer
   (``streaming.predictions.LiveScorer``): what a running pipeline holds.
2. ``gaitstream api --workers N`` on a free port over it.
3. oha (Rust, async: the generator itself costs little of the 2 cores it shares with the API and
   the stack) POSTs /diagnose at a fixed rate (``-q``) for ``--seconds`` per rate, each request's
   body the next line of a file of subjects drawn at random (seeded), latencies corrected for coordinated
   omission (``--latency-correction``: a request counts from when it was due, not when sent);
   prints offered and achieved rate, p50/p95/p99 and errors per rate, the previous design's
   figures beside them, and the knee (the highest rate meeting p99 < 50 ms with no error).

Run: var/venv/bin/python bench/api_load.py [--rates 50,200,500,1000 --seconds 60 --workers 2]
(builds oha with cargo into ``<runtime>/cache/oha`` on first use, ~6 minutes; an ``oha`` already on
PATH is used as it is). Needs Cassandra and FerretDB up.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
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

OHA_VERSION = "1.16.0"
CONNECTIONS = 64  # enough that a slow answer never holds back the next due request
BENCH_KEYSPACE = "gaitstream_bench"
P99_TARGET_MS = 50.0
WARMUP_S = 10  # not measured: each worker's first prediction snapshot and connections
# The previous design (every request: Cassandra read of all walks into pandas + predict), as the
# issue measured it on this machine with the stack running.
PREVIOUS = {50: "p99 201 ms", 200: "fell behind: p99 4.4 s, 8 errors / 2,000"}


def ensure_oha(cfg) -> str:
    """The oha binary: on PATH, else built once with cargo into the runtime folder's cache."""
    found = shutil.which("oha")
    if found:
        return found
    root = cfg.runtime_dir / "cache" / "oha"
    binary = root / "bin" / "oha"
    if not binary.exists():
        cargo = shutil.which("cargo") or str(Path.home() / ".cargo" / "bin" / "cargo")
        print(f"building oha {OHA_VERSION} with cargo into {root} (first run only, ~6 minutes) ...", flush=True)
        subprocess.run(
            [cargo, "install", "oha", "--version", OHA_VERSION, "--locked", "--root", str(root)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return str(binary)


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


def run_oha(oha: str, base: str, subjects: list[str], rate: float, seconds: int, folder: Path) -> dict[str, float]:
    """One rate for ``seconds``: oha's JSON summary reduced to what the table prints (ms)."""
    bodies = folder / "bodies.jsonl"
    rng = random.Random(0)
    lines = [json.dumps({"subject_id": rng.choice(subjects)}) for _ in range(max(1000, int(rate * seconds)))]
    bodies.write_text("\n".join(lines) + "\n")
    done = subprocess.run(
        [
            oha,
            "-z",
            f"{seconds}s",
            "-q",
            str(rate),
            "--latency-correction",
            "-w",  # requests still in flight at the deadline are waited for, not counted as errors
            "-c",
            str(CONNECTIONS),
            "-m",
            "POST",
            "-T",
            "application/json",
            "-Z",
            str(bodies),
            "--no-tui",
            "--output-format",
            "json",
            f"{base}/diagnose",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(done.stdout)
    codes = {int(code): n for code, n in report.get("statusCodeDistribution", {}).items()}
    ok = codes.get(200, 0)
    failures = sum(n for code, n in codes.items() if code != 200) + sum(report.get("errorDistribution", {}).values())
    percentiles = report["latencyPercentiles"]
    return {
        "requests": float(ok + failures),
        "failures": float(failures),
        "achieved": ok / float(report["summary"]["total"]),
        "p50": 1000 * (percentiles["p50"] or 0.0),
        "p95": 1000 * (percentiles["p95"] or 0.0),
        "p99": 1000 * (percentiles["p99"] or 0.0),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="50,200,500,1000", help="offered requests/s, comma-separated")
    parser.add_argument("--seconds", type=int, default=60, help="duration of each rate")
    parser.add_argument("--workers", type=int, default=None, help="uvicorn workers (default [api] workers)")
    args = parser.parse_args()
    tag = uuid.uuid4().hex[:8]
    registry_dir = Path(tempfile.mkdtemp(prefix="gaitstream-bench-registry-"))
    env = {
        **os.environ,
        "GAITSTREAM_CASSANDRA_KEYSPACE": BENCH_KEYSPACE,
        "GAITSTREAM_MONGO_DATABASE": f"bench_{tag}",
        "GAITSTREAM_API_REGISTRY_DIR": str(registry_dir),
    }
    cfg = config.load(env=env)
    oha = ensure_oha(cfg)
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
            f"{workers} uvicorn workers, whole stack running); oha, {args.seconds} s per rate\n"
        )
        print(
            f"{'offered req/s':>14}{'achieved':>10}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'errors':>8}"
            "   previous design"
        )
        run_oha(oha, base, subjects, 50.0, WARMUP_S, registry_dir)  # first snapshot, connections, caches
        knee = None
        for rate in (float(r) for r in args.rates.split(",")):
            r = run_oha(oha, base, subjects, rate, args.seconds, registry_dir)
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
