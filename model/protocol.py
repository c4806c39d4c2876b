"""The evaluation protocol in one place, shared by POST /retrain and bench/features_quality.py.

Walking condition is confounded with diagnosis in gaitpdb (RAS walks exist only for Ju patients,
dual-task walks for 15 patients and 6 controls), so models learn from usual walks only
(:func:`gaitstream.gaitpdb.walk_condition`), one row per subject; every other condition is
scored by the out-of-fold models and reported apart. Each run reports the pooled repeated
subject-wise CV and leave-one-study-out side by side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from gaitstream.gaitpdb import USUAL, walk_condition
from model import evaluation, families
from model.families import Dataset


@dataclass(frozen=True)
class TrainingData:
    data: Dataset
    """What models learn from: usual walks, one row per subject (``windows``: per window)."""
    walks: Dataset
    """The same usual walks one row per walk (or window): the leaky split's rows."""
    other: dict[str, Dataset] = field(default_factory=dict)
    """Other walking conditions (dual_task, ras), never trained on."""
    without_usual_walk: list[str] = field(default_factory=list)
    """Subjects with walks but no usual walk: not in training data."""


def _dataset(feature_set: str, walks: pd.DataFrame, windows: pd.DataFrame | None, per: str) -> Dataset:
    rows, X, kind = families.design(feature_set, walks, windows, per=per)
    return Dataset(rows, X, families.feature_columns(feature_set), kind)


def training_data(feature_set: str, walks: pd.DataFrame, windows: pd.DataFrame | None) -> TrainingData:
    """Split labelled walk (and window) frames by walking condition and build the design matrices."""
    condition = walks["walk_id"].map(walk_condition)
    window_condition = windows["walk_id"].map(walk_condition) if windows is not None else None

    def part(which) -> tuple[pd.DataFrame, pd.DataFrame | None]:
        chosen = walks.loc[which(condition)]
        return chosen, (windows.loc[which(window_condition)] if windows is not None else None)

    usual_walks, usual_windows = part(lambda c: c == USUAL)
    data = _dataset(feature_set, usual_walks, usual_windows, "subject")
    walk_rows = _dataset(feature_set, usual_walks, usual_windows, "walk")
    other = {}
    for name in sorted(set(condition) - {USUAL}):
        other_walks, other_windows = part(lambda c, name=name: c == name)
        if len(other_walks):
            other[name] = _dataset(feature_set, other_walks, other_windows, "subject")
    missing = sorted(set(walks["subject_id"]) - set(usual_walks["subject_id"]))
    return TrainingData(data, walk_rows, other, missing)


def evaluate(
    model,
    td: TrainingData,
    *,
    folds: int,
    repeats: int,
    seed: int,
    full: bool = True,
    bias_variance_rounds: int = 0,
    n_jobs: int = 1,
) -> dict[str, Any]:
    """Every figure of a run: pooled nested subject-wise CV (+ other conditions), study held out,
    and with ``full`` the labelled leaky row split; bias/variance if rounds > 0."""
    metrics: dict[str, Any] = {
        "subject_wise": evaluation.subject_wise(model, td.data, folds, repeats, seed, extra=td.other, n_jobs=n_jobs)
    }
    metrics["other_conditions"] = metrics["subject_wise"].pop("other_conditions", {})
    metrics["study_held_out"] = evaluation.study_held_out(model, td.data, seed, n_jobs=n_jobs)
    if bias_variance_rounds > 0:
        metrics["bias_variance"] = evaluation.bias_variance(model, td.data, folds, seed, bias_variance_rounds)
    if full:
        metrics["leaky_random_row_split"] = evaluation.leaky_random_row_split(model, td.walks, seed)
    return metrics
