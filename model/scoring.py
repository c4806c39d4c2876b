"""Metrics on out-of-fold probabilities: the seed's set, Brier, reliability, bootstrap intervals.

Everything returns plain JSON (float/int/None, flat lists: FerretDB v1 stores no arrays of arrays).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn.metrics import (
    accuracy_score,
    brier_score_loss,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)

THRESHOLD = 0.5
RELIABILITY_BINS = 10
BOOTSTRAP_ROUNDS = 1000


def classification_metrics(y_true: np.ndarray, proba: np.ndarray) -> dict[str, Any]:
    """The seed's metric set for the PD class (positive = Parkinson's), ROC-AUC on probabilities, Brier."""
    y_true = np.asarray(y_true, dtype=int)
    proba = np.asarray(proba, dtype=float)
    predicted = (proba >= THRESHOLD).astype(int)
    tn, fp, fn, tp = (int(v) for v in confusion_matrix(y_true, predicted, labels=[0, 1]).ravel())
    both_classes = len(set(y_true.tolist())) == 2
    return {
        "n": int(len(y_true)),
        "accuracy": float(accuracy_score(y_true, predicted)),
        "precision": float(precision_score(y_true, predicted, zero_division=0)),
        "recall": float(recall_score(y_true, predicted, zero_division=0)),
        "f1": float(f1_score(y_true, predicted, zero_division=0)),
        "roc_auc": float(roc_auc_score(y_true, proba)) if both_classes else None,
        "brier": float(brier_score_loss(y_true, proba, pos_label=1)) if len(y_true) else None,
        "confusion": {"tp": tp, "tn": tn, "fp": fp, "fn": fn},
    }


def per_subject(subject_ids: np.ndarray, y_true: np.ndarray, proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels and probabilities averaged over each subject's rows (one vote per subject), by subject id."""
    frame = pd.DataFrame({"subject": subject_ids, "y": y_true, "p": proba}).groupby("subject", sort=True).mean()
    return frame["y"].to_numpy(int), frame["p"].to_numpy(float)


def roc_points(y_true: np.ndarray, proba: np.ndarray) -> dict[str, list[float]] | None:
    """The ROC curve as two flat lists; None with one class."""
    if len(set(np.asarray(y_true).tolist())) < 2:
        return None
    fpr, tpr, _ = roc_curve(y_true, proba)
    return {"fpr": [float(v) for v in fpr], "tpr": [float(v) for v in tpr]}


def reliability(y_true: np.ndarray, proba: np.ndarray, bins: int = RELIABILITY_BINS) -> dict[str, list]:
    """Reliability curve on equal-width probability bins (empty bins left out): per bin the mean
    predicted probability, the observed share of Parkinson's, and the count."""
    y_true, proba = np.asarray(y_true, dtype=float), np.asarray(proba, dtype=float)
    which = np.minimum((proba * bins).astype(int), bins - 1)
    out: dict[str, list] = {"mean_predicted": [], "fraction_parkinsons": [], "count": []}
    for b in range(bins):
        mask = which == b
        if mask.any():
            out["mean_predicted"].append(float(proba[mask].mean()))
            out["fraction_parkinsons"].append(float(y_true[mask].mean()))
            out["count"].append(int(mask.sum()))
    return out


def fast_auc(y: np.ndarray, p: np.ndarray) -> float:
    """ROC-AUC by the rank-sum (Mann-Whitney) identity; ties count half, as in sklearn."""
    positives = y == 1
    n1, n0 = int(positives.sum()), int((~positives).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    return float((rankdata(p)[positives].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def bootstrap_interval(y: np.ndarray, probas: np.ndarray, seed: int, rounds: int = BOOTSTRAP_ROUNDS) -> dict[str, Any]:
    """95% percentile intervals of per-subject ROC-AUC and accuracy, resampling subjects with
    replacement within each class. ``probas`` is (repeats, subjects): each resample's value is
    the mean over repeats, like the point estimate."""
    y = np.asarray(y, dtype=int)
    probas = np.atleast_2d(np.asarray(probas, dtype=float))
    rng = np.random.default_rng(seed)
    classes = [np.flatnonzero(y == label) for label in (0, 1)]
    if any(len(c) == 0 for c in classes):
        return {"rounds": rounds, "roc_auc_ci": None, "accuracy_ci": None}
    aucs, accs = np.empty(rounds), np.empty(rounds)
    for r in range(rounds):
        index = np.concatenate([rng.choice(c, len(c), replace=True) for c in classes])
        yy = y[index]
        aucs[r] = np.mean([fast_auc(yy, p[index]) for p in probas])
        accs[r] = np.mean([np.mean((p[index] >= THRESHOLD) == yy) for p in probas])
    return {
        "rounds": rounds,
        "roc_auc_ci": [float(v) for v in np.percentile(aucs, [2.5, 97.5])],
        "accuracy_ci": [float(v) for v in np.percentile(accs, [2.5, 97.5])],
    }
