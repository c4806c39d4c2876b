"""Live diagnosis on the real stack: replay → bridge → Kafka → the streaming job → walk_predictions.

One job, three phases, with a registry of its own:

1. no model behind ``champion``: a walk streams, its windows and final features are stored, and
   no prediction is written (the job keeps running);
2. model A promoted: two walks stream; each gets one final prediction by A whose probability
   equals the upload route's offline prediction for the same file to 1e-9, and the subject row
   equals :func:`model.predict.subject_probability` over the subject's stored walks;
3. the alias moves to model B mid-stream (no restart): the next walk is scored by B.
"""

from __future__ import annotations

import datetime
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from api import diagnosis
from api.data import CassandraStore
from bridge import replay
from gaitstream import clients, gaitpdb
from gaitstream.clients import hdfs as hdfs_client
from model import features, predict
from model.families import GAIT_COLUMNS
from model.registry import Registry
from streaming import job
from tests.integration.pipeline import BridgeProcess, isolated_config
from tests.integration.test_streaming import JobProcess

pytestmark = pytest.mark.integration

NO_MODEL_WALK = "JuPt03_05"
MODEL_A_WALKS = ("JuPt02_01", "SiCo01_01")
MODEL_B_WALK = "JuPt28_05"
TRAINING_WALKS = 24  # usual walks the two small test models are fitted on
IDLE_TIMEOUT_S = 4
UPLOAD_LIMIT = 8_000_000


def fit_model(registry: Registry, refs, C: float, run_id: str) -> str:
    """A small calibrated-probability pipeline on offline gait features (labels from the walk ids)."""
    rows = [features.gait_features(*_walk_arrays(ref)) for ref in refs]
    X = np.array([[row.get(c, np.nan) for c in GAIT_COLUMNS] for row in rows])
    y = np.array([1 if ref.subject_id[2:4] == "Pt" else 0 for ref in refs])
    pipeline = Pipeline(
        [
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
            ("scale", StandardScaler()),
            ("logreg", LogisticRegression(C=C, max_iter=1000)),
        ]
    ).fit(X, y)
    meta = {"family": "logreg", "feature_set": "gait", "features": list(GAIT_COLUMNS), "calibrated": False}
    return registry.save(pipeline, meta, run_id=run_id)


def _walk_arrays(ref):
    walk = gaitpdb.read_walk(ref)
    return walk.time, walk.forces


def rows(cfg, keyspace: str, table: str) -> list:
    cluster, session = clients.cassandra(cfg)
    try:
        return list(session.execute(f"SELECT * FROM {keyspace}.{table}", timeout=30))
    except Exception:  # keyspace or table not created yet
        return []
    finally:
        cluster.shutdown()


def wait_until(check, process: JobProcess, what: str, timeout: float = 240):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.alive(), f"job exited:\n{process.log()[-4000:]}"
        result = check()
        if result:
            return result
        time.sleep(1)
    pytest.fail(f"{what} not reached after {timeout}s:\n{process.log()[-4000:]}")


