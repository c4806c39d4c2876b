"""Model families (scikit-learn Pipelines) and the design matrices of each feature set.

- ``windows``: the seed tutorial's inputs, one row per full 100-sample window, 18 channel means.
- ``gait``: one row per walk, the gait-cycle features of ``streaming.features`` (without
  ``stride_count_*``: how long a protocol records, not how the subject walks).
- ``both``: one row per walk, gait features plus the walk's average window means.

Neither subject_id nor walk_id is ever a column of X. Hyperparameters are fixed up front.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from gaitstream.gaitpdb import FORCE_CHANNELS
from streaming.features import FEATURE_NAMES, window_means

GAIT_COLUMNS = tuple(name for name in FEATURE_NAMES if not name.startswith("stride_count"))
WINDOW_COLUMNS = tuple(FORCE_CHANNELS)
MEAN_WINDOW_COLUMNS = tuple(f"window_mean_{c}" for c in FORCE_CHANNELS)
KNN_NEIGHBOURS = 5        # the seed's k
LOGREG_C = 0.1            # as in bench/features_quality.py, fixed before this service existed


def build_pipeline(family: str, *, seed: int, forest_trees: int) -> Pipeline:
    """An unfitted Pipeline; every family imputes first (partial walks can lack a feature)."""
    impute = ("impute", SimpleImputer(strategy="median", keep_empty_features=True))
    if family == "knn":  # the seed's baseline: k=5, no scaling
        return Pipeline([impute, ("knn", KNeighborsClassifier(n_neighbors=KNN_NEIGHBOURS))])
    if family == "forest":
        return Pipeline([impute, ("forest", RandomForestClassifier(n_estimators=forest_trees, random_state=seed, n_jobs=2))])
    if family == "logreg":
        return Pipeline([impute, ("scale", StandardScaler()), ("logreg", LogisticRegression(C=LOGREG_C, max_iter=2000))])
    raise ValueError(f"unknown model family {family!r}")


def feature_columns(feature_set: str) -> tuple[str, ...]:
    return {"windows": WINDOW_COLUMNS, "gait": GAIT_COLUMNS, "both": GAIT_COLUMNS + MEAN_WINDOW_COLUMNS}[feature_set]


@dataclass(frozen=True)
class Dataset:
    """Rows to learn from: ``rows`` holds subject_id, walk_id, study, pd (never used as features)."""

    rows: pd.DataFrame
    X: np.ndarray
    columns: tuple[str, ...]
    row_kind: str  # "window" or "walk"

    @property
    def y(self) -> np.ndarray:
        return self.rows["pd"].to_numpy(int)

    @property
    def groups(self) -> np.ndarray:
        return self.rows["subject_id"].to_numpy()


def design(feature_set: str, walks: pd.DataFrame, windows: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, str]:
    """(key rows, X, row kind) of a feature set, from walk-feature and window frames."""
    columns = list(feature_columns(feature_set))
    if feature_set == "windows":
        frame = windows.reset_index(drop=True)
        return frame, frame[columns].to_numpy(np.float64), "window"
    frame = walks.reindex(columns=list(dict.fromkeys(["subject_id", "walk_id", *walks.columns, *GAIT_COLUMNS])))
    if feature_set == "both":
        means = windows.groupby(["subject_id", "walk_id"])[list(WINDOW_COLUMNS)].mean()
        means.columns = list(MEAN_WINDOW_COLUMNS)
        frame = frame.join(means, on=["subject_id", "walk_id"])
    frame = frame.reset_index(drop=True)
    return frame, frame[columns].to_numpy(np.float64), "walk"


def upload_features(feature_set: str, gait: dict[str, float], forces: np.ndarray) -> np.ndarray:
    """The model input rows for one uploaded walk: one row (gait, both) or one per full window."""
    if feature_set == "windows":
        rows = [w for w in window_means(np.arange(len(forces)), forces) if not w["partial"]]
        rows = rows or window_means(np.arange(len(forces)), forces)
        return np.array([[w[c] for c in WINDOW_COLUMNS] for w in rows], dtype=np.float64)
    values = dict(gait)
    if feature_set == "both":
        values.update({f"window_mean_{c}": float(v) for c, v in zip(FORCE_CHANNELS, np.asarray(forces).mean(axis=0))})
    return np.array([[values.get(c, np.nan) for c in feature_columns(feature_set)]], dtype=np.float64)


def importances(pipeline: Pipeline, columns: tuple[str, ...]) -> dict[str, float]:
    """Global weight of each input: forest impurity importance, |coefficient| of the scaled logistic
    regression; none for KNN (it has no per-feature weight)."""
    last = pipeline.steps[-1][1]
    if hasattr(last, "feature_importances_"):
        weights = last.feature_importances_
    elif hasattr(last, "coef_"):
        weights = np.abs(last.coef_[0])
    else:
        return {}
    return {c: float(w) for c, w in zip(columns, weights)}
