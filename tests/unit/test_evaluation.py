"""model.evaluation and model.families on synthetic rows: the split is subject-wise, metrics are sklearn's.

The protocol's guards (leaky split refused, shuffled labels at chance, nested selection blind to
the outer test fold, usual walks only, no demographics) are in test_protocol.py."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, brier_score_loss, f1_score, precision_score, recall_score, roc_auc_score

from gaitstream.gaitpdb import FORCE_CHANNELS, Subject
from model import evaluation, families
from model.families import Dataset
from model.labels import attach_labels


def synthetic(n_subjects: int = 30, rows_per_subject: int = 4, seed: int = 0) -> Dataset:
    """Subjects with a few rows each; label-correlated first column, three studies."""
    rng = np.random.default_rng(seed)
    records, X = [], []
    for k in range(n_subjects):
        label = k % 2
        for r in range(rows_per_subject):
            records.append(
                {"subject_id": f"S{k:03d}", "walk_id": f"S{k:03d}_{r}", "study": ("Ga", "Ju", "Si")[k % 3], "pd": label}
            )
            X.append([label + rng.normal(0, 0.8), rng.normal(), rng.normal()])
    return Dataset(pd.DataFrame(records), np.array(X), ("a", "b", "c"), "walk")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_leakage_guard_no_subject_on_both_sides_of_any_fold(seed):
    data = synthetic(n_subjects=37, rows_per_subject=3, seed=seed)
    for split in evaluation.subject_folds(data, folds=5, repeats=3, seed=seed):
        tested = []
        for train, test in split:
            assert set(data.groups[train]).isdisjoint(data.groups[test])
            tested.extend(set(data.groups[test]))
        assert sorted(tested) == sorted(set(data.groups)), "each subject is tested exactly once per repeat"


def test_metrics_are_sklearns_on_probabilities():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 200)
    proba = np.clip(y * 0.3 + rng.uniform(0, 0.7, 200), 0, 1)
    got = evaluation.classification_metrics(y, proba)
    predicted = proba >= 0.5
    assert got["accuracy"] == accuracy_score(y, predicted)
    assert got["precision"] == precision_score(y, predicted)
    assert got["recall"] == recall_score(y, predicted)
    assert got["f1"] == f1_score(y, predicted)
    assert got["roc_auc"] == roc_auc_score(y, proba)  # on probabilities, not on 0/1 predictions
    assert got["brier"] == pytest.approx(brier_score_loss(y, proba))
    c = got["confusion"]
    assert c["tp"] + c["fn"] == y.sum() and c["tn"] + c["fp"] == (1 - y).sum()
    json.dumps(got, allow_nan=False)  # plain JSON numbers only
    assert all(type(v) in (int, float) for v in (*c.values(), got["accuracy"], got["roc_auc"]))


def test_per_subject_averages_probabilities():
    y_subjects, p_subjects = evaluation.per_subject(
        np.array(["b", "a", "a", "b"]), np.array([0, 1, 1, 0]), np.array([0.2, 0.9, 0.5, 0.4])
    )
    assert y_subjects.tolist() == [1, 0] and p_subjects.tolist() == pytest.approx([0.7, 0.3])


def test_one_class_gives_no_auc_instead_of_crashing():
    assert evaluation.classification_metrics(np.ones(5, int), np.full(5, 0.9))["roc_auc"] is None


def nested(family: str = "logreg"):
    return families.build_model(family, seed=0, forest_trees=10, inner_folds=3)


def test_subject_wise_records_folds_summary_interval_and_calibration():
    data = synthetic()
    result = evaluation.subject_wise(nested(), data, folds=3, repeats=2, seed=5)
    assert [r["seed"] for r in result["per_repeat"]] == [5, 6]
    summary = result["summary"]
    assert summary["subjects"]["roc_auc"] > 0.7  # the first column carries the label
    low, high = summary["subjects"]["interval"]["roc_auc_ci"]
    assert low <= summary["subjects"]["roc_auc"] <= high
    curve = summary["calibration"]["reliability"]
    assert len(curve["mean_predicted"]) == len(curve["fraction_parkinsons"]) == len(curve["count"])
    assert sum(curve["count"]) == 30 * 2  # every subject once per repeat
    assert all(len(r["chosen"]) == 3 and "logreg__C" in r["chosen"][0] for r in result["per_repeat"])
    text = json.dumps(evaluation.json_safe(result), allow_nan=False)
    assert "[[" not in text  # FerretDB v1 stores no arrays of arrays


def test_leaky_split_is_labelled_and_study_held_out_per_study():
    data = synthetic()
    leaky = evaluation.leaky_random_row_split(families.build_model("knn", seed=0, forest_trees=10), data, seed=0)
    assert leaky["subjects_in_both"] > 0 and "warning" in leaky and leaky["leaky"] is True
    held_out = evaluation.study_held_out(nested(), data)
    assert set(held_out) == {"Ga", "Ju", "Si"}
    assert all(r["test_subjects"] == 10 and r["train_subjects"] == 20 for r in held_out.values())
    assert all(
        r["subjects"]["interval"]["roc_auc_ci"] is not None and "logreg__C" in r["chosen"] for r in held_out.values()
    )


def test_bias_variance_is_plain_floats():
    data = synthetic()
    result = evaluation.bias_variance(nested("forest"), data, folds=3, seed=0, rounds=3)
    assert all(isinstance(result[k], float) for k in ("expected_loss", "bias", "variance"))


def test_json_safe_converts_numpy_and_nan():
    out = evaluation.json_safe({"a": np.float64(1.5), "b": [np.int64(2), float("nan")], "c": {"d": np.inf}})
    assert out == {"a": 1.5, "b": [2, None], "c": {"d": None}} and type(out["b"][0]) is int


def test_labels_come_from_demographics_and_unlabelled_subjects_are_excluded():
    rows = pd.DataFrame({"subject_id": ["GaPt03", "GaCo01", "Mystery1"], "walk_id": ["w1", "w2", "w3"]})
    demographics = {"GaPt03": Subject("GaPt03", "Ga", True), "GaCo01": Subject("GaCo01", "Ga", False)}
    kept, unlabelled = attach_labels(rows, demographics)
    assert kept["pd"].tolist() == [1, 0] and unlabelled == ["Mystery1"]


def test_design_never_uses_identifiers_as_features():
    walks = pd.DataFrame({"subject_id": ["A", "B"], "walk_id": ["A_1", "B_1"], "cadence": [100.0, 110.0]})
    windows = pd.DataFrame(
        [
            {"subject_id": s, "walk_id": f"{s}_1", "window_index": i, **{c: 1.0 for c in FORCE_CHANNELS}}
            for s in "AB"
            for i in range(3)
        ]
    )
    for feature_set in ("windows", "gait", "both"):
        for per in ("subject", "walk"):
            rows, X, kind = families.design(feature_set, walks, windows, per=per)
            columns = families.feature_columns(feature_set)
            assert X.shape == (len(rows), len(columns)) and not {"subject_id", "walk_id", "study"} & set(columns)
            assert kind == ("window" if feature_set == "windows" else per)
    assert not any(c.startswith("stride_count") for c in families.GAIT_COLUMNS)


def test_subject_roc_curve_is_stored_and_its_area_is_the_auc():
    data = synthetic()
    result = evaluation.subject_wise(nested(), data, folds=3, repeats=2, seed=5)
    for repeat in result["per_repeat"]:
        curve = repeat["subjects"]["roc_curve"]
        assert curve["fpr"][0] == 0.0 and curve["tpr"][-1] == 1.0 and len(curve["fpr"]) == len(curve["tpr"])
        assert np.trapz(curve["tpr"], curve["fpr"]) == pytest.approx(repeat["subjects"]["roc_auc"])
    assert evaluation.roc_points(np.ones(4, int), np.full(4, 0.5)) is None


def test_subject_rows_are_means_of_the_given_walks():
    walks = pd.DataFrame(
        {
            "subject_id": ["A", "A", "B"],
            "walk_id": ["A_1", "A_2", "B_1"],
            "study": "Ga",
            "pd": [1, 1, 0],
            "cadence": [100.0, 110.0, 90.0],
        }
    )
    rows, X, kind = families.design("gait", walks, None)
    column = families.GAIT_COLUMNS.index("cadence")
    assert kind == "subject" and rows["subject_id"].tolist() == ["A", "B"] and rows["walks"].tolist() == [2, 1]
    assert X[:, column].tolist() == [105.0, 90.0] and rows["pd"].tolist() == [1, 0]


@pytest.mark.parametrize("family", ["logreg", "svm", "gboost", "forest"])
def test_nested_families_give_calibrated_probabilities_and_their_choice(family):
    data = synthetic(n_subjects=40, rows_per_subject=1)
    model = families.fit(nested(family), data.X, data.y, data.groups)
    proba = model.predict_proba(data.X)[:, 1]
    assert ((proba > 0) & (proba < 1)).all() and model.predict(data.X).tolist() == (proba >= 0.5).astype(int).tolist()
    assert set(families.chosen_params(model)) == set(families.family_spec(family, seed=0, forest_trees=10)[1])
    weights = families.importances(model, data.columns)
    assert family == "svm" or set(weights) == set(data.columns)