@pytest.fixture(scope="module")
def live(stack, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("live")
    tag = uuid.uuid4().hex[:8]
    cfg, env = isolated_config()
    env = {
        **env,
        "GAITSTREAM_CASSANDRA_KEYSPACE": f"t_live_{tag}",
        "GAITSTREAM_HDFS_ARCHIVE_PATH": f"/test/live/{tag}/raw",
        "GAITSTREAM_STREAMING_DEADLETTER_PATH": f"/test/live/{tag}/deadletter",
        "GAITSTREAM_SPARK_CHECKPOINT_DIR": str(tmp / "checkpoints"),
        "GAITSTREAM_STREAMING_STATUS_FILE": str(tmp / "status.json"),
        "GAITSTREAM_STREAMING_IDLE_TIMEOUT_SECONDS": str(IDLE_TIMEOUT_S),
        "GAITSTREAM_STREAMING_STATUS_INTERVAL_SECONDS": "1",
        "GAITSTREAM_SPARK_UI_PORT": "0",
        "GAITSTREAM_API_REGISTRY_DIR": str(tmp / "models"),
    }
    run_cfg = job.gs_config.load(env=env)
    folder = run_cfg.path("data.gaitpdb_dir")
    refs = {ref.walk_id: ref for ref in gaitpdb.list_walks(folder)[0]}
    bridge = BridgeProcess(env, tmp / "bridge.log").start()
    process = JobProcess(env, tmp / "job.log")
    try:
        yield run_cfg, refs, Registry(run_cfg.path("api.registry_dir")), process
    finally:
        process.kill_everything()
        bridge.stop()
        cluster, session = clients.cassandra(cfg)
        try:
            session.execute(f"DROP KEYSPACE IF EXISTS t_live_{tag}", timeout=60)
            hdfs_client(cfg).delete(f"/test/live/{tag}", recursive=True)
        finally:
            cluster.shutdown()


def stream(cfg, refs, walk_ids, speed: float = 0) -> dict[str, float]:
    """Replay walks (``speed``: multiple of real time, 0 = as fast as possible); returns the wall
    time each walk's last sample was published."""
    report = replay.replay(
        cfg,
        [refs[w] for w in walk_ids],
        speed=speed,
        batch_size=10,
        data_dir=cfg.path("data.gaitpdb_dir"),
        progress=False,
    )
    assert sorted(report.per_walk) == sorted(walk_ids)
    return {w: time.time() for w in walk_ids}


def test_live_predictions_follow_the_champion(live):
    cfg, refs, registry, process = live
    keyspace = cfg.cassandra.keyspace
    usual = [
        r
        for r in refs.values()
        if gaitpdb.is_usual_walk(r.walk_id) and r.walk_id not in (NO_MODEL_WALK, MODEL_B_WALK, *MODEL_A_WALKS)
    ]
    training = [r for r in usual if "Pt" in r.subject_id][: TRAINING_WALKS // 2] + [
        r for r in usual if "Co" in r.subject_id
    ][: TRAINING_WALKS // 2]
    model_a = fit_model(registry, training, C=1.0, run_id="aaaaaa01")
    model_b = fit_model(registry, training, C=0.01, run_id="bbbbbb02")

    def final_features(walk_ids):
        def check():
            finals = {r.walk_id: r for r in rows(cfg, keyspace, "walk_features") if r.final}
            return finals if set(walk_ids) <= set(finals) else None

        return check

    def final_predictions(walk_ids):
        def check():
            found = {r.walk_id: r for r in rows(cfg, keyspace, "walk_predictions") if r.final and r.walk_id in walk_ids}
            return found if set(found) == set(walk_ids) else None

        return check

    # 1. No model: windows and final features flow, no prediction, the job stays up.
    stream(cfg, refs, [NO_MODEL_WALK])
    wait_until(final_features([NO_MODEL_WALK]), process, "final features without a model", timeout=300)
    time.sleep(2 * cfg.streaming.trigger_seconds + 1)
    assert rows(cfg, keyspace, "walk_predictions") == [] and rows(cfg, keyspace, "subject_predictions") == []
    assert "no model behind alias 'champion'" in process.log()

    # 2. Model A promoted: the next walks are scored, equal to the upload route's offline answer.
    registry.promote(model_a)
    loaded_a = registry.load(model_a)
    published = stream(cfg, refs, MODEL_A_WALKS)
    found = wait_until(final_predictions(MODEL_A_WALKS), process, "final predictions by model A")
    for walk_id in MODEL_A_WALKS:
        row = found[walk_id]
        raw = Path(refs[walk_id].path).read_bytes()  # the upload route takes the gzip file as it is
        offline = diagnosis.diagnose_walk(loaded_a, raw, UPLOAD_LIMIT)["probability_parkinsons"]
        assert row.model_version == model_a and row.model_alias == "champion"
        assert row.probability == pytest.approx(offline, abs=1e-9), walk_id
        assert row.label == predict.label(offline) and row.feature_version == features.FEATURE_VERSION
        lag = row.updated_at.replace(tzinfo=datetime.UTC).timestamp() - published[walk_id]
        print(
            f"{walk_id}: final prediction {row.probability:.4f} by {model_a}, "
            f"{lag:.1f} s after the replay ended (idle timeout {IDLE_TIMEOUT_S} s)"
        )
    stored = {r.walk_id: r for r in rows(cfg, keyspace, "walk_features")}
    for subject_id in {refs[w].subject_id for w in MODEL_A_WALKS}:
        subject = [r for r in rows(cfg, keyspace, "subject_predictions") if r.subject_id == subject_id]
        assert len(subject) == 1 and subject[0].model_version == model_a
        walks = [r for r in stored.values() if r.subject_id == subject_id]
        expected, _used = predict.subject_probability(
            loaded_a, [w.walk_id for w in walks], [dict(w.features) for w in walks]
        )
        assert subject[0].probability == pytest.approx(expected, abs=1e-9)
        # /diagnose answers from the stored row, and equals what it computes from the feature maps
        store = CassandraStore(cfg, keyspace, 10)
        try:
            answer = diagnosis.diagnose_subject(store, loaded_a, subject_id)
            computed = diagnosis.diagnose_subject(store, loaded_a, subject_id, use_stream=False)
        finally:
            store.close()
        assert answer["probability_parkinsons"] == subject[0].probability
        # ... and from the API's snapshot of subject_predictions (taken in the background) the same
        snapshot_store = CassandraStore(cfg, keyspace, 10, prediction_cache_seconds=0.2)
        try:
            deadline = time.monotonic() + 30
            while not (snapshot_store._prediction_snapshot() or {}).get(subject_id):
                assert time.monotonic() < deadline, "no prediction snapshot within 30 s"
                time.sleep(0.1)
            assert diagnosis.diagnose_subject(snapshot_store, loaded_a, subject_id) == answer
        finally:
            snapshot_store.close()
        assert computed["probability_parkinsons"] == pytest.approx(answer["probability_parkinsons"], abs=1e-9)
        assert [d["feature"] for d in answer["drivers"]] == [d["feature"] for d in computed["drivers"]]

    # 3. The alias moves to B mid-stream: later predictions carry B's version, no restart.
    # Streamed at 5x real time (the job keeps up), so the lag is the latency path's own (printed:
    # speed is measured, not asserted; target idle timeout + 3 s).
    registry.promote(model_b)
    published = stream(cfg, refs, [MODEL_B_WALK], speed=5)
    found = wait_until(final_predictions([MODEL_B_WALK]), process, "final prediction by model B")
    assert found[MODEL_B_WALK].model_version == model_b
    lag = found[MODEL_B_WALK].updated_at.replace(tzinfo=datetime.UTC).timestamp() - published[MODEL_B_WALK]
    print(
        f"{MODEL_B_WALK} (5x real time): final prediction {lag:.1f} s after its last sample (idle {IDLE_TIMEOUT_S} s)"
    )
    offline_b = predict.walk_probability(
        registry.load(model_b), features.gait_features(*_walk_arrays(refs[MODEL_B_WALK]))
    )
    assert found[MODEL_B_WALK].probability == pytest.approx(offline_b, abs=1e-9)
    assert process.alive()
