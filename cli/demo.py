"""The end-to-end demo: stack up, schema, bridge + streaming job + API, replay, wait, retrain,
live diagnosis of walks held back until a model is promoted, report, then keep everything running
until Ctrl-C and stop it all cleanly.

Every step says what it does; a failing step names the service and shows its log tail (the
stack scripts print it). A second run reuses what is installed, and replays only the walks
whose windows are not all in Cassandra yet (``--replay-all`` to send everything again).
"""

from __future__ import annotations

import datetime
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
LIVE_PER_GROUP = 3  # walks held back for the live diagnosis step, per group (patients, controls)


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

    final_of = session.prepare(
        f"SELECT walk_id, final, feature_version FROM {keyspace}.walk_features WHERE subject_id = ?"
    )
    args = [(w.subject_id, w.walk_id) for w in walks]
    windows = {}
    for (_, walk), (ok, rows) in zip(
        args, execute_concurrent_with_args(session, count_windows, args, concurrency=32), strict=True
    ):
        windows[walk] = rows.one()[0] if ok else 0
    final: set[str] = set()
    subjects = sorted({w.subject_id for w in walks})
    for ok, rows in execute_concurrent_with_args(session, final_of, [(s,) for s in subjects], concurrency=32):
        if ok:
            # features of an older version (an earlier checkpoint format) mean the walk is replayed
            final.update(row.walk_id for row in rows if row.final and row.feature_version == FEATURE_VERSION)
    return StoredCounts(windows, final)


