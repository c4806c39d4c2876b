"""Honest evaluation: folds split by subject, metrics per row (window/walk) and per subject.

Every function takes (pipeline, dataset, splitter parameters), so the subject-wise split cannot be
forgotten. Results are plain JSON (float/int/None/str), ready for MongoDB and the API.
The random row split exists only as an extra, under the key ``leaky_random_row_split``.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import (accuracy_score, confusion_matrix, f1_score, precision_score, recall_score, roc_auc_score,
                             roc_curve)
from sklearn.model_selection import StratifiedGroupKFold, train_test_split

from api.models import Dataset

THRESHOLD = 0.5
SCALAR_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")


def classification_metrics(y_true: np.ndarray, proba: np.ndarray) -> dict[str, Any]:
    """The seed's metric set for the PD class (positive = Parkinson's), ROC-AUC on probabilities."""
    y_true = np.asarray(y_true, dtype=int)
    predicted = (np.asarray(proba) >= THRESHOLD).astype(int)
    tn, fp, fn, tp = (int(v) for v in confusion_matrix(y_true, predicted, labels=[0, 1]).ravel())
    both_classes = len(set(y_true.tolist())) == 2
    return {
        "n": int(len(y_true)),
        "accuracy": float(accuracy_score(y_true, predicted)),
        "precision": float(precision_score(y_true, predicted, zero_division=0)),
        "recall": float(recall_score(y_true, predicted, zero_division=0)),
        "f1": float(f1_score(y_true, predicted, zero_division=0)),
        "roc_auc": float(roc_auc_score(y_true, proba)) if both_classes else None,
        "confusion": {"tp": tp, "tn": tn, "fp": fp, "fn": fn},
    }


def per_subject(subject_ids: np.ndarray, y_true: np.ndarray, proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels and probabilities averaged over each subject's rows (one vote per subject)."""
    frame = pd.DataFrame({"subject": subject_ids, "y": y_true, "p": proba}).groupby("subject", sort=True).mean()
    return frame["y"].to_numpy(int), frame["p"].to_numpy(float)


def roc_points(y_true: np.ndarray, proba: np.ndarray) -> dict[str, list[float]] | None:
    """The ROC curve as two flat lists (FerretDB v1 stores no arrays of arrays); None with one class."""
    if len(set(np.asarray(y_true).tolist())) < 2:
        return None
    fpr, tpr, _ = roc_curve(y_true, proba)
    return {"fpr": [float(v) for v in fpr], "tpr": [float(v) for v in tpr]}


def row_and_subject_metrics(data: Dataset, index: np.ndarray, proba: np.ndarray) -> dict[str, Any]:
    y, groups = data.y[index], data.groups[index]
    return {"rows": classification_metrics(y, proba), "subjects": classification_metrics(*per_subject(groups, y, proba))}


def subject_folds(data: Dataset, folds: int, repeats: int, seed: int) -> list[list[tuple[np.ndarray, np.ndarray]]]:
    """Per repeat, the (train, test) row indices of StratifiedGroupKFold with groups = subject."""
    return [list(StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed + repeat)
                 .split(data.X, data.y, data.groups)) for repeat in range(repeats)]


def out_of_fold_proba(pipeline, data: Dataset, folds: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    proba = np.full(len(data.y), np.nan)
    for train, test in folds:
        model = clone(pipeline).fit(data.X[train], data.y[train])
        proba[test] = model.predict_proba(data.X[test])[:, 1]
    return proba


def subject_wise(pipeline, data: Dataset, folds: int, repeats: int, seed: int) -> dict[str, Any]:
    """Repeated subject-wise CV: per repeat, metrics of the pooled out-of-fold probabilities (with the
    per-subject ROC curve); and the mean/SD over repeats. ``folds`` records each fold's test subjects so anyone can recompute it."""
    per_repeat = []
    for repeat, split in enumerate(subject_folds(data, folds, repeats, seed)):
        proba = out_of_fold_proba(pipeline, data, split)
        metrics = row_and_subject_metrics(data, np.arange(len(data.y)), proba)
        metrics["subjects"]["roc_curve"] = roc_points(*per_subject(data.groups, data.y, proba))
        per_repeat.append({
            "seed": seed + repeat,
            **metrics,
            # {fold, subjects} objects, not nested arrays: FerretDB v1 cannot store arrays of arrays.
            "folds": [{"fold": k, "test_subjects": sorted(set(data.groups[test].tolist()))}
                      for k, (_, test) in enumerate(split)],
        })
    summary = {level: _mean_sd([r[level] for r in per_repeat]) for level in ("rows", "subjects")}
    return {"folds": folds, "repeats": repeats, "summary": summary, "per_repeat": per_repeat}


def _mean_sd(results: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in SCALAR_METRICS:
        values = [r[name] for r in results if r[name] is not None]
        out[name] = float(np.mean(values)) if values else None
        out[f"{name}_sd"] = float(np.std(values)) if values else None
    return out


def bias_variance(pipeline, data: Dataset, folds: int, seed: int, rounds: int) -> dict[str, Any]:
    """mlxtend bias_variance_decomp (0-1 loss) on the first subject-wise split of ``seed``."""
    from mlxtend.evaluate import bias_variance_decomp

    train, test = subject_folds(data, folds, 1, seed)[0][0]
    loss, bias, variance = bias_variance_decomp(
        clone(pipeline), data.X[train], data.y[train], data.X[test], data.y[test],
        loss="0-1_loss", num_rounds=rounds, random_seed=seed)
    return {"split": "subject-wise (first fold)", "num_rounds": rounds, "expected_loss": float(loss),
            "bias": float(bias), "variance": float(variance)}


def study_held_out(pipeline, data: Dataset) -> dict[str, Any]:
    """Train on two studies, test on the third: does the model learn the disease or the study?"""
    studies = data.rows["study"].to_numpy()
    out = {}
    for study in sorted(set(studies.tolist())):
        train, test = np.flatnonzero(studies != study), np.flatnonzero(studies == study)
        if len(set(data.y[train].tolist())) < 2:
            continue
        proba = clone(pipeline).fit(data.X[train], data.y[train]).predict_proba(data.X[test])[:, 1]
        out[study] = {"train_subjects": len(set(data.groups[train].tolist())),
                      "test_subjects": len(set(data.groups[test].tolist())),
                      **row_and_subject_metrics(data, test, proba)}
    return out


def leaky_random_row_split(pipeline, data: Dataset, seed: int) -> dict[str, Any]:
    """The seed tutorial's evaluation (random 80/20 split of rows): a subject's rows land on both
    sides, so this measures recognising subjects, not disease. Kept only for comparison."""
    train, test = train_test_split(np.arange(len(data.y)), test_size=0.2, random_state=seed, stratify=data.y)
    proba = clone(pipeline).fit(data.X[train], data.y[train]).predict_proba(data.X[test])[:, 1]
    shared = set(data.groups[train].tolist()) & set(data.groups[test].tolist())
    return {"warning": "rows of one subject are in both train and test", "subjects_in_both": len(shared),
            **row_and_subject_metrics(data, test, proba)}


def json_safe(value: Any) -> Any:
    """NaN/inf → None and numpy scalars → Python numbers, recursively (MongoDB and JSON need that)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
