"""The trainer on a small synthetic feature table, with a fake Cassandra store and the real run
store over a fake Mongo client: what a run records, what it registers, and how it fails."""

from __future__ import annotations

import functools
import time

import pytest
from cassandra.cluster import NoHostAvailable
from pymongo.errors import ServerSelectionTimeoutError
from sklearn.dummy import DummyClassifier

from api.runs import FAILED, SUCCEEDED, RunStore
from api.training import Trainer, TrainingParams
from model import evaluation, scoring
from model.registry import CHAMPION, Registry
from tests.unit.fakes import FakeCassandraStore, FakeMongoClient, api_settings, gait_table

PARAMS = TrainingParams(family="knn", feature_set="gait", evaluation="full", seed=0, promote=False)


@pytest.fixture(autouse=True)
def fast_bootstrap(monkeypatch):
    """50 bootstrap rounds instead of 1000 for the AUC intervals: the same code, a faster test."""
    monkeypatch.setattr(evaluation, "bootstrap_interval", functools.partial(scoring.bootstrap_interval, rounds=50))


def run_store(client: FakeMongoClient | None = None) -> RunStore:
    return RunStore(client or FakeMongoClient(), "gaitstream_unit", "runs")


def wait_finished(runs: RunStore, run_id: str, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        doc = runs.get(run_id)
        if doc["status"] in (SUCCEEDED, FAILED):
            return doc
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} still {runs.get(run_id)['status']} after {timeout} s")


@pytest.fixture
def trainer_for(tmp_path):
    """Builds a Trainer over the given fakes; closed at the end of the test."""
    trainers = []

    def make(store, labels, runs: RunStore | None = None, **overrides) -> tuple[Trainer, RunStore, Registry]:
        settings = api_settings(tmp_path, labels, **overrides)
        runs = runs or run_store()
        registry = Registry(settings.registry_dir)
        trainers.append(Trainer(settings, store, runs, registry))
        return trainers[-1], runs, registry

    yield make
    for trainer in trainers:
        trainer.close()


def test_run_registers_a_model_with_subject_wise_metrics_and_its_lineage(trainer_for):
    walks, labels = gait_table()
    unlabelled = {**walks[0], "subject_id": "GaPt99", "walk_id": "GaPt99_01"}
    unfinished = {**walks[1], "walk_id": walks[1]["subject_id"] + "_03", "final": False}
    trainer, runs, registry = trainer_for(FakeCassandraStore(walks + [unlabelled, unfinished]), labels)
    run_id = trainer.submit(PARAMS)
    doc = wait_finished(runs, run_id)
    assert doc["status"] == SUCCEEDED, doc["error"]
    assert trainer.running is None

    version = doc["model_version"]
    assert registry.versions() == [version] and registry.aliases() == {CHAMPION: version}, "first model is promoted"
    assert doc["promoted"] is True and doc["timings"]["total_s"] > 0

    subject_wise = doc["metrics"]["subject_wise"]
    assert subject_wise["folds"] == 3
    for repeat in subject_wise["per_repeat"]:
        tested = [s for fold in repeat["folds"] for s in fold["test_subjects"]]
        assert sorted(tested) == sorted(labels), "every labelled subject tested exactly once per repeat"
    assert subject_wise["out_of_fold"]["subject_ids"] == sorted(labels)
    assert subject_wise["summary"]["subjects"]["roc_auc"] > 0.8  # ten features carry the label
    assert set(doc["metrics"]["study_held_out"]) == {"Ga", "Ju", "Si"}

    data = doc["data"]
    assert data["excluded_subject_ids"] == ["GaPt99"] and data["unfinished_walks_skipped"] == 1
    assert data["subjects"] == len(labels) and data["other_conditions"] == {"dual_task": 8}

    meta = registry.meta(version)
    assert meta["run_id"] == run_id and meta["family"] == "knn" and meta["feature_set"] == "gait"
    assert meta["metrics"]["subject_wise"]["subjects"]["roc_auc"] == subject_wise["summary"]["subjects"]["roc_auc"]
    trained_on = set(meta["lineage"]["training_walks"])
    assert trained_on == {w["walk_id"] for w in walks if not w["walk_id"].endswith("_10")}, "usual walks only"


def test_second_run_does_not_move_the_champion_unless_asked(trainer_for):
    walks, labels = gait_table(per_class_per_study=2)
    trainer, runs, registry = trainer_for(FakeCassandraStore(walks), labels)
    champion = registry.save(DummyClassifier().fit([[0], [1]], [0, 1]), {"family": "dummy"}, run_id="aaaaaa")
    registry.promote(champion)
    quick = TrainingParams(family="knn", feature_set="gait", evaluation="subject_kfold", seed=0, promote=False)
    run = wait_finished(runs, trainer.submit(quick))
    assert run["status"] == SUCCEEDED and run["promoted"] is False
    assert registry.current_version() == champion and registry.versions() == [champion, run["model_version"]]


@pytest.mark.parametrize(
    "store, overrides, reason",
    [
        (
            FakeCassandraStore(down=NoHostAvailable("Unable to connect to any servers", {"127.0.0.1:9042": "refused"})),
            {},
            "NoHostAvailable: ('Unable to connect to any servers'",
        ),
        (None, {"cv_folds": 5}, "ValueError: too few labelled subjects for 5-fold subject-wise CV"),
    ],
)
def test_failed_run_is_recorded_failed_with_its_reason_and_registers_nothing(trainer_for, store, overrides, reason):
    walks, labels = gait_table(per_class_per_study=1)  # 3 patients, 3 controls
    trainer, runs, registry = trainer_for(store or FakeCassandraStore(walks), labels, **overrides)
    run_id = trainer.submit(PARAMS)
    doc = wait_finished(runs, run_id)
    assert doc["status"] == FAILED and doc["error"].startswith(reason) and doc["finished_at"]
    assert doc["model_version"] is None and registry.versions() == []
    assert trainer.running is None, "the lock is released: the next run may start"


def test_run_store_down_at_submit_starts_nothing_and_keeps_the_lock_free(trainer_for):
    walks, labels = gait_table(per_class_per_study=2)
    client = FakeMongoClient(down=ServerSelectionTimeoutError("localhost:27017: connection refused"))
    trainer, runs, registry = trainer_for(FakeCassandraStore(walks), labels, runs=run_store(client))
    with pytest.raises(ServerSelectionTimeoutError):
        trainer.submit(PARAMS)
    assert trainer.running is None
    client.down = None  # FerretDB back: the next request is accepted (and cancelled at close)
    assert runs.get(trainer.submit(PARAMS))["params"]["family"] == "knn"


def test_interrupted_runs_of_a_previous_process_are_marked_failed():
    runs = run_store()
    runs.create("aaaaaa01", {})
    runs.create("aaaaaa02", {})
    runs.update("aaaaaa02", status=SUCCEEDED)
    assert runs.fail_unfinished("interrupted") == 1
    assert runs.get("aaaaaa01")["status"] == FAILED and runs.get("aaaaaa01")["error"] == "interrupted"
    assert runs.get("aaaaaa02")["status"] == SUCCEEDED