def expected_windows(samples: int, window: int) -> int:
    return -(-samples // window)  # full windows + one partial when samples % window != 0


def live_walks(walks: list[gaitpdb.WalkRef], per_group: int = LIVE_PER_GROUP) -> list[gaitpdb.WalkRef]:
    """The walks held back for the live-diagnosis step: Ga dual-task walks (never trained on, as
    every non-usual walk), ``per_group`` patients and ``per_group`` controls."""
    dual = [w for w in walks if w.study == "Ga" and gaitpdb.walk_condition(w.walk_id) == gaitpdb.DUAL_TASK]
    return [w for w in dual if "Pt" in w.subject_id][:per_group] + [w for w in dual if "Co" in w.subject_id][:per_group]


def wait_for_windows(session, keyspace: str, walks, lengths: dict[str, int], window: int, timeout: float) -> None:
    """Poll Cassandra until every given walk has all its windows and final features (progress bar)."""
    total = sum(expected_windows(lengths[w.walk_id], window) for w in walks)
    deadline = time.monotonic() + timeout
    with tqdm(total=total, unit=" windows", desc="stored", dynamic_ncols=True) as bar:
        while True:
            counts = stored_counts(session, keyspace, walks)
            stored = sum(
                min(counts.windows.get(w.walk_id, 0), expected_windows(lengths[w.walk_id], window)) for w in walks
            )
            bar.update(stored - bar.n)
            if stored >= total and len(counts.final_features) >= len(walks):
                return
            if time.monotonic() > deadline:
                raise DemoError(
                    f"timed out: {stored}/{total} windows, {len(counts.final_features)}/{len(walks)} "
                    "final features; see var/log/streaming.log and var/log/bridge.log"
                )
            time.sleep(3)


@dataclass
class LivePrediction:
    walk_id: str
    probability: float
    label: str
    model_version: str
    lag_s: float | None  # final prediction's write time minus the end of this run's replay


def wait_for_live_predictions(
    session,
    keyspace: str,
    walks,
    replay_end: float | None,
    timeout: float,
) -> list[LivePrediction]:
    """The stream's final walk predictions of ``walks`` (waits for them when they were just replayed)."""
    query = session.prepare(
        f"SELECT walk_id, probability, label, model_version, final, updated_at "
        f"FROM {keyspace}.walk_predictions WHERE subject_id = ? AND walk_id = ?"
    )
    deadline = time.monotonic() + (timeout if replay_end is not None else 0)
    while True:
        rows = [session.execute(query, (w.subject_id, w.walk_id)).one() for w in walks]
        done = [r for r in rows if r is not None and r.final]
        if len(done) == len(walks) or time.monotonic() >= deadline:
            break
        time.sleep(1)
    out = []
    for r in done:
        written = r.updated_at.replace(tzinfo=datetime.UTC).timestamp() if r.updated_at else None
        lag = written - replay_end if written is not None and replay_end is not None else None
        out.append(LivePrediction(r.walk_id, r.probability, r.label, r.model_version, lag))
    return out


def run_demo(cfg: Config, speed: float, batch_size: int, replay_all: bool, wait: bool, timeout: float) -> None:
    from bridge import replay
    from gaitstream import clients
    from streaming import schema

    t_start = time.monotonic()
    _say("1/8 services: Mosquitto, Kafka, Cassandra, HDFS, FerretDB (installs what is missing)")
    stack(cfg, "up")
    _say("2/8 Cassandra schema (idempotent)")
    schema.create(cfg)
    _say("3/8 bridge, streaming job (spark-submit.sh), API")
    for component in ("bridge.sh", "streaming.sh", "api.sh"):
        stack(cfg, component, "start")

    folder = cfg.path("data.gaitpdb_dir")
    walks, missing = gaitpdb.list_walks(folder)
    window = cfg.streaming.window_size
    keyspace = cfg.cassandra.keyspace
    api = f"http://{cfg.api.host}:{cfg.api.port}"
    lengths = {}
    cluster, session = clients.cassandra(cfg, request_timeout=30)
    try:
        for walk in gaitpdb.iter_verified_walks(walks, gaitpdb.read_checksums(folder)):
            if isinstance(walk, gaitpdb.Walk):
                lengths[walk.ref.walk_id] = len(walk)
        walks = [w for w in walks if w.walk_id in lengths]
        before = stored_counts(session, keyspace, walks)
        todo = [
            w
            for w in walks
            if replay_all
            or before.windows.get(w.walk_id, 0) < expected_windows(lengths[w.walk_id], window)
            or w.walk_id not in before.final_features
        ]
        live = live_walks(walks)
        live_todo = [w for w in todo if w in live]
        backfill = [w for w in todo if w not in live]
        samples_in = 0
        pace = "as fast as possible" if speed == 0 else f"{speed}x real time"
        if backfill:
            _say(
                f"4/8 replaying {len(backfill)} of {len(walks)} walks ({pace}, {batch_size} samples/message; "
                f"{len(live)} walks held back for the live diagnosis step)"
            )
            report = replay.replay(cfg, backfill, speed=speed, batch_size=batch_size, data_dir=folder, missing=missing)
            samples_in += report.samples
            click.echo(report.summary(), err=True)
        else:
            _say("4/8 every walk is already stored: nothing to replay (--replay-all sends everything again)")
        rest = [w for w in walks if w not in live_todo]
        _say(
            f"5/8 waiting until Cassandra holds the windows and final features of {len(rest)} walks "
            f"(partial last windows flush after {cfg.streaming.idle_timeout_seconds}s idle)"
        )
        wait_for_windows(session, keyspace, rest, lengths, window, timeout)

        _say(
            "6/8 retraining over HTTP (POST /retrain), subject-wise evaluation: the seed's KNN on "
            "window means, then the default gait-feature model (promoted: /diagnose and the stream use it)"
        )
        runs = {label: retrain(api, cfg.api.token, body, timeout=900) for label, body in TRAININGS.items()}

        replay_end = None
        if live_todo:
            _say(
                f"7/8 live diagnosis: replaying {len(live_todo)} walks ({pace}); the streaming job scores them "
                "with the champion model as their features arrive"
            )
            report = replay.replay(cfg, live_todo, speed=speed, batch_size=batch_size, data_dir=folder)
            replay_end = time.time()
            samples_in += report.samples
        else:
            _say("7/8 live diagnosis: the held-back walks were streamed by an earlier run; showing their predictions")
        predictions = wait_for_live_predictions(
            session, keyspace, live, replay_end, float(cfg.streaming.idle_timeout_seconds) + 120
        )
        wait_for_windows(session, keyspace, walks, lengths, window, timeout)
    finally:
        cluster.shutdown()

    _say("8/8 report")
    print_report(cfg, samples_in, lengths, walks, runs, predictions, api, time.monotonic() - t_start)
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
TRAININGS: dict[str, dict[str, str | bool]] = {
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
        _status, run = http_json("GET", f"{api}/runs/{run_id}", token)  # reads need it beyond loopback
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


def print_report(
    cfg: Config,
    samples_in: int,
    lengths: dict[str, int],
    walks,
    runs: dict[str, dict],
    predictions: list[LivePrediction],
    api: str,
    seconds: float,
) -> None:
    archive = endpoints.archive_uri(cfg)
    window = cfg.streaming.window_size
    lines = [
        "",
        "gaitstream demo report",
        f"  samples replayed this run : {samples_in:,}  "
        f"(data set: {sum(lengths.values()):,} samples, {len(walks)} walks)",
        f"  windows stored            : {sum(expected_windows(n, window) for n in lengths.values()):,} "
        f"in {cfg.cassandra.keyspace}.windows; {len(walks)} walks' final features in walk_features",
        f"  raw archive (Parquet)     : {archive}",
        "  models, evaluated subject-wise (StratifiedGroupKFold by subject; per-subject accuracy / ROC-AUC):",
    ]
    for label, run in runs.items():
        subjects, leaky = _subject_summary(run), _leaky(run)
        lines.append(
            f"    {label:32s}: {subjects.get('accuracy', float('nan')):.3f} / "
            f"{subjects.get('roc_auc', float('nan')):.3f}"
            f"   (LEAKY random row split, not an estimate: accuracy {leaky.get('accuracy', float('nan')):.3f})"
            f"   run {run.get('run_id')}, model {run.get('model_version')}"
        )
    idle = cfg.streaming.idle_timeout_seconds
    lines.append(
        f"  live predictions (streaming job, final per walk; lag = written - end of replay, idle timeout {idle}s):"
    )
    for p in predictions:
        lag = f"{p.lag_s:5.1f}s after the replay ended" if p.lag_s is not None else "from an earlier run"
        lines.append(
            f"    {p.walk_id:12s} P(Parkinson's) {p.probability:.3f}  {p.label:10s}  {lag}   model {p.model_version}"
        )
    if not predictions:
        lines.append("    none: no model was promoted when the walks streamed (see var/log/streaming.log)")
    lines += [
        f"  Spark UI                  : http://127.0.0.1:{cfg.spark.ui_port}",
        f"  dashboard                 : {api}/",
        f"  elapsed                   : {seconds:.0f}s",
        "",
    ]
    click.echo("\n".join(lines))
