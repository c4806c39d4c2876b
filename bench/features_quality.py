"""How well do the gait features separate PD from controls, per subject, with nothing leaking?

Computes ``model.features.gait_features`` (whatever version is present) and the seed's window
means for every walk file, then runs the service's own protocol (:mod:`model.protocol`, what
POST /retrain runs) for each model family and prints ONE table: model x protocol x per-subject
accuracy and ROC-AUC with bootstrap 95% intervals, and Brier score.

- training rows: usual walks only (gaitstream.gaitpdb.walk_condition), one row per subject;
- pooled: StratifiedGroupKFold by subject, 5 folds x 5 repeats, hyperparameters, feature selection
  and calibration chosen inside each outer fold (model.nested), metrics averaged over repeats;
- held out Ga/Ju/Si: trained (nested) on the two other studies;
- dual_task / ras: the other walking conditions, scored by the out-of-fold models, never trained on;
- knn5: the seed tutorial's model on 100-sample window means (usual walks), same splits, labelled.

Targets (issue 14): pooled AUC >= 0.93, every held-out study AUC >= 0.90, accuracy >= 0.88.
Run: var/venv/bin/python bench/features_quality.py [--families logreg,svm] [--repeats 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from gaitstream.gaitpdb import list_walks, read_demographics, read_walk  # noqa: E402
from model import families, protocol  # noqa: E402
from model.features import gait_features, window_means  # noqa: E402
from model.labels import attach_labels  # noqa: E402
from model.scoring import BOOTSTRAP_ROUNDS  # noqa: E402

DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "gaitpdb"
FAMILIES = ("knn", "logreg", "svm", "gboost")  # forest: add with --families (slow, fixed trees)
FOREST_TREES = 300
TARGET_AUC_POOLED, TARGET_AUC_STUDY, TARGET_ACCURACY = 0.93, 0.90, 0.88


def _walk_rows(ref) -> tuple[dict, list[dict]]:
    walk = read_walk(ref)
    meta = {"walk_id": ref.walk_id, "subject_id": ref.subject_id}
    windows = [{**meta, **w} for w in window_means(np.arange(len(walk)), walk.forces) if not w["partial"]]
    return {**meta, **gait_features(walk.time, walk.forces)}, windows


def load(data_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Labelled walk-feature and window frames, shaped like the Cassandra tables the API reads."""
    refs, _missing = list_walks(data_dir)
    with ProcessPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(_walk_rows, refs, chunksize=8))
    demographics = read_demographics(data_dir)
    walks, _ = attach_labels(pd.DataFrame([r[0] for r in results]), demographics)
    windows, _ = attach_labels(pd.DataFrame([w for r in results for w in r[1]]), demographics)
    return walks, windows


def _ci(interval: dict | None, key: str) -> str:
    ci = (interval or {}).get(key)
    return f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else f"{'':>14}"


def _num(value, width: int = 7) -> str:
    return f"{value:>{width}.3f}" if value is not None and np.isfinite(value) else f"{'n/a':>{width}}"


def rows_of(family: str, metrics: dict, td: protocol.TrainingData) -> list[tuple]:
    """(model, protocol, subjects, PD, acc, acc CI, AUC, AUC CI, Brier) rows of one family's run."""
    label = "knn5 (seed baseline)" if family == "knn" else family
    data = td.data.rows.groupby("subject_id").agg(pd=("pd", "first"), study=("study", "first"))
    sw = metrics["subject_wise"]["summary"]["subjects"]
    out = [
        (
            label,
            f"pooled usual walks {metrics['subject_wise']['folds']}x{metrics['subject_wise']['repeats']}",
            len(data),
            int(data["pd"].sum()),
            sw["accuracy"],
            _ci(sw["interval"], "accuracy_ci"),
            sw["roc_auc"],
            _ci(sw["interval"], "roc_auc_ci"),
            sw["brier"],
        )
    ]
    for study, held in metrics["study_held_out"].items():
        s = held["subjects"]
        out.append(
            (
                label,
                f"held out {study} (train other 2)",
                held["test_subjects"],
                s["confusion"]["tp"] + s["confusion"]["fn"],
                s["accuracy"],
                _ci(s["interval"], "accuracy_ci"),
                s["roc_auc"],
                _ci(s["interval"], "roc_auc_ci"),
                s["brier"],
            )
        )
    for name, cond in metrics["other_conditions"].items():
        s = cond.get("subjects")
        if s:
            out.append(
                (
                    label,
                    f"{name} walks (out of fold)",
                    s["n"],
                    cond["classes"]["parkinsons"],
                    s["accuracy"],
                    _ci(None, ""),
                    s["roc_auc"],
                    _ci(None, ""),
                    s["brier"],
                )
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    started = time.perf_counter()
    walks, windows = load(args.data_dir)
    loaded = time.perf_counter() - started
    gait = protocol.training_data("gait", walks, None)
    window_data = protocol.training_data("windows", walks, windows)
    table, timings = [], {}
    for family in args.families.split(","):
        td = window_data if family == "knn" else gait
        model = families.build_model(family, seed=args.seed, forest_trees=FOREST_TREES)
        t0 = time.perf_counter()
        metrics = protocol.evaluate(
            model, td, folds=args.folds, repeats=args.repeats, seed=args.seed, full=False, n_jobs=args.jobs
        )
        t1 = time.perf_counter()
        families.fit(model, td.data.X, td.data.y, td.data.groups)
        timings[family] = (t1 - t0, time.perf_counter() - t1)
        table.extend(rows_of(family, metrics, td))
    subjects = gait.data.rows
    print(
        f"{len(walks)} walk files, {len(gait.walks.y)} usual walks of {len(subjects)} subjects "
        f"({int(subjects['pd'].sum())} PD); {len(gait.data.columns)} gait features; no usual walk: "
        f"{', '.join(gait.without_usual_walk) or 'none'}; features computed in {loaded:.0f} s\n"
    )
    print(
        f"{'model':<21}{'protocol':<32}{'subj':>5}{'PD':>4}{'acc':>8} {'acc 95% CI':<16}{'ROC-AUC':>8} "
        f"{'AUC 95% CI':<16}{'Brier':>7}"
    )
    for label, proto, n, n_pd, acc, acc_ci, auc, auc_ci, brier in table:
        print(
            f"{label:<21}{proto:<32}{n:>5}{n_pd:>4}{_num(acc, 8)} {acc_ci:<16}{_num(auc, 8)} {auc_ci:<16}{_num(brier)}"
        )
    print(
        f"\nper subject, subject-wise, nested (inner StratifiedGroupKFold picks hyperparameters, feature share and "
        f"Platt calibration; knn5 uncalibrated). 95% CI: bootstrap over subjects ({BOOTSTRAP_ROUNDS} rounds)."
    )
    print(
        f"targets: pooled AUC >= {TARGET_AUC_POOLED}, each held-out study AUC >= {TARGET_AUC_STUDY}, "
        f"accuracy >= {TARGET_ACCURACY}. All-PD guess: accuracy {subjects['pd'].mean():.3f}, AUC 0.500."
    )
    print(
        "seconds (evaluate all protocols / one fit on all subjects, the retrain's final step): "
        + ", ".join(f"{f} {e:.1f}/{fit:.1f}" for f, (e, fit) in timings.items())
    )


if __name__ == "__main__":
    main()
