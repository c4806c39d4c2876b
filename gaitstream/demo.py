"""The end-to-end demo: stack up, schema, bridge + streaming job + API, replay, wait, retrain,
report, then keep everything running until Ctrl-C and stop it all cleanly.

Every step says what it does; a failing step names the service and shows its log tail (the
stack scripts print it). A second run reuses what is installed, and replays only the walks
whose windows are not all in Cassandra yet (``--replay-all`` to send everything again).
"""
from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

import click
from tqdm import tqdm

from gaitstream import endpoints, gaitpdb
from gaitstream.config import Config

STEP = "==>"


class DemoError(click.ClickException):
    """A step failed; the message names the step/service."""


def _say(text: str) -> None:
    click.echo(f"{STEP} {text}", err=True)


def stack(cfg: Config, *args: str) -> None:
    """Run a stack/ script, streaming its output; a failure stops the demo with its message."""
    script = cfg.root / "stack" / args[0]
    proc = subprocess.run([str(script), *args[1:]], cwd=cfg.root)
    if proc.returncode != 0:
        raise DemoError(f"stack/{' '.join(args)} failed (see its log under var/log/)")


def http_json(method: str, url: str, token: str | None = None, body: dict | None = None, timeout: float = 30):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (loopback from config)
        return response.status, json.loads(response.read() or b"null")


@dataclass
class StoredCounts:
    windows: dict[str, int]
    final_features: set[str]


def stored_counts(session, keyspace: str, walks: list[gaitpdb.WalkRef]) -> StoredCounts:
    """Windows per walk and walks with final features, read with prepared statements."""
    from cassandra.concurrent import execute_concurrent_with_args

    count_windows = session.prepare(f"SELECT COUNT(*) FROM {keyspace}.windows WHERE subject_id = ? AND walk_id = ?")
    from model.features import FEATURE_VERSION

    final_of = session.prepare(f"SELECT walk_id, final, feature_version FROM {keyspace}.walk_features WHERE subject_id = ?")
    args = [(w.subject_id, w.walk_id) for w in walks]
    windows = {}
    for (subject, walk), (ok, rows) in zip(args, execute_concurrent_with_args(session, count_windows, args, concurrency=32)):
        windows[walk] = rows.one()[0] if ok else 0
    final = set()
    subjects = sorted({w.subject_id for w in walks})
    for ok, rows in execute_concurrent_with_args(session, final_of, [(s,) for s in subjects], concurrency=32):
        if ok:
            # features of an older version (an earlier checkpoint format) mean the walk is replayed
            final.update(row.walk_id for row in rows if row.final and row.feature_version == FEATURE_VERSION)
    return StoredCounts(windows, final)


def expected_windows(samples: int, window: int) -> int:
    return -(-samples // window)  # full windows + one partial when samples % window != 0


def run_demo(cfg: Config, speed: float, batch_size: int, replay_all: bool, wait: bool, timeout: float) -> None:
    from bridge import replay
    from gaitstream.health.cassandra import connect
    from streaming import schema

    t_start = time.monotonic()
    _say("1/7 services: Mosquitto, Kafka, Cassandra, HDFS, FerretDB (installs what is missing)")
    stack(cfg, "up")
    _say("2/7 Cassandra schema (idempotent)")
    schema.create(cfg)
    _say("3/7 bridge, streaming job (spark-submit.sh), API")
    for component in ("bridge.sh", "streaming.sh", "api.sh"):
        stack(cfg, component, "start")

    folder = cfg.path("data.gaitpdb_dir")
    walks, missing = gaitpdb.list_walks(folder)
    window = int(cfg.streaming["window_size"])
    lengths = {}
    cluster, session = connect(cfg, request_timeout=30)
    try:
        keyspace = cfg.cassandra["keyspace"]
        for walk in gaitpdb.iter_verified_walks(walks, gaitpdb.read_checksums(folder)):
            if isinstance(walk, gaitpdb.Walk):
                lengths[walk.ref.walk_id] = len(walk)
        walks = [w for w in walks if w.walk_id in lengths]
        before = stored_counts(session, keyspace, walks)
        todo = [w for w in walks if replay_all or before.windows.get(w.walk_id, 0) < expected_windows(lengths[w.walk_id], window)
                or w.walk_id not in before.final_features]
        samples_in = 0
        if todo:
            _say(f"4/7 replaying {len(todo)} of {len(walks)} walks "
                 f"({'as fast as possible' if speed == 0 else f'{speed}x real time'}, {batch_size} samples/message)")
            report = replay.replay(cfg, todo, speed=speed, batch_size=batch_size, data_dir=folder, missing=missing)
            samples_in = report.samples
            click.echo(report.summary(), err=True)
        else:
            _say("4/7 every walk is already stored: nothing to replay (--replay-all sends everything again)")

        total = sum(expected_windows(n, window) for n in lengths.values())
        _say(f"5/7 waiting until Cassandra holds all {total:,} windows and {len(walks)} walks' final features "
             f"(partial last windows flush after {cfg.streaming['idle_timeout_seconds']}s idle)")
        deadline = time.monotonic() + timeout
        with tqdm(total=total, unit=" windows", desc="stored", dynamic_ncols=True) as bar:
            while True:
                counts = stored_counts(session, keyspace, walks)
                stored = sum(min(counts.windows.get(w, 0), expected_windows(n, window)) for w, n in lengths.items())
                bar.update(stored - bar.n)
                if stored >= total and len(counts.final_features) >= len(walks):
                    break
                if time.monotonic() > deadline:
                    raise DemoError(f"timed out: {stored}/{total} windows, {len(counts.final_features)}/{len(walks)} "
                                    "final features; see var/log/streaming.log and var/log/bridge.log")
                time.sleep(3)
    finally:
        cluster.shutdown()

    api = f"http://{cfg.api['host']}:{cfg.api['port']}"
    _say("6/7 retraining over HTTP (POST /retrain), subject-wise evaluation: the seed's KNN on "
         "window means, then the default gait-feature model (promoted, so /diagnose uses it)")
    runs = {label: retrain(api, cfg.api["token"], body, timeout=900) for label, body in TRAININGS.items()}
    _say("7/7 report")
    print_report(cfg, samples_in, lengths, walks, runs, api, time.monotonic() - t_start)
    if wait:
        click.echo("Everything is running. Press Ctrl-C to stop it all.", err=True)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *a: stop.set())
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
        _say("stopping everything")
        stack(cfg, "down")


