"""The API's rules over HTTP (Litestar's TestClient), the app built with in-memory backends:
bad bodies are 400 naming the field, unknown things 404, a database down 503 with the backend,
the reason and Retry-After, mutating routes need the token. No service runs."""

from __future__ import annotations

import functools
import gzip
import shutil
import time
from pathlib import Path

import pytest
from cassandra.cluster import NoHostAvailable
from litestar.testing import TestClient
from pymongo.errors import ServerSelectionTimeoutError

from api.app import create_app
from api.runs import RunStore
from api.training import TrainingParams, train
from gaitstream import config
from model import evaluation, scoring
from model.registry import Registry
from tests.unit.fakes import FakeCassandraStore, FakeMongoClient, api_settings, gait_table

TOKEN = "unit-token"  # api_settings' token
AUTH = {"Authorization": f"Bearer {TOKEN}"}
WALKS, LABELS = gait_table(per_class_per_study=2)
CASSANDRA_DOWN = NoHostAvailable("Unable to connect to any servers", {"127.0.0.1:9042": "Connection refused"})
MONGO_DOWN = ServerSelectionTimeoutError("localhost:27017: [Errno 111] Connection refused")


@pytest.fixture(autouse=True)
def fast_bootstrap(monkeypatch):
    """50 bootstrap rounds instead of 1000 for the AUC intervals: the same code, a faster test."""
    monkeypatch.setattr(evaluation, "bootstrap_interval", functools.partial(scoring.bootstrap_interval, rounds=50))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A registry holding one champion, made by the real trainer on the synthetic table."""
    root = tmp_path_factory.mktemp("trained")
    settings = api_settings(root, LABELS)
    runs = RunStore(FakeMongoClient(), settings.mongo_database, settings.runs_collection)
    runs.create("abcdef000001", {})
    params = TrainingParams(family="knn", feature_set="gait", evaluation="subject_kfold", seed=0, promote=True)
    result = train(settings, FakeCassandraStore(WALKS), runs, Registry(settings.registry_dir), "abcdef000001", params)
    return settings.registry_dir, result["model_version"]


@pytest.fixture(scope="module")
def cfg():
    return config.load(env={})


@pytest.fixture
def api(cfg, tmp_path):
    """``api(store=, mongo=, model=<registry to copy>, **settings)`` → a started TestClient over fakes."""
    clients: list[TestClient] = []

    def start(
        store: FakeCassandraStore | None = None,
        mongo: FakeMongoClient | None = None,
        model: Path | None = None,
        **overrides,
    ) -> TestClient:
        settings = api_settings(tmp_path / f"api{len(clients)}", LABELS, **overrides)
        if model is not None:
            shutil.copytree(model, settings.registry_dir)
        store = store if store is not None else FakeCassandraStore(WALKS)
        runs = RunStore(mongo or FakeMongoClient(), settings.mongo_database, settings.runs_collection)
        app = create_app(cfg, settings, backends=lambda _cfg, _settings: (store, runs, store.close))
        client = TestClient(app)
        clients.append(client.__enter__())
        return client

    yield start
    for client in clients:
        client.__exit__(None, None, None)


def wait_run(client: TestClient, run_id: str, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = client.get(f"/runs/{run_id}").json()
        if run["status"] in ("succeeded", "failed"):
            return run
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} not finished after {timeout} s")


# --- 400: bad bodies ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "method, path, body, field",
    [
        ("post", "/retrain", {"family": "nope"}, "family"),
        ("post", "/retrain", {"feature_set": "audio"}, "feature_set"),
        ("post", "/retrain", {"seed": -1}, "seed"),
        ("post", "/retrain", {"promote": True, "extra": 1}, "extra"),
        ("post", "/diagnose", {"subject_id": "../../etc/passwd"}, "subject_id"),
        ("post", "/diagnose", {}, "subject_id"),
        ("put", "/models/aliases/challenger", {"version": "latest"}, "version"),
    ],
)
def test_bad_body_is_400_naming_the_field_at_fault(api, trained, method, path, body, field):
    client = api(model=trained[0])
    answer = client.request(method, path, json=body, headers=AUTH)
    assert answer.status_code == 400, answer.text
    assert field in answer.text and "Validation failed" in answer.json()["detail"]


def test_body_that_is_not_json_is_400(api):
    answer = api().post("/retrain", content=b"family=knn", headers={**AUTH, "Content-Type": "application/json"})
    assert answer.status_code == 400 and answer.json()["detail"].startswith("JSON is malformed")


GOOD_LINE = b"0.01\t" + b"\t".join([b"100"] * 18) + b"\n"


@pytest.mark.parametrize(
    "upload, line, error",
    [
        (b"1 2 3\n", 1, "expected 19 columns, found 3"),
        (GOOD_LINE + b"0.02\tabc\n", 2, "expected 19 columns, found 2"),
        (b"\x1f\x8b" + b"not gzip", 0, "not a valid gzip file"),
    ],
)
def test_malformed_walk_upload_is_422_naming_the_line(api, trained, upload, line, error):
    answer = api(model=trained[0]).post("/diagnose/walk", content=upload)
    assert answer.status_code == 422, answer.text
    assert answer.json()["line"] == line and error in answer.json()["error"]


def test_upload_beyond_the_size_limit_is_refused_gzipped_or_not(api, trained):
    client = api(model=trained[0], max_upload_bytes=20_000)
    assert client.post("/diagnose/walk", content=GOOD_LINE * 400).status_code == 413
    bomb = gzip.compress(GOOD_LINE * 20_000)  # ~1 MB of text in a few KB
    assert len(bomb) < 20_000
    answer = client.post("/diagnose/walk", content=bomb)
    assert answer.status_code == 422 and answer.json()["error"] == "upload larger than 20000 bytes"


# --- 404: unknown things ------------------------------------------------------------------------
def test_unknown_subject_is_404_a_known_one_is_scored_with_the_champion(api, trained):
    registry_dir, version = trained
    client = api(model=registry_dir)
    missing = client.post("/diagnose", json={"subject_id": "GaPt99"})
    assert missing.status_code == 404 and missing.json() == {"error": "no walks of subject 'GaPt99' in Cassandra"}
    known = client.post("/diagnose", json={"subject_id": "GaPt01"})
    assert known.status_code == 200, known.text
    body = known.json()
    assert body["model_version"] == version and body["walks"] == 3 and body["usual_walks"] == 2
    assert body["prediction"] == "parkinsons" and 0.5 <= body["probability_parkinsons"] <= 1.0


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("get", "/runs/0123456789abcdef", None),
        ("post", "/models/v20250101T000000000000Z-abcdef/promote", None),
        ("put", "/models/aliases/challenger", {"version": "v20250101T000000000000Z-abcdef"}),
    ],
)
def test_unknown_run_or_version_is_404_with_a_message(api, trained, method, path, body):
    answer = api(model=trained[0]).request(method, path, json=body, headers=AUTH)
    assert answer.status_code == 404, answer.text
    assert answer.json()["error"].startswith(("no run", "no model version"))


def test_no_model_promoted_yet_is_503_saying_what_to_do(api):
    answer = api().post("/diagnose", json={"subject_id": "GaPt01"})
    assert answer.status_code == 503 and "POST /retrain" in answer.json()["error"]
    assert api().get("/models/current").status_code == 404


# --- 503: a database down -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "down, method, path, body, backend, reason",
    [
        ("cassandra", "post", "/diagnose", {"subject_id": "GaPt01"}, "cassandra", "NoHostAvailable: "),
        ("cassandra", "get", "/dashboard/walks", None, "cassandra", "NoHostAvailable: "),
        ("mongo", "get", "/runs", None, "mongodb", "ServerSelectionTimeoutError: localhost:27017"),
        ("mongo", "post", "/retrain", {}, "mongodb", "ServerSelectionTimeoutError: localhost:27017"),
    ],
)
def test_backend_down_is_503_with_backend_reason_and_retry_after(
    api, trained, down, method, path, body, backend, reason
):
    store = FakeCassandraStore(WALKS, down=CASSANDRA_DOWN if down == "cassandra" else None)
    mongo = FakeMongoClient(down=MONGO_DOWN if down == "mongo" else None)
    client = api(store=store, mongo=mongo, model=trained[0])
    answer = client.request(method, path, json=body, headers=AUTH)
    assert answer.status_code == 503, answer.text
    assert answer.headers["Retry-After"] == "5"
    assert answer.json()["backend"] == backend and answer.json()["reason"].startswith(reason)
    assert "retry later" in answer.json()["error"]


def test_backend_back_answers_again_without_restarting_the_api(api, trained):
    store = FakeCassandraStore(WALKS, down=CASSANDRA_DOWN)
    client = api(store=store, model=trained[0])
    assert client.post("/diagnose", json={"subject_id": "GaPt01"}).status_code == 503
    store.down = None
    assert client.post("/diagnose", json={"subject_id": "GaPt01"}).status_code == 200


def test_health_is_503_naming_the_database_that_is_down(api, trained):
    health = api(mongo=FakeMongoClient(down=MONGO_DOWN), model=trained[0]).get("/health")
    assert health.status_code == 503 and health.json()["status"] == "down"
    assert health.json()["mongo"].startswith("down (ServerSelectionTimeoutError") and health.json()[
        "cassandra"
    ].startswith("ok")
    assert api(model=trained[0]).get("/health").json()["status"] == "ok"


# --- 401: the token -----------------------------------------------------------------------------
MUTATING = [
    ("post", "/retrain", {}),
    ("post", "/models/{version}/promote", None),
    ("put", "/models/aliases/challenger", {"version": "{version}"}),
    ("post", "/models/aliases/champion/rollback", None),
    ("delete", "/models/aliases/champion", None),
]


@pytest.mark.parametrize("method, path, body", MUTATING)
def test_mutating_routes_need_the_token_and_change_nothing_without_it(api, trained, method, path, body):
    registry_dir, version = trained
    client = api(model=registry_dir)
    before = client.get("/models/aliases").json()
    body = {"version": version} if body and "version" in body else body
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}, {"Authorization": "Basic x"}):
        answer = client.request(method, path.format(version=version), json=body, headers=headers)
        assert answer.status_code == 401 and answer.headers["WWW-Authenticate"] == "Bearer", headers
        assert answer.json() == {"error": "missing or invalid bearer token"}
    assert client.get("/models/aliases").json() == before and client.get("/runs").json() == []
    assert client.request(method, path.format(version=version), json=body, headers=AUTH).status_code != 401


def test_empty_configured_token_locks_the_mutating_routes(api, trained):
    client = api(model=trained[0], token="")
    assert client.post("/retrain", json={}, headers={"Authorization": "Bearer "}).status_code == 401
    assert client.post("/retrain", json={}, headers={"Authorization": "Bearer x"}).status_code == 401


def test_health_reads_need_the_token_only_beyond_loopback(api, trained):
    assert api(model=trained[0]).get("/runs").status_code == 200
    exposed = api(model=trained[0], reads_need_token=True)
    assert exposed.get("/runs").status_code == 401
    assert exposed.post("/diagnose", json={"subject_id": "GaPt01"}).status_code == 401
    assert exposed.get("/runs", headers=AUTH).status_code == 200
    assert exposed.get("/models").status_code == 200, "the model list has no health data"


# --- retrain: 202, poll, 409 --------------------------------------------------------------------
def test_retrain_answers_202_then_the_run_succeeds_and_its_model_is_served(api):
    client = api()
    accepted = client.post("/retrain", json={"promote": True}, headers=AUTH)
    assert accepted.status_code == 202, accepted.text
    run_id = accepted.json()["run_id"]
    assert accepted.json()["status_url"] == f"/runs/{run_id}"
    run = wait_run(client, run_id)
    assert run["status"] == "succeeded", run["error"]
    assert run["params"]["family"] == "knn" and run["metrics"]["subject_wise"]["folds"] == 3
    current = client.get("/models/current").json()
    assert current["version"] == run["model_version"] and current["run_id"] == run_id
    assert client.post("/diagnose", json={"subject_id": "GaCo01"}).json()["model_version"] == run["model_version"]


def test_second_retrain_while_one_runs_is_409_with_the_running_id(api):
    store = FakeCassandraStore(WALKS)
    store.release.clear()  # the first run waits in its Cassandra read
    client = api(store=store)
    first = client.post("/retrain", json={}, headers=AUTH).json()["run_id"]
    second = client.post("/retrain", json={}, headers=AUTH)
    assert second.status_code == 409 and second.json()["running_run_id"] == first
    assert [run["run_id"] for run in client.get("/runs").json()] == [first], "the refused request left no run"
    store.down = CASSANDRA_DOWN  # the first run now fails as it reads
    store.release.set()
    failed = wait_run(client, first)
    assert failed["status"] == "failed" and failed["error"].startswith("NoHostAvailable")
    assert client.post("/retrain", json={}, headers=AUTH).status_code == 202, "a failed run frees the lock"
