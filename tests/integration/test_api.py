"""The API over real Cassandra and FerretDB: `gaitstream api` as a subprocess on a free port.

The keyspace is seeded offline (streaming/seed.py: the stream's own feature functions) with the walks of
a balanced set of subjects; database, keyspace, registry folder and token are unique to this module.
"""

from __future__ import annotations

import gzip
import hashlib
import uuid

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, brier_score_loss, f1_score, precision_score, recall_score, roc_auc_score

from gaitstream import clients, gaitpdb
from model import families, features
from model.errors import IntegrityError
from model.families import GAIT_COLUMNS
from model.registry import Registry
from streaming.seed import walk_rows
from tests.integration.api_server import running_api, wait_run

pytestmark = pytest.mark.integration
SUBJECTS_PER_CLASS_AND_STUDY = 3  # 18 subjects, ~32 walks: 3-fold subject-wise CV has both classes per fold
TOKEN = f"token-{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def api(stack, tmp_path_factory):
    """(base_url, cfg, refs) of a running `gaitstream api` over a freshly seeded keyspace."""
    with running_api(
        tmp_path_factory.mktemp("api"),
        SUBJECTS_PER_CLASS_AND_STUDY,
        windows=False,
        GAITSTREAM_API_TOKEN=TOKEN,
        GAITSTREAM_API_FOREST_TREES="150",
    ) as server:
        yield server.base_url, server.cfg, server.refs


AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def logreg_run(api) -> dict:
    """A full-evaluation logistic-regression run (deterministic, so a direct computation can match it)."""
    base, _, _ = api
    response = httpx.post(f"{base}/retrain", json={"family": "logreg", "feature_set": "gait", "seed": 7}, headers=AUTH)
    assert response.status_code == 202, response.text
    run = wait_run(base, response.json()["run_id"], timeout=120)
    assert run["status"] == "succeeded", run["error"]
    return run


@pytest.mark.parametrize(
    "method,path", [("POST", "/retrain"), ("POST", "/models/v20000101T000000000000Z-abcdef/promote")]
)
@pytest.mark.parametrize("header", [None, "Bearer wrong-token", "Basic Zm9vOmJhcg==", f"bearer{TOKEN}", ""])
def test_mutating_routes_need_the_token(api, method, path, header):
    base, _, _ = api
    headers = {"Authorization": header} if header is not None else {}
    response = httpx.request(method, f"{base}{path}", json={}, headers=headers)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"


