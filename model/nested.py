"""A classifier whose hyperparameters and calibration are chosen on its own training rows only.

:class:`NestedCalibrated` is what the evaluation fits inside each outer fold (and what the
registry stores): a GridSearchCV over an inner StratifiedGroupKFold by subject, then Platt
scaling fitted on the inner out-of-fold scores of the chosen configuration. So selection and
calibration never see the outer test fold, and /diagnose gets a calibrated probability.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold, StratifiedKFold


class LeakySplitError(ValueError):
    """A split puts rows of one subject on both sides: it would measure recognising people."""


def check_subject_wise(train: np.ndarray, test: np.ndarray, groups: np.ndarray) -> None:
    """Refuse a (train, test) split that shares a subject."""
    shared = set(np.asarray(groups)[train].tolist()) & set(np.asarray(groups)[test].tolist())
    if shared:
        raise LeakySplitError(f"{len(shared)} subject(s) in both train and test, e.g. {sorted(shared)[:3]}")


def group_splits(y: np.ndarray, groups: np.ndarray, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Inner subject-wise splits: StratifiedGroupKFold; fewer folds when a class has few subjects.

    On a handful of subjects StratifiedGroupKFold can leave a fold with one class (no ROC-AUC, no
    fit); then the subjects themselves are split with StratifiedKFold (exact for one label per subject).
    """
    y, groups = np.asarray(y), np.asarray(groups)
    per_class = min(len(set(groups[y == label].tolist())) for label in (0, 1))
    # at least two subjects of each class in every test fold, so each fold has an ROC-AUC
    n_splits = max(2, min(folds, per_class // 2))
    splits = list(
        StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed).split(np.zeros(len(y)), y, groups)
    )
    if any(len(set(y[part].tolist())) < 2 for split in splits for part in split):
        subjects, first = np.unique(groups, return_index=True)
        by_subject = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed).split(subjects, y[first])
        splits = [
            (np.flatnonzero(np.isin(groups, subjects[a])), np.flatnonzero(np.isin(groups, subjects[b])))
            for a, b in by_subject
        ]
    for train, test in splits:
        check_subject_wise(train, test, groups)
    return splits


def scores(estimator, X: np.ndarray) -> np.ndarray:
    """A real-valued score per row: decision_function, else the log-odds of predict_proba."""
    if hasattr(estimator, "decision_function"):
        return np.asarray(estimator.decision_function(X), dtype=float)
    p = np.clip(estimator.predict_proba(X)[:, 1], 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


class NestedCalibrated(ClassifierMixin, BaseEstimator):
    """Inner subject-wise grid search (ROC-AUC), refit on all rows, Platt-scaled probabilities.

    ``fit(X, y, groups)``: groups are subject ids; without them each row is its own subject
    (right for one-row-per-subject data). An empty ``grid`` skips the search, not the calibration.
    """

    def __init__(self, pipeline=None, grid=None, inner_folds: int = 5, seed: int = 0):
        self.pipeline, self.grid, self.inner_folds, self.seed = pipeline, grid, inner_folds, seed

    def fit(self, X, y, groups=None):
        X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=int)
        groups = np.arange(len(y)) if groups is None else np.asarray(groups)
        splits = group_splits(y, groups, self.inner_folds, self.seed)
        self.inner_test_groups_ = [sorted(set(groups[test].tolist())) for _, test in splits]
        with warnings.catch_warnings():  # constant columns in a small fold: f_classif warns, result is fine
            warnings.simplefilter("ignore", RuntimeWarning)
            warnings.simplefilter("ignore", UserWarning)
            if self.grid:
                search = GridSearchCV(
                    clone(self.pipeline), self.grid, cv=splits, scoring="roc_auc", error_score="raise"
                )
                search.fit(X, y)
                self.best_params_ = dict(search.best_params_)
                self.inner_auc_: float | None = float(search.best_score_)
            else:
                self.best_params_, self.inner_auc_ = {}, None
            best = clone(self.pipeline).set_params(**self.best_params_)
            fitted = None
            if self._use_oob(groups):  # a bagged model's out-of-bag votes: subject-wise scores for free
                fitted = best.set_params(**{f"{best.steps[-1][0]}__oob_score": True}).fit(X, y)
                votes = np.nan_to_num(fitted.steps[-1][1].oob_decision_function_[:, 1], nan=0.5)
                votes = np.clip(votes, 1e-3, 1 - 1e-3)
                inner = np.log(votes / (1 - votes))
            else:
                inner = np.empty(len(y))
                for train, test in splits:
                    inner[test] = scores(clone(best).fit(X[train], y[train]), X[test])
            # Platt on standardised scores: the mild L2 of C=1 then shrinks alike whatever the score scale
            self.score_center_, self.score_scale_ = float(inner.mean()), float(inner.std()) or 1.0
            self.calibrator_ = LogisticRegression(C=1.0, solver="newton-cholesky").fit(self._z(inner), y)
            if self.calibrator_.coef_[0, 0] < 0:
                # inner scores ranking the classes backwards mean "no signal", not "flip the model"
                # (flipping turns the known negative bias of CV under the null into a worse one)
                prevalence = float(np.clip(y.mean(), 1e-3, 1 - 1e-3))
                self.calibrator_.coef_[:] = 0.0
                self.calibrator_.intercept_[:] = np.log(prevalence / (1 - prevalence))
            self.estimator_ = fitted if fitted is not None else best.fit(X, y)
        self.classes_ = self.estimator_.classes_
        return self

    def _use_oob(self, groups: np.ndarray) -> bool:
        """Out-of-bag calibration: only without a grid, for a bagged final step, one row per subject
        (a bootstrap over rows is then a bootstrap over subjects)."""
        last = self.pipeline.steps[-1][1]
        return not self.grid and "oob_score" in last.get_params() and len(set(groups.tolist())) == len(groups)

    def decision_function(self, X) -> np.ndarray:
        return scores(self.estimator_, np.asarray(X, dtype=float))

    def _z(self, score: np.ndarray) -> np.ndarray:
        return ((score - self.score_center_) / self.score_scale_)[:, None]

    def predict_proba(self, X) -> np.ndarray:
        return self.calibrator_.predict_proba(self._z(self.decision_function(X)))

    def predict(self, X) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)
