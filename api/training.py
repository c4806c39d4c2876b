"""Training runs in the background: one at a time, each recorded as a run document.

``Trainer.submit`` returns at once with a run id (the handler answers 202) or raises Conflict
with the id of the run in progress (409). The work itself, :func:`train`, is a plain function
of (settings, data store, run store, registry, params), so tests and the benchmark call it directly.
"""

from __future__ import annotations

import fcntl
import logging
import subprocess
import threading
import time
import traceback
import uuid
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import tenacity
from pymongo.errors import PyMongoError

from api.errors import Conflict
from api.runs import FAILED, RUNNING, SUCCEEDED, RunStore, now_iso
from api.settings import ApiSettings
from gaitstream.gaitpdb import read_demographics
from model import evaluation, families, protocol
from model.errors import IntegrityError
from model.families import Dataset
from model.features import FEATURE_VERSION
from model.labels import attach_labels
from model.protocol import TrainingData
from model.registry import CHAMPION, AliasWatcher, LoadedModel, Registry

log = logging.getLogger("api.training")
# Outer folds fitted one after the other: on the 2-core host the stack (Spark, Cassandra, Kafka) shares
# the CPU, and 2 worker processes measured slower (23 s) than 1 (17 s) for a default logreg retrain.
OUTER_JOBS = 1
# A run whose outcome cannot be written (FerretDB away) keeps trying to record it for this long,
# with backoff up to 5 s; a shutdown meanwhile leaves it to the next start's fail_unfinished.
RECORD_OUTCOME_SECONDS = 600.0


def failure_reason(exc: BaseException) -> str:
    """What a failed run's document says: the exception, and which backend when it is the run store."""
    reason = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, PyMongoError):
        return f"run store (FerretDB/MongoDB) unreachable, run not completed: {reason}"
    return reason


@dataclass(frozen=True)
class TrainingParams:
    family: str
    feature_set: str
    evaluation: str  # "full" (subject-wise + study held out + leaky extra) or "subject_kfold" (no leaky extra)
    seed: int
    promote: bool


class Cancelled(Exception):
    """The service is shutting down; the run is recorded as failed."""


class ModelHolder:
    """The ``champion`` model of the registry, reloaded when the alias moves (in any process)."""

    def __init__(self, registry: Registry) -> None:
        self._lock = threading.Lock()
        self._watcher = AliasWatcher(registry, CHAMPION)
        self._tuned: str | None = None

    def get(self) -> LoadedModel | None:
        """The champion, or None; a tampered artifact is logged (IntegrityError) and not served."""
        with self._lock:
            try:
                model = self._watcher.get()
            except IntegrityError as exc:
                log.error("champion not loaded: %s", exc.message)
                return None
            if model is not None and self._tuned != model.version:
                last = families.final_pipeline(model.pipeline)[-1]
                if hasattr(last, "n_jobs"):
                    # one request predicts a few rows: a thread pool per call costs more than it saves
                    last.set_params(n_jobs=1)
                self._tuned = model.version
            return model


def load_dataset(store, settings: ApiSettings, feature_set: str) -> tuple[TrainingData, dict[str, Any]]:
    """Labelled training data of a feature set from Cassandra (usual walks, one row per subject;
    other walking conditions apart), and the data snapshot recorded with the run."""
    demographics = read_demographics(settings.data_dir)
    walks = store.walk_features()
    snapshot: dict[str, Any] = {
        "walk_rows": int(len(walks)),
        "feature_versions": sorted({int(v) for v in walks["feature_version"].dropna()}),
    }
    final = walks["final"].fillna(False).astype(bool)
    snapshot["unfinished_walks_skipped"] = int((~final).sum())
    walks = walks.loc[final]
    windows = None
    if feature_set in ("windows", "both"):
        windows = store.windows()
        partial = windows["partial"].fillna(True).astype(bool)
        snapshot.update(window_rows=int(len(windows)), partial_windows_skipped=int(partial.sum()))
        windows, unlabelled_windows = attach_labels(windows.loc[~partial], demographics)
    walks, unlabelled = attach_labels(walks, demographics)
    if windows is not None:
        unlabelled = sorted(set(unlabelled) | set(unlabelled_windows))
    td = protocol.training_data(feature_set, walks, windows)
    rows = td.data.rows
    per_subject = rows.groupby("subject_id").agg(pd=("pd", "first"), study=("study", "first"))
    usual_walks = td.walks.rows["walk_id"].nunique() if len(td.walks.rows) else 0
    snapshot.update(
        {
            "row_kind": td.data.row_kind,
            "rows": int(len(rows)),
            "walks": int(usual_walks),
            "walks_all_conditions": int(len(walks)),
            "training_walks": "usual walks only (Ga _01/_02, Ju _01, Si _01)",
            "other_conditions": {name: int(d.rows["subject_id"].nunique()) for name, d in td.other.items()},
            "subjects_without_usual_walk": td.without_usual_walk,
            "subjects": int(len(per_subject)),
            "classes": {"parkinsons": int(per_subject["pd"].sum()), "control": int((per_subject["pd"] == 0).sum())},
            "subjects_by_study": {str(k): int(v) for k, v in per_subject["study"].value_counts().sort_index().items()},
            "excluded_unlabelled_subjects": len(unlabelled),
            "excluded_subject_ids": unlabelled,
        }
    )
    return td, snapshot


