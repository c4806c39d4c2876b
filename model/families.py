"""Model families and the design matrices of each feature set.

- ``windows``: the seed tutorial's inputs, one row per full 100-sample window, 18 channel means.
- ``gait``: one row per subject, the mean over the subject's walks of the gait-cycle features of
  ``model.features`` (without ``stride_count_*``: how long a protocol records, not how the
  subject walks).
- ``both``: gait features plus the walks' average window means, one row per subject.

Neither subject_id, walk_id, study nor any demographics column (UPDRS, Hoehn-Yahr, TUAG, speed...)
is ever a column of X. Every family except the seed's KNN is a :class:`model.nested.NestedCalibrated`:
its hyperparameters (and feature selection) are chosen by an inner subject-wise CV on its own
training rows, its probability is Platt-calibrated the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.feature_selection import SelectPercentile, f_classif
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from gaitstream.gaitpdb import FORCE_CHANNELS
from model.features import FEATURE_NAMES, window_means
from model.nested import NestedCalibrated

GAIT_COLUMNS = tuple(name for name in FEATURE_NAMES if not name.startswith("stride_count"))
WINDOW_COLUMNS = tuple(FORCE_CHANNELS)
MEAN_WINDOW_COLUMNS = tuple(f"window_mean_{c}" for c in FORCE_CHANNELS)
KNN_NEIGHBOURS = 5  # the seed's k, kept as the seed had it (a labelled baseline, not tuned)
INNER_FOLDS = 5


def _impute():
    return ("impute", SimpleImputer(strategy="median", keep_empty_features=True))


def _select():
    """Univariate feature selection; the kept share is a hyperparameter of the inner loop."""
    return ("select", SelectPercentile(f_classif))


def family_spec(family: str, *, seed: int, forest_trees: int) -> tuple[Pipeline, dict[str, list]]:
    """(unfitted pipeline, inner-loop grid) of a family. Grids are small: retrain stays < 30 s."""
    if family == "logreg":  # the baseline to beat: L2 logistic regression, C and selection inner
        pipeline = Pipeline(
            [
                _impute(),
                ("scale", StandardScaler()),
                _select(),
                ("logreg", LogisticRegression(solver="liblinear", random_state=seed)),
            ]
        )
        return pipeline, {"select__percentile": [10, 25, 100], "logreg__C": [0.01, 0.1, 1.0]}
    if family == "svm":
        pipeline = Pipeline([_impute(), ("scale", StandardScaler()), _select(), ("svm", SVC(kernel="rbf"))])
        return pipeline, {"select__percentile": [25, 100], "svm__C": [0.3, 1.0, 3.0]}
    if family == "gboost":
        # shallow, subsampled and short (60 trees): ~0.07 s a fit keeps its nested retrain under 30 s
        boost = GradientBoostingClassifier(
            n_estimators=60, max_depth=2, max_features="sqrt", subsample=0.8, random_state=seed
        )
        return Pipeline([_impute(), ("gboost", boost)]), {"gboost__learning_rate": [0.05, 0.15]}
    if family == "forest":  # fixed up front (a grid would cost minutes); calibrated on its out-of-bag votes
        forest = RandomForestClassifier(n_estimators=forest_trees, random_state=seed, n_jobs=2)
        return Pipeline([_impute(), ("forest", forest)]), {}
    raise ValueError(f"unknown model family {family!r}")


def build_model(family: str, *, seed: int, forest_trees: int, inner_folds: int = INNER_FOLDS):
    """An unfitted estimator. ``knn`` is the seed's baseline (plain pipeline, k=5, uncalibrated);
    every other family is nested-selected and calibrated on its own training rows."""
    if family == "knn":
        return Pipeline([_impute(), ("knn", KNeighborsClassifier(n_neighbors=KNN_NEIGHBOURS))])
    pipeline, grid = family_spec(family, seed=seed, forest_trees=forest_trees)
    return NestedCalibrated(pipeline, grid, inner_folds=inner_folds, seed=seed)


def fit(model, X: np.ndarray, y: np.ndarray, groups: np.ndarray):
    """Fit with subject groups where the estimator uses them (the nested inner split)."""
    if isinstance(model, NestedCalibrated):
        return model.fit(X, y, groups=groups)
    return model.fit(X, y)


def final_pipeline(model) -> Pipeline:
    """The fitted pipeline that makes the scores (inside the calibration wrapper, if any)."""
    return model.estimator_ if isinstance(model, NestedCalibrated) else model


def chosen_params(model) -> dict[str, str]:
    """Hyperparameters the inner loop chose, as strings (plain JSON for the run document)."""
    return {k: str(v) for k, v in getattr(model, "best_params_", {}).items()}


def feature_columns(feature_set: str) -> tuple[str, ...]:
    return {"windows": WINDOW_COLUMNS, "gait": GAIT_COLUMNS, "both": GAIT_COLUMNS + MEAN_WINDOW_COLUMNS}[feature_set]


@dataclass(frozen=True)
class Dataset:
    """Rows to learn from: ``rows`` holds subject_id, study, pd, ... (never used as features)."""

    rows: pd.DataFrame
    X: np.ndarray
    columns: tuple[str, ...]
    row_kind: str  # "subject", "walk" or "window"

    @property
    def y(self) -> np.ndarray:
        return self.rows["pd"].to_numpy(int)

    @property
    def groups(self) -> np.ndarray:
        return self.rows["subject_id"].to_numpy()


def _needed(windows: pd.DataFrame | None, feature_set: str) -> pd.DataFrame:
    """The window frame, which ``windows`` and ``both`` feature sets are built from."""
    if windows is None:
        raise ValueError(f"feature set {feature_set!r} needs the windows frame")
    return windows


def design(
    feature_set: str, walks: pd.DataFrame, windows: pd.DataFrame | None, per: str = "subject"
) -> tuple[pd.DataFrame, np.ndarray, str]:
    """(key rows, X, row kind) of a feature set, from walk-feature and window frames.

    ``windows`` rows are windows; ``gait``/``both`` rows are subjects (feature means over the given
    walks: pass usual walks only, see gaitstream.gaitpdb.walk_condition), or walks with per="walk".
    """
    columns = list(feature_columns(feature_set))
    if feature_set == "windows":
        frame = _needed(windows, feature_set).reset_index(drop=True)
        return frame, frame[columns].to_numpy(np.float64), "window"
    frame = walks.reindex(columns=list(dict.fromkeys(["subject_id", "walk_id", *walks.columns, *GAIT_COLUMNS])))
    if feature_set == "both":
        means = _needed(windows, feature_set).groupby(["subject_id", "walk_id"])[list(WINDOW_COLUMNS)].mean()
        means.columns = list(MEAN_WINDOW_COLUMNS)
        frame = frame.join(means, on=["subject_id", "walk_id"])
    if per == "subject":
        keys = {k: "first" for k in ("study", "pd") if k in frame.columns}
        frame = frame.groupby("subject_id", sort=True).agg(
            **{c: (c, "mean") for c in columns},
            **{k: (k, how) for k, how in keys.items()},
            walks=("walk_id", "count"),
            walk_ids=("walk_id", lambda ids: ",".join(sorted(ids))),
        )
        frame = frame.reset_index()
    frame = frame.reset_index(drop=True)
    return frame, frame[columns].to_numpy(np.float64), "subject" if per == "subject" else "walk"


def upload_features(feature_set: str, gait: dict[str, float], forces: np.ndarray) -> np.ndarray:
    """The model input rows for one uploaded walk: one row (gait, both) or one per full window."""
    if feature_set == "windows":
        rows = [w for w in window_means(np.arange(len(forces)), forces) if not w["partial"]]
        rows = rows or window_means(np.arange(len(forces)), forces)
        return np.array([[w[c] for c in WINDOW_COLUMNS] for w in rows], dtype=np.float64)
    values = dict(gait)
    if feature_set == "both":
        values.update(
            {f"window_mean_{c}": float(v) for c, v in zip(FORCE_CHANNELS, np.asarray(forces).mean(axis=0), strict=True)}
        )
    return np.array([[values.get(c, np.nan) for c in feature_columns(feature_set)]], dtype=np.float64)


def importances(model, columns: tuple[str, ...]) -> dict[str, float]:
    """Global weight of each input: boosting/forest impurity importance, |coefficient| of the scaled
    logistic regression (0 for inputs the inner selection dropped); none for KNN or the RBF SVM."""
    pipeline = final_pipeline(model)
    last = pipeline.steps[-1][1]
    if hasattr(last, "feature_importances_"):
        weights = last.feature_importances_
    elif hasattr(last, "coef_"):
        weights = np.abs(last.coef_[0])
    else:
        return {}
    if "select" in pipeline.named_steps:
        full = np.zeros(len(columns))
        full[pipeline.named_steps["select"].get_support()] = weights
        weights = full
    return {c: float(w) for c, w in zip(columns, weights, strict=True)}
