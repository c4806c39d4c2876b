"""Scoring with a registered model: one implementation for the API and the streaming job.

* a **walk**: its gait-feature map (as :func:`model.features.gait_features` or the stream's
  ``walk_features`` rows hold it) → one input row → calibrated probability;
* a **subject**: as in training, the mean of the subject's usual walks' features (every walk if
  none is usual, see :func:`gaitstream.gaitpdb.is_usual_walk`) → one row → probability.

Only the gait-feature sets can be scored from feature maps; a ``windows`` or ``both`` model needs
the walk's samples (the upload route has them), so :func:`check_scorable` refuses it with
:class:`model.errors.Unscorable` where only features exist (the stream).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from gaitstream.gaitpdb import is_usual_walk
from model.errors import Unscorable
from model.registry import LoadedModel

THRESHOLD = 0.5
FEATURE_SETS_FROM_MAPS = ("gait",)


def label(probability: float) -> str:
    return "parkinsons" if probability >= THRESHOLD else "control"


def probability(model: LoadedModel, X: np.ndarray) -> float:
    """Mean calibrated probability of Parkinson's over the input rows."""
    return float(np.mean(model.pipeline.predict_proba(X)[:, 1]))


def check_scorable(model: LoadedModel) -> None:
    if model.meta["feature_set"] not in FEATURE_SETS_FROM_MAPS:
        raise Unscorable(
            f"model {model.version} uses feature set {model.meta['feature_set']!r}, which needs the "
            f"walk's samples; only {', '.join(FEATURE_SETS_FROM_MAPS)} models score stored features"
        )


def walk_row(model: LoadedModel, features: Mapping[str, float]) -> np.ndarray:
    """One (1, n) input row in the model's column order; a feature the map lacks is NaN (imputed)."""
    return np.array([[features.get(name, np.nan) for name in model.meta["features"]]], dtype=np.float64)


def walk_probability(model: LoadedModel, features: Mapping[str, float]) -> float:
    check_scorable(model)
    return probability(model, walk_row(model, features))


def subject_walks(walk_ids: Sequence[str]) -> list[int]:
    """Positions of the walks a subject is scored on: the usual ones, or all if none is usual."""
    usual = [i for i, walk_id in enumerate(walk_ids) if is_usual_walk(walk_id)]
    return usual or list(range(len(walk_ids)))


def subject_row(model: LoadedModel, walks: Sequence[Mapping[str, float]]) -> np.ndarray:
    """The subject's input row: per feature, the mean over the walks that have it (NaN if none),
    exactly as :func:`model.families.design` averages a subject's walks for training."""
    X = np.vstack([walk_row(model, features) for features in walks])
    finite = ~np.isnan(X)
    counts = finite.sum(axis=0)
    sums = np.where(finite, X, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)[None, :]


def subject_inputs(
    model: LoadedModel, walk_ids: Sequence[str], walks: Sequence[Mapping[str, float]]
) -> tuple[np.ndarray, list[int]]:
    """(input row, positions of the walks used) for a subject's walks (ids and feature maps)."""
    check_scorable(model)
    used = subject_walks(walk_ids)
    return subject_row(model, [walks[i] for i in used]), used


def subject_probability(
    model: LoadedModel, walk_ids: Sequence[str], walks: Sequence[Mapping[str, float]]
) -> tuple[float, list[int]]:
    """(probability, positions of the walks used) for a subject's walks (ids and feature maps)."""
    X, used = subject_inputs(model, walk_ids, walks)
    return probability(model, X), used