def explanation(model, data: Dataset) -> dict[str, Any]:
    """What :mod:`api.diagnosis` shows next to a probability: each feature's global weight and
    the class medians on the training rows."""
    is_pd = data.y == 1
    with warnings.catch_warnings():  # an all-NaN column has no median: NaN, stored as null
        warnings.simplefilter("ignore", RuntimeWarning)
        median_pd = np.nanmedian(data.X[is_pd], axis=0)
        median_control = np.nanmedian(data.X[~is_pd], axis=0)
    return {
        "importance": families.importances(model, data.columns),
        "median_parkinsons": dict(zip(data.columns, median_pd.tolist(), strict=True)),
        "median_control": dict(zip(data.columns, median_control.tolist(), strict=True)),
    }


def code_commit() -> str | None:
    """The checkout's git commit (with ``+dirty`` when it has local changes), if it is a git checkout."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if head.returncode != 0:
        return None
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def lineage(run_id: str, td: TrainingData) -> dict[str, Any]:
    """Run → model → data: the run, the exact walks trained on, their feature version, the code."""
    walk_rows = td.walks.rows
    walk_ids = sorted(walk_rows["walk_id"].unique()) if "walk_id" in walk_rows.columns else []
    return {
        "run_id": run_id,
        "training_walks": [str(w) for w in walk_ids],
        "feature_version": FEATURE_VERSION,
        "code_commit": code_commit(),
    }


def train(
    settings: ApiSettings,
    store,
    runs: RunStore,
    registry: Registry,
    run_id: str,
    params: TrainingParams,
    cancelled: threading.Event | None = None,
) -> dict[str, Any]:
    """Evaluate (model.protocol), fit on every subject's usual walks, register the model; the run
    document tracks each step."""

    def checkpoint() -> None:
        if cancelled is not None and cancelled.is_set():
            raise Cancelled("service shutting down")

    started = time.perf_counter()
    runs.update(run_id, status=RUNNING, started_at=now_iso())
    timings: dict[str, float] = {}
    td, snapshot = load_dataset(store, settings, params.feature_set)
    data = td.data
    timings["load_s"] = time.perf_counter() - started
    runs.update(run_id, data=evaluation.json_safe(snapshot))
    if snapshot["classes"]["parkinsons"] < settings.cv_folds or snapshot["classes"]["control"] < settings.cv_folds:
        raise ValueError(
            f"too few labelled subjects for {settings.cv_folds}-fold subject-wise CV: {snapshot['classes']}"
        )
    model = families.build_model(params.family, seed=params.seed, forest_trees=settings.forest_trees)
    step = time.perf_counter()
    checkpoint()
    metrics = protocol.evaluate(
        model,
        td,
        folds=settings.cv_folds,
        repeats=settings.cv_repeats,
        seed=params.seed,
        full=params.evaluation == "full",
        bias_variance_rounds=settings.bias_variance_rounds,
        n_jobs=OUTER_JOBS,
    )
    timings["evaluate_s"] = time.perf_counter() - step
    checkpoint()
    step = time.perf_counter()
    fitted = families.fit(model, data.X, data.y, data.groups)
    timings["fit_s"] = time.perf_counter() - step
    metrics = evaluation.json_safe(metrics)
    # The metrics go in the run document before a model is registered: with the run store away the
    # run fails here, and no model exists that no run records.
    runs.update(run_id, metrics=metrics)
    summary = metrics["subject_wise"]["summary"]
    meta = evaluation.json_safe(
        {
            "family": params.family,
            "feature_set": params.feature_set,
            "row_kind": data.row_kind,
            "features": list(data.columns),
            "params": asdict(params),
            "data": snapshot,
            "calibrated": params.family != "knn",
            "chosen": families.chosen_params(fitted),
            "training_walks": snapshot["training_walks"],
            "metrics": {
                "subject_wise": {k: v for k, v in summary.items() if k != "calibration"},
                "brier": summary["calibration"]["brier"],
                "study_held_out": {s: r["subjects"] for s, r in metrics["study_held_out"].items()},
                "bias_variance": metrics.get("bias_variance"),
            },
            "explanation": explanation(fitted, data),
            "lineage": lineage(run_id, td),
        }
    )
    version = registry.save(fitted, meta, run_id)
    promote = params.promote or registry.current_version() is None
    if promote:
        registry.promote(version)
    timings["fit_and_save_s"] = time.perf_counter() - step
    timings["total_s"] = time.perf_counter() - started
    runs.update(
        run_id,
        status=SUCCEEDED,
        finished_at=now_iso(),
        metrics=metrics,
        model_version=version,
        promoted=promote,
        timings=timings,
    )
    return {"model_version": version, "metrics": metrics, "timings": timings}


FINISHING_GRACE_S = 5.0  # a run marked ended releases its lock within this


class RunLock:
    """At most one training run across every API worker process: an exclusive ``flock`` on a file
    in the registry folder, held for the run, with the run id inside for the 409 answer."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._handle: TextIO | None = None

    def acquire(self, run_id: str) -> bool:
        handle = open(self.path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        handle.seek(0)
        handle.truncate()
        handle.write(run_id)
        handle.flush()
        self._handle = handle
        return True

    def holder(self) -> str | None:
        try:
            return self.path.read_text().strip() or None
        except FileNotFoundError:
            return None

    def release(self) -> None:
        if self._handle is not None:
            self._handle.truncate(0)
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


class Trainer:
    """At most one run at a time, on one worker thread; closed at shutdown."""

    def __init__(self, settings: ApiSettings, store, runs: RunStore, registry: Registry):
        self.settings, self.store, self.runs, self.registry = settings, store, runs, registry
        self._run_lock = RunLock(registry.root / ".training.lock")
        self._lock = threading.Lock()
        self._running: str | None = None
        self._cancelled = threading.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="retrain")

    @property
    def running(self) -> str | None:
        return self._running

    def submit(self, params: TrainingParams) -> str:
        run_id = uuid.uuid4().hex
        deadline = time.monotonic() + FINISHING_GRACE_S
        while True:
            with self._lock:
                holder = self._running
                if holder is None and self._run_lock.acquire(run_id):
                    break
                holder = holder or self._run_lock.holder()
            # A run whose document already says it ended is only releasing the lock: wait for it.
            if time.monotonic() > deadline or not self._finished(holder):
                raise Conflict("a training run is already in progress", running_run_id=holder)
            time.sleep(0.05)
        with self._lock:
            try:
                self.runs.create(run_id, asdict(params))  # Mongo down → PyMongoError → 503, nothing started
            except BaseException:
                self._run_lock.release()
                raise
            self._running = run_id
        self._executor.submit(self._run, run_id, params)
        return run_id

    def _finished(self, run_id: str | None) -> bool:
        if run_id is None:
            return True
        try:
            return self.runs.get(run_id).get("status") in (SUCCEEDED, FAILED)
        except Exception:  # no such run, or Mongo away: treat as running (409)
            return False

    def _run(self, run_id: str, params: TrainingParams) -> None:
        try:
            result = train(self.settings, self.store, self.runs, self.registry, run_id, params, self._cancelled)
            log.info(
                "run %s succeeded: model %s in %.1f s", run_id, result["model_version"], result["timings"]["total_s"]
            )
        except Exception as exc:  # any failure is the run's outcome, recorded for GET /runs/{id}
            log.warning("run %s failed: %s", run_id, traceback.format_exc())
            self._record_failure(run_id, failure_reason(exc))
        finally:
            with self._lock:
                self._running = None
                self._run_lock.release()

    def _record_failure(self, run_id: str, reason: str) -> None:
        """Mark the run failed, retrying while the run store is away (the run would stay 'running')."""

        def before_sleep(state: tenacity.RetryCallState) -> None:
            assert state.outcome is not None and state.next_action is not None  # set before any sleep
            log.warning(
                "run %s: failure not recorded yet (%s), retrying in %.0f s",
                run_id,
                type(state.outcome.exception()).__name__,
                state.next_action.sleep,
            )

        def sleep(seconds: float) -> None:  # the backoff, cut short by close() (which also stops the retries)
            self._cancelled.wait(seconds)

        try:
            tenacity.Retrying(
                retry=tenacity.retry_if_exception_type(PyMongoError),
                stop=tenacity.stop_after_delay(RECORD_OUTCOME_SECONDS) | tenacity.stop_when_event_set(self._cancelled),
                wait=tenacity.wait_exponential(multiplier=0.5, max=5),
                sleep=sleep,
                before_sleep=before_sleep,
                reraise=True,
            )(self.runs.update, run_id, status=FAILED, finished_at=now_iso(), error=reason)
        except Exception:
            log.exception("run %s: could not record the failure", run_id)

    def close(self) -> None:
        self._cancelled.set()
        self._executor.shutdown(wait=True, cancel_futures=True)