# The seed tutorial's model, then the default model family on gait features ([api] defaults).
TRAININGS = {
    "seed: KNN k=5 on window means": {"family": "knn", "feature_set": "windows"},
    "gait-feature model (promoted)": {"promote": True},
}


def retrain(api: str, token: str, request: dict, timeout: float) -> dict:
    try:
        status, body = http_json("POST", f"{api}/retrain", token, request)
    except urllib.error.HTTPError as exc:
        if exc.code != 409:
            raise DemoError(f"POST /retrain answered {exc.code}: {exc.read()[:300]!r}") from exc
        body = json.loads(exc.read() or b"{}")
    run_id = body.get("run_id") or body.get("id")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _status, run = http_json("GET", f"{api}/runs/{run_id}")
        if run.get("status") in ("succeeded", "failed"):
            if run["status"] == "failed":
                raise DemoError(f"retrain run {run_id} failed: {run.get('error')}")
            return run
        time.sleep(2)
    raise DemoError(f"retrain run {run_id} did not finish in {timeout:.0f}s")


def _subject_summary(run: dict) -> dict:
    """Subject-wise per-subject summary (mean over repeats) of a run document."""
    return run.get("metrics", {}).get("subject_wise", {}).get("summary", {}).get("subjects", {})


def _leaky(run: dict) -> dict:
    return run.get("metrics", {}).get("leaky_random_row_split", {}).get("rows", {})


def print_report(cfg: Config, samples_in: int, lengths: dict[str, int], walks, runs: dict[str, dict], api: str,
                 seconds: float) -> None:
    archive = cfg.streaming["archive_uri"] or f"{endpoints.hdfs_namenode_uri(cfg)}{cfg.hdfs['archive_path']}"
    window = int(cfg.streaming["window_size"])
    lines = [
        "",
        "gaitstream demo report",
        f"  samples replayed this run : {samples_in:,}  (data set: {sum(lengths.values()):,} samples, {len(walks)} walks)",
        f"  windows stored            : {sum(expected_windows(n, window) for n in lengths.values()):,} "
        f"in {cfg.cassandra['keyspace']}.windows; {len(walks)} walks' final features in walk_features",
        f"  raw archive (Parquet)     : {archive}",
        "  models, evaluated subject-wise (StratifiedGroupKFold by subject; per-subject accuracy / ROC-AUC):",
    ]
    for label, run in runs.items():
        subjects, leaky = _subject_summary(run), _leaky(run)
        lines.append(f"    {label:32s}: {subjects.get('accuracy', float('nan')):.3f} / {subjects.get('roc_auc', float('nan')):.3f}"
                     f"   (LEAKY random row split, not an estimate: accuracy {leaky.get('accuracy', float('nan')):.3f})"
                     f"   run {run.get('run_id')}, model {run.get('model_version')}")
    lines += [
        f"  Spark UI                  : http://127.0.0.1:{cfg.spark['ui_port']}",
        f"  dashboard                 : {api}/",
        f"  elapsed                   : {seconds:.0f}s",
        "",
    ]
    click.echo("\n".join(lines))
