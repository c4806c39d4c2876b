"""Honest evaluation: folds split by subject, selection nested inside them, metrics per row and per subject.

Every protocol takes (model, dataset, splitter parameters), so the subject-wise split cannot be
forgotten, and every outer split is checked (:func:`model.nested.check_subject_wise`: a split that
shares a subject raises). The model's own hyperparameter search and calibration run inside
``fit`` on the outer training rows only (:class:`model.nested.NestedCalibrated`).
Results are plain JSON. The random row split exists only as an extra, under ``leaky_random_row_split``.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.model_selection import StratifiedGroupKFold, train_test_split

from model import families
from model.families import Dataset
from model.nested import check_subject_wise
from model.scoring import (
    bootstrap_interval,
    classification_metrics,
    per_subject,
    reliability,  # noqa: F401
    roc_points,
)

SCALAR_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "brier")


def row_and_subject_metrics(data: Dataset, index: np.ndarray, proba: np.ndarray) -> dict[str, Any]:
    y, groups = data.y[index], data.groups[index]
    return {
        "rows": classification_metrics(y, proba),
        "subjects": classification_metrics(*per_subject(groups, y, proba)),
    }


def subject_folds(data: Dataset, folds: int, repeats: int, seed: int) -> list[list[tuple[np.ndarray, np.ndarray]]]:
    """Per repeat, the (train, test) row indices of StratifiedGroupKFold with groups = subject."""
    return [
        list(
            StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed + repeat).split(
                data.X, data.y, data.groups
            )
        )
        for repeat in range(repeats)
    ]


def fit_fold(model, data: Dataset, train: np.ndarray, test: np.ndarray):
    """A fresh clone fitted on the outer training rows only (refused if the split shares a subject)."""
    check_subject_wise(train, test, data.groups)
    return families.fit(clone(model), data.X[train], data.y[train], data.groups[train])


def _outer_fold(model, data: Dataset, train, test, extra: dict[str, Dataset]):
    fitted = fit_fold(model, data, train, test)
    tested = set(data.groups[test].tolist())
    extra_proba = {}
    for name, other in extra.items():
        rows = np.flatnonzero(np.isin(other.groups, list(tested)))
        extra_proba[name] = (rows, fitted.predict_proba(other.X[rows])[:, 1] if len(rows) else np.empty(0))
    return fitted.predict_proba(data.X[test])[:, 1], extra_proba, families.chosen_params(fitted)


def subject_wise(
    model, data: Dataset, folds: int, repeats: int, seed: int, extra: dict[str, Dataset] | None = None, n_jobs: int = 1
) -> dict[str, Any]:
    """Repeated subject-wise CV (nested: the model selects and calibrates inside each outer fold).

    Per repeat: metrics of the pooled out-of-fold probabilities (per subject: ROC curve, Brier),
    each fold's test subjects and chosen hyperparameters. Summary: mean/SD over repeats, a bootstrap
    95% interval of per-subject AUC and accuracy, and the out-of-fold reliability curve.
    ``extra`` (other walking conditions) is scored by the model of the fold holding each subject out.
    """
    extra = extra or {}
    splits = subject_folds(data, folds, repeats, seed)
    jobs = [(r, k, train, test) for r, split in enumerate(splits) for k, (train, test) in enumerate(split)]
    results = Parallel(n_jobs=n_jobs)(
        delayed(_outer_fold)(model, data, train, test, extra) for _, _, train, test in jobs
    )
    per_repeat, subject_probas = [], []
    extra_probas = {name: np.full((repeats, len(other.y)), np.nan) for name, other in extra.items()}
    for repeat, split in enumerate(splits):
        proba = np.full(len(data.y), np.nan)
        chosen = []
        for (r, k, _, test), (fold_proba, fold_extra, params) in zip(jobs, results, strict=True):
            if r != repeat:
                continue
            proba[test] = fold_proba
            chosen.append({"fold": k, **params})
            for name, (rows, values) in fold_extra.items():
                extra_probas[name][repeat, rows] = values
        metrics = row_and_subject_metrics(data, np.arange(len(data.y)), proba)
        y_subjects, p_subjects = per_subject(data.groups, data.y, proba)
        subject_probas.append(p_subjects)
        metrics["subjects"]["roc_curve"] = roc_points(y_subjects, p_subjects)
        per_repeat.append(
            {
                "seed": seed + repeat,
                **metrics,
                "chosen": chosen,
                # {fold, subjects} objects, not nested arrays: FerretDB v1 cannot store arrays of arrays.
                "folds": [
                    {"fold": k, "test_subjects": sorted(set(data.groups[test].tolist()))}
                    for k, (_, test) in enumerate(split)
                ],
            }
        )
    summary = {level: _mean_sd([r[level] for r in per_repeat]) for level in ("rows", "subjects")}
    y_subjects = per_subject(data.groups, data.y, np.zeros(len(data.y)))[0]
    summary["subjects"]["interval"] = bootstrap_interval(y_subjects, np.array(subject_probas), seed)
    pooled = np.concatenate(subject_probas)
    summary["calibration"] = {
        "brier": summary["subjects"]["brier"],
        "level": "subjects, out of fold, all repeats",
        "reliability": reliability(np.tile(y_subjects, repeats), pooled),
    }
    subject_ids = sorted(set(data.groups.tolist()))
    result = {
        "folds": folds,
        "repeats": repeats,
        "summary": summary,
        "per_repeat": per_repeat,
        "out_of_fold": {
            "subject_ids": subject_ids,
            "y": y_subjects.tolist(),
            "probability": np.mean(subject_probas, axis=0).tolist(),
        },
    }
    if extra:
        usual = dict(zip(subject_ids, np.mean(subject_probas, axis=0), strict=True))
        result["other_conditions"] = {
            name: _condition(other, extra_probas[name], usual) for name, other in extra.items()
        }
    return result


def _condition(other: Dataset, probas: np.ndarray, usual: dict[str, float]) -> dict[str, Any]:
    """Per-subject metrics of one other walking condition (probabilities averaged over repeats),
    beside the same subjects' usual-walk figure."""
    with warnings.catch_warnings():  # a subject no fold held out (no usual walk) stays NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(probas, axis=0) if len(other.y) else np.empty(0)
    scored = ~np.isnan(mean)
    out: dict[str, Any] = {
        "rows": int(len(other.y)),
        "row_kind": other.row_kind,
        "unscored_subjects": sorted(set(other.groups[~scored].tolist())),
    }
    if not scored.any():
        return out
    y, p = per_subject(other.groups[scored], other.y[scored], mean[scored])
    ids = sorted(set(other.groups[scored].tolist()))
    out["subjects"] = classification_metrics(y, p)
    out["classes"] = {"parkinsons": int(y.sum()), "control": int((y == 0).sum())}
    out["mean_probability"] = {
        "parkinsons": float(p[y == 1].mean()) if y.any() else None,
        "control": float(p[y == 0].mean()) if (y == 0).any() else None,
    }
    out["usual_walks_same_subjects"] = classification_metrics(y, np.array([usual[s] for s in ids]))
    return out


