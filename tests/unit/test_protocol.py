"""Guards of the evaluation protocol (issue 14): what would make a figure dishonest must fail here.

A split sharing a subject is refused (or, for the seed's comparison number, labelled leaky);
labels shuffled across subjects score at chance; the nested search and calibration never see the
outer test fold; models learn from usual walks only; demographics never enter the inputs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.pipeline import Pipeline

from gaitstream.gaitpdb import DUAL_TASK, RAS, USUAL, Subject, is_usual_walk, walk_condition
from model import evaluation, families, protocol
from model.families import Dataset
from model.labels import attach_labels
from model.nested import LeakySplitError, NestedCalibrated, check_subject_wise
from model.scoring import bootstrap_interval, fast_auc

# demographics.txt columns: none may ever be a model input
DEMOGRAPHICS = (
    "Gender",
    "Age",
    "Height",
    "Weight",
    "HoehnYahr",
    "UPDRS",
    "UPDRSM",
    "TUAG",
    *(f"Speed_{n:02d}" for n in (1, 2, 3, 4, 5, 6, 7, 10)),
)


def subjects(n: int = 60, signal: float = 1.5, seed: int = 0, rows_per_subject: int = 1) -> Dataset:
    """Synthetic subjects: column 0 is a row id, column 1 carries the label, the rest is noise."""
    rng = np.random.default_rng(seed)
    records, X = [], []
    for k in range(n):
        label = k % 2
        for _ in range(rows_per_subject):
            records.append({"subject_id": f"S{k:03d}", "study": ("Ga", "Ju", "Si")[k % 3], "pd": label})
            X.append([len(X), label * signal + rng.normal(), rng.normal(), rng.normal()])
    return Dataset(pd.DataFrame(records), np.array(X, dtype=float), ("row", "a", "b", "c"), "subject")


def test_usual_walk_rule():
    assert [
        walk_condition(w) for w in ("GaPt03_01", "GaCo02_02", "GaPt03_10", "JuCo01_01", "JuPt03_06", "SiPt10_01")
    ] == [USUAL, USUAL, DUAL_TASK, USUAL, RAS, USUAL]
    assert is_usual_walk("JuPt01_01.txt.gz") and not is_usual_walk("JuPt01_02")
    with pytest.raises(ValueError):
        walk_condition("demographics")


def test_models_learn_from_usual_walks_only_and_score_the_others_apart():
    walks = pd.DataFrame(
        {
            "subject_id": ["GaPt03", "GaPt03", "GaPt03", "GaCo01", "JuPt01", "JuPt01", "JuCo01"],
            "walk_id": ["GaPt03_01", "GaPt03_02", "GaPt03_10", "GaCo01_01", "JuPt01_01", "JuPt01_02", "JuCo01_01"],
            "cadence": [100.0, 110.0, 1e6, 90.0, 95.0, 1e6, 120.0],
        }
    )
    demographics = {s: Subject(s, s[:2], "Pt" in s) for s in walks["subject_id"]}
    labelled, _ = attach_labels(walks, demographics)
    td = protocol.training_data("gait", labelled, None)
    column = families.GAIT_COLUMNS.index("cadence")
    assert td.data.rows["subject_id"].tolist() == ["GaCo01", "GaPt03", "JuCo01", "JuPt01"]
    assert td.data.X[:, column].tolist() == [90.0, 105.0, 120.0, 95.0]  # the 1e6 walks are not in it
    assert set(td.other) == {DUAL_TASK, RAS} and td.other[RAS].rows["subject_id"].tolist() == ["JuPt01"]
    assert len(td.walks.y) == 5 and td.walks.row_kind == "walk"


def test_demographics_never_enter_the_inputs():
    for feature_set in ("windows", "gait", "both"):
        assert not {c.lower() for c in families.feature_columns(feature_set)} & {c.lower() for c in DEMOGRAPHICS}
    base = pd.DataFrame(
        {
            "subject_id": ["A", "B", "C", "D"],
            "walk_id": ["A_01", "B_01", "C_01", "D_01"],
            "study": "Si",
            "pd": [1, 0, 1, 0],
            "cadence": [100.0, 101.0, 102.0, 103.0],
        }
    )
    leaky = base.assign(**{c: base["pd"] * 10.0 for c in DEMOGRAPHICS})  # perfectly predictive, must be ignored
    for per in ("subject", "walk"):
        _, X_base, _ = families.design("gait", base, None, per=per)
        _, X_with, _ = families.design("gait", leaky, None, per=per)
        np.testing.assert_array_equal(X_base, X_with)
    kept, _ = attach_labels(
        base[["subject_id", "walk_id", "cadence"]], {s: Subject(s, "Si", s in "AC") for s in "ABCD"}
    )
    assert set(kept.columns) == {"subject_id", "walk_id", "cadence", "pd", "study"}  # labels add only pd and study


def test_a_split_sharing_a_subject_is_refused():
    data = subjects(n=20, rows_per_subject=2)
    train, test = np.arange(0, 30), np.arange(29, 40)  # rows 28/29 are subject S014: both sides
    with pytest.raises(LeakySplitError):
        check_subject_wise(train, test, data.groups)
    with pytest.raises(LeakySplitError):
        evaluation.fit_fold(families.build_model("logreg", seed=0, forest_trees=10), data, train, test)
    check_subject_wise(np.arange(0, 30), np.arange(30, 40), data.groups)  # a clean split passes


def test_the_seed_random_row_split_is_labelled_leaky():
    data = subjects(n=30, rows_per_subject=4)
    leaky = evaluation.leaky_random_row_split(families.build_model("knn", seed=0, forest_trees=10), data, seed=0)
    assert leaky["leaky"] is True and leaky["subjects_in_both"] > 0 and "both train and test" in leaky["warning"]


def test_labels_shuffled_across_subjects_score_at_chance():
    """Subject-wise CV under the null is known to sit a little below 0.5 (a training fold's
    chance correlation is mirrored in its test fold); a leak would push it far above."""
    data = subjects(n=120, signal=3.0)
    model = families.build_model("logreg", seed=0, forest_trees=10, inner_folds=3)
    honest = evaluation.subject_wise(model, data, folds=5, repeats=1, seed=0)["summary"]["subjects"]["roc_auc"]
    assert honest > 0.9  # the signal is real ...
    rng = np.random.default_rng(1)
    aucs = []
    for _ in range(4):
        shuffled = data.rows.assign(pd=rng.permutation(data.rows["pd"].to_numpy()))  # one label per subject, permuted
        result = evaluation.subject_wise(
            model, Dataset(shuffled, data.X, data.columns, "subject"), folds=5, repeats=1, seed=0
        )
        aucs.append(result["summary"]["subjects"]["roc_auc"])
    assert abs(np.mean(aucs) - 0.5) <= 0.1, aucs  # ... and without it nothing is left


class Spy(ClassifierMixin, BaseEstimator):
    """Logs the row ids (column 0) of every fit and every score call, in order."""

    log: list[tuple[str, frozenset]] = []

    def __init__(self, weight: float = 1.0):
        self.weight = weight

    def fit(self, X, y):
        Spy.log.append(("fit", frozenset(X[:, 0].astype(int).tolist())))
        self.classes_ = np.array([0, 1])
        return self

    def decision_function(self, X):
        Spy.log.append(("score", frozenset(X[:, 0].astype(int).tolist())))
        return self.weight * X[:, 1]


def test_nested_selection_never_sees_the_outer_test_fold():
    data = subjects(n=40, rows_per_subject=2)
    model = NestedCalibrated(Pipeline([("spy", Spy())]), {"spy__weight": [0.5, 1.0]}, inner_folds=3)
    Spy.log.clear()
    result = evaluation.subject_wise(model, data, folds=4, repeats=2, seed=3)
    log = list(Spy.log)
    for split in evaluation.subject_folds(data, 4, 2, 3):
        for train, test in split:
            train_ids, test_ids = frozenset(data.X[train, 0].astype(int)), frozenset(data.X[test, 0].astype(int))
            calls = 0
            while log[0] != ("score", test_ids):  # everything before the outer prediction is this fold's fitting
                kind, ids = log.pop(0)
                assert ids <= train_ids and not ids & test_ids, f"{kind} on outer test rows"
                calls += 1
            log.pop(0)
            assert calls > 2 * 3  # grid x inner folds, calibration, refit: the nested loop did run
    assert not log
    assert result["summary"]["subjects"]["roc_auc"] > 0.7
    fitted = evaluation.fit_fold(model, data, *evaluation.subject_folds(data, 4, 1, 0)[0][0])
    train_subjects = set(data.groups[evaluation.subject_folds(data, 4, 1, 0)[0][0][0]])
    assert set().union(*map(set, fitted.inner_test_groups_)) == train_subjects  # inner folds cover train only


def test_bootstrap_interval_and_fast_auc():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 30)
    p = np.round(y * 0.3 + rng.uniform(0, 0.7, 60), 1)  # ties on purpose
    from sklearn.metrics import roc_auc_score

    assert fast_auc(y, p) == pytest.approx(roc_auc_score(y, p))
    interval = bootstrap_interval(y, np.vstack([p, p]), seed=0, rounds=300)
    low, high = interval["roc_auc_ci"]
    assert low < roc_auc_score(y, p) < high and 0 <= interval["accuracy_ci"][0] <= interval["accuracy_ci"][1] <= 1