def direct_metrics(y: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    predicted = (proba >= 0.5).astype(int)
    return {
        "accuracy": accuracy_score(y, predicted),
        "precision": precision_score(y, predicted, zero_division=0),
        "recall": recall_score(y, predicted, zero_division=0),
        "f1": f1_score(y, predicted, zero_division=0),
        "roc_auc": roc_auc_score(y, proba),
        "brier": brier_score_loss(y, proba),
    }


def test_run_document_metrics_equal_a_direct_computation(api, logreg_run):
    """Usual walks only, one row per subject (feature means), the nested model refitted on each stored
    fold's training subjects: the stored per-subject metrics are sklearn's on those probabilities."""
    base, cfg, refs = api
    with clients.mongo(cfg) as client:
        doc = client[cfg.mongo.database][cfg.mongo.runs_collection].find_one({"_id": logreg_run["run_id"]})
    assert doc["status"] == "succeeded" and doc["model_version"] == logreg_run["model_version"]
    labels = gaitpdb.read_demographics(cfg.path("data.gaitpdb_dir"))
    usual = [ref for ref in refs if gaitpdb.is_usual_walk(ref.walk_id)]
    walks = pd.DataFrame([{"subject_id": ref.subject_id, **walk_rows(ref)[0][6]} for ref in usual])
    rows = walks.reindex(columns=["subject_id", *GAIT_COLUMNS]).groupby("subject_id", sort=True).mean()
    X = rows.to_numpy(float)
    subjects = rows.index.to_numpy()
    y = np.array([int(labels[s].parkinsons) for s in subjects])
    assert doc["data"]["walks"] == len(walks) and doc["data"]["subjects"] == len(subjects)
    assert doc["data"]["walks_all_conditions"] == len(refs) and doc["data"]["excluded_unlabelled_subjects"] == 0
    for repeat in doc["metrics"]["subject_wise"]["per_repeat"]:
        proba = np.full(len(rows), np.nan)
        for fold in repeat["folds"]:
            test = np.isin(subjects, fold["test_subjects"])
            model = families.fit(
                families.build_model("logreg", seed=7, forest_trees=10), X[~test], y[~test], subjects[~test]
            )
            proba[test] = model.predict_proba(X[test])[:, 1]
        assert not np.isnan(proba).any(), "the stored folds cover every subject"
        for name, value in direct_metrics(y, proba).items():
            assert repeat["subjects"][name] == pytest.approx(value, abs=1e-6), name
        predicted = proba >= 0.5
        assert repeat["subjects"]["confusion"] == {
            "tp": int((predicted & (y == 1)).sum()),
            "tn": int((~predicted & (y == 0)).sum()),
            "fp": int((predicted & (y == 0)).sum()),
            "fn": int((~predicted & (y == 1)).sum()),
        }
        assert [c["fold"] for c in repeat["chosen"]] == list(range(len(repeat["folds"])))
    metrics = doc["metrics"]
    assert set(metrics) == {
        "subject_wise",
        "bias_variance",
        "study_held_out",
        "leaky_random_row_split",
        "other_conditions",
    }
    assert {"expected_loss", "bias", "variance"} <= set(metrics["bias_variance"])
    assert set(metrics["study_held_out"]) <= {"Ga", "Ju", "Si"} and metrics["study_held_out"]
    summary = metrics["subject_wise"]["summary"]
    assert summary["subjects"]["interval"]["roc_auc_ci"][0] <= summary["subjects"]["interval"]["roc_auc_ci"][1]
    reliability = summary["calibration"]["reliability"]
    assert sum(reliability["count"]) == len(subjects) * len(metrics["subject_wise"]["per_repeat"])
    assert (
        metrics["leaky_random_row_split"]["leaky"] is True and metrics["leaky_random_row_split"]["row_kind"] == "walk"
    )


def test_no_subject_in_train_and_test_of_any_stored_fold(logreg_run):
    for repeat in logreg_run["metrics"]["subject_wise"]["per_repeat"]:
        folds = [set(f["test_subjects"]) for f in repeat["folds"]]
        everyone = set().union(*folds)
        assert sum(len(f) for f in folds) == len(everyone), "a subject is tested in two folds"
        # train = everyone else, so no fold's test subject is ever among its training subjects
        for fold in folds:
            assert fold.isdisjoint(everyone - fold)
    for study, held in logreg_run["metrics"]["study_held_out"].items():
        assert held["test_subjects"] + held["train_subjects"] == logreg_run["data"]["subjects"], study


def test_registry_artifact_checksum_and_current_model(api, logreg_run):
    base, cfg, _ = api
    current = httpx.get(f"{base}/models/current").json()
    assert current["version"] == logreg_run["model_version"]  # first model is promoted automatically
    folder = cfg.path("api.registry_dir") / current["version"]
    assert hashlib.sha256((folder / "model.joblib").read_bytes()).hexdigest() == current["sha256"]
    assert current["features"] == list(GAIT_COLUMNS) and "subject_id" not in current["features"]
    assert current["aliases"] == ["champion"] and current["current"] is True
    lineage = current["lineage"]
    assert lineage["run_id"] == logreg_run["run_id"] and lineage["feature_version"] == features.FEATURE_VERSION
    assert lineage["training_walks"] and all(gaitpdb.is_usual_walk(w) for w in lineage["training_walks"])
    assert lineage["code_commit"] is None or len(lineage["code_commit"].split("+")[0]) == 40


def test_two_retrains_one_accepted_one_conflict(api, logreg_run):
    base, _, _ = api
    first = httpx.post(f"{base}/retrain", json={"family": "forest", "feature_set": "gait"}, headers=AUTH)
    second = httpx.post(f"{base}/retrain", json={"family": "logreg"}, headers=AUTH)
    assert first.status_code == 202, first.text
    assert second.status_code == 409, second.text
    assert second.json()["running_run_id"] == first.json()["run_id"]
    run = wait_run(base, first.json()["run_id"], timeout=120)
    assert run["status"] == "succeeded", run["error"]
    assert run["promoted"] is False  # only the first model or an explicit promote changes `current`
    listed = httpx.get(f"{base}/runs", params={"limit": 5}).json()
    assert [r["run_id"] for r in listed][:1] == [first.json()["run_id"]]


def test_aliases_move_roll_back_and_need_the_token(api, logreg_run):
    base, _, _ = api
    champion = logreg_run["model_version"]
    other = next(m["version"] for m in httpx.get(f"{base}/models").json() if m["version"] != champion)
    assert httpx.put(f"{base}/models/aliases/challenger", json={"version": other}).status_code == 401
    moved = httpx.put(f"{base}/models/aliases/challenger", json={"version": other}, headers=AUTH)
    assert moved.status_code == 200 and moved.json()["aliases"] == ["challenger"], moved.text
    assert httpx.post(f"{base}/models/{other}/promote", headers=AUTH).status_code == 200
    aliases = httpx.get(f"{base}/models/aliases").json()
    assert aliases["aliases"] == {"champion": other, "challenger": other}
    rolled = httpx.post(f"{base}/models/aliases/champion/rollback", headers=AUTH)
    assert rolled.status_code == 200 and rolled.json()["version"] == champion, rolled.text
    assert httpx.get(f"{base}/models/current").json()["version"] == champion
    history = httpx.get(f"{base}/models/aliases").json()["history"]
    assert (history[0]["alias"], history[0]["previous"], history[0]["version"]) == ("champion", other, champion)
    assert httpx.delete(f"{base}/models/aliases/challenger", headers=AUTH).status_code == 200
    assert httpx.put(f"{base}/models/aliases/Bad!", json={"version": other}, headers=AUTH).status_code == 404


def test_tampered_artifact_is_refused(api, logreg_run):
    base, cfg, _ = api
    versions = [m["version"] for m in httpx.get(f"{base}/models").json()]
    victim = next(v for v in versions if v != logreg_run["model_version"])
    model_file = cfg.path("api.registry_dir") / victim / "model.joblib"
    model_file.write_bytes(model_file.read_bytes() + b"\x00")
    response = httpx.post(f"{base}/models/{victim}/promote", headers=AUTH)
    assert response.status_code == 409 and "sha256" in response.json()["error"], response.text
    assert httpx.get(f"{base}/models/current").json()["version"] == logreg_run["model_version"]
    with pytest.raises(IntegrityError):
        Registry(cfg.path("api.registry_dir")).load(victim)
    assert httpx.post(f"{base}/models/{logreg_run['model_version']}/promote", headers=AUTH).status_code == 200
    assert httpx.post(f"{base}/models/v20000101T000000000000Z-abcdef/promote", headers=AUTH).status_code == 404


def test_diagnose_subject(api, logreg_run):
    base, _, refs = api
    subject = refs[0].subject_id
    response = httpx.post(f"{base}/diagnose", json={"subject_id": subject})
    assert response.status_code == 200, response.text
    body = response.json()
    assert 0.0 <= body["probability_parkinsons"] <= 1.0 and body["model_version"] == logreg_run["model_version"]
    assert body["walks"] == sum(r.subject_id == subject for r in refs) and body["drivers"]
    assert body["usual_walks"] == sum(r.subject_id == subject and gaitpdb.is_usual_walk(r.walk_id) for r in refs)
    assert body["calibrated"] is True
    assert httpx.post(f"{base}/diagnose", json={"subject_id": "NoSuchSubject"}).status_code == 404
    assert httpx.post(f"{base}/diagnose", json={"subject_id": "x'; DROP TABLE y"}).status_code == 400


def test_diagnose_uploaded_walk(api, logreg_run):
    base, _, refs = api
    raw = gzip.decompress(refs[0].path.read_bytes())
    plain = httpx.post(f"{base}/diagnose/walk", content=raw, headers={"content-type": "text/plain"})
    assert plain.status_code == 200, plain.text
    multipart = httpx.post(f"{base}/diagnose/walk", files={"file": ("walk.txt.gz", gzip.compress(raw))})
    assert multipart.status_code == 200, multipart.text
    assert plain.json()["probability_parkinsons"] == pytest.approx(multipart.json()["probability_parkinsons"])


GOOD_LINE = "0.01" + "\t10.0" * 18


@pytest.mark.parametrize(
    "garbage,line",
    [
        (b"", 0),
        (b"\x00\xff\xfe binary junk", 1),
        (b"\x1f\x8b\x08\x00 not really gzip", 0),
        ((GOOD_LINE + "\n1 2 3\n").encode(), 2),
        ((GOOD_LINE + "\n" + "0.02" + "\tnan" * 18 + "\n").encode(), 2),
        ((GOOD_LINE + "\n" + "0.00" + "\t10.0" * 18 + "\n").encode(), 2),  # time goes back
        ((GOOD_LINE + "\n" + "0.02" + "\t1e9" * 18 + "\n").encode(), 2),  # impossible force
        ("\n".join(f"{k / 100:.2f}" + "\t10.0" * 18 for k in range(1, 500)).encode(), 0),  # standing, no strides
    ],
)
def test_garbage_uploads_get_422_with_the_line(api, logreg_run, garbage, line):
    base, _, _ = api
    response = httpx.post(
        f"{base}/diagnose/walk", content=garbage, headers={"content-type": "application/octet-stream"}
    )
    assert response.status_code == 422, response.text
    assert response.json()["line"] == line


def test_health_and_metrics(api, logreg_run):
    base, _, _ = api
    health = httpx.get(f"{base}/health").json()
    assert health["status"] == "ok" and health["cassandra"].startswith("ok") and health["mongo"].startswith("ok")
    text = httpx.get(f"{base}/metrics").text
    assert "gaitstream_api_model_loaded 1" in text


@pytest.mark.slow
def test_schemathesis_finds_no_server_error(api, logreg_run):
    """Property-based requests built from /schema (bounded examples per operation): never a 5xx."""
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings

    base, _, _ = api
    schema = schemathesis.openapi.from_url(f"{base}/schema/openapi.json")
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(
            max_examples=40,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def never_5xx(case):
            response = case.call(base_url=base, timeout=30)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}")

        never_5xx()
    assert not failures, "\n".join(failures[:10])