def _mean_sd(results: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in SCALAR_METRICS:
        values = [r[name] for r in results if r[name] is not None]
        out[name] = float(np.mean(values)) if values else None
        out[f"{name}_sd"] = float(np.std(values)) if values else None
    return out


def bias_variance(model, data: Dataset, folds: int, seed: int, rounds: int) -> dict[str, Any]:
    """mlxtend bias_variance_decomp (0-1 loss) on the first subject-wise split of ``seed``, of the
    configuration the inner loop chose on that split's training rows (one search, not one per round)."""
    from mlxtend.evaluate import bias_variance_decomp

    train, test = subject_folds(data, folds, 1, seed)[0][0]
    chosen = fit_fold(model, data, train, test)
    loss, bias, variance = bias_variance_decomp(
        clone(families.final_pipeline(chosen)),
        data.X[train],
        data.y[train],
        data.X[test],
        data.y[test],
        loss="0-1_loss",
        num_rounds=rounds,
        random_seed=seed,
    )
    return {
        "split": "subject-wise (first fold)",
        "num_rounds": rounds,
        "expected_loss": float(loss),
        "bias": float(bias),
        "variance": float(variance),
        "chosen": families.chosen_params(chosen),
    }


def _held_out_study(model, data: Dataset, study: str, seed: int) -> dict[str, Any]:
    studies = data.rows["study"].to_numpy()
    train, test = np.flatnonzero(studies != study), np.flatnonzero(studies == study)
    fitted = fit_fold(model, data, train, test)
    proba = fitted.predict_proba(data.X[test])[:, 1]
    metrics = row_and_subject_metrics(data, test, proba)
    metrics["subjects"]["interval"] = bootstrap_interval(*per_subject(data.groups[test], data.y[test], proba), seed)
    return {
        "train_subjects": len(set(data.groups[train].tolist())),
        "test_subjects": len(set(data.groups[test].tolist())),
        "chosen": families.chosen_params(fitted),
        **metrics,
    }


def study_held_out(model, data: Dataset, seed: int = 0, n_jobs: int = 1) -> dict[str, Any]:
    """Train on two studies (nested selection inside them), test on the third: does the model
    learn the disease or the study? Per-subject metrics with a bootstrap 95% interval."""
    studies = data.rows["study"].to_numpy()
    held = [s for s in sorted(set(studies.tolist())) if len(set(data.y[studies != s].tolist())) == 2]
    results = Parallel(n_jobs=n_jobs)(delayed(_held_out_study)(model, data, s, seed) for s in held)
    return dict(zip(held, results, strict=True))


def leaky_random_row_split(model, data: Dataset, seed: int) -> dict[str, Any]:
    """The seed tutorial's evaluation (random 80/20 split of walk or window rows): a subject's rows
    land on both sides, so this measures recognising subjects, not disease. Kept only for comparison,
    labelled, and never through :func:`fit_fold` (which would refuse it)."""
    train, test = train_test_split(np.arange(len(data.y)), test_size=0.2, random_state=seed, stratify=data.y)
    fitted = families.fit(clone(model), data.X[train], data.y[train], data.groups[train])
    proba = fitted.predict_proba(data.X[test])[:, 1]
    shared = set(data.groups[train].tolist()) & set(data.groups[test].tolist())
    return {
        "warning": "rows of one subject are in both train and test",
        "leaky": True,
        "subjects_in_both": len(shared),
        "row_kind": data.row_kind,
        **row_and_subject_metrics(data, test, proba),
    }


def json_safe(value: Any) -> Any:
    """NaN/inf → None and numpy scalars → Python numbers, recursively (MongoDB and JSON need that)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
