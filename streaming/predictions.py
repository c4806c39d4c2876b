"""Live diagnosis: each micro-batch's new gait features scored with the registry's champion.

Runs on the driver inside the windows query's ``foreachBatch``, after the batch's features are in
Cassandra, so a running probability lags its features by no trigger at all and a walk's final
probability is written in the batch that flushed it (``idle_timeout_seconds`` + one trigger after
its last sample). Per batch:

* each walk with a new features row → ``walk_predictions`` (:func:`model.predict.walk_probability`);
* each subject touched → ``subject_predictions``: the champion applied to the mean of the
  subject's usual walks' features, read back from ``walk_features`` (what ``/diagnose`` answers).

Writes are upserts by primary key (a replayed batch rewrites the same rows). The model is followed
through :class:`model.registry.AliasWatcher` (one ``stat`` per batch; a moved alias is used from
the next batch on, no restart). No model, a tampered artifact, or a feature set that cannot be
scored from features means no predictions, logged once per change of reason, never an error loop;
windows and features keep flowing.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from model import predict
from model.errors import ModelError
from model.registry import CHAMPION, AliasWatcher, LoadedModel, Registry
from streaming.schema import (
    FEATURES_TABLE,
    SUBJECT_PREDICTION_COLUMNS,
    SUBJECT_PREDICTIONS_TABLE,
    WALK_PREDICTION_COLUMNS,
    WALK_PREDICTIONS_TABLE,
    identifier,
)

if TYPE_CHECKING:
    from cassandra.cluster import Cluster, Session

log = logging.getLogger("gaitstream.streaming.predictions")
CONCURRENCY = 32


def _insert(keyspace: str, table: str, key: tuple[str, ...], columns: tuple[tuple[str, str], ...]) -> str:
    names = list(key) + [name for name, _kind in columns]
    return (
        f"INSERT INTO {identifier(keyspace)}.{identifier(table)} ({', '.join(names)}) "
        f"VALUES ({', '.join('?' for _ in names)})"
    )


class LiveScorer:
    """Scores feature rows of a micro-batch and writes the predictions (driver side, one per job)."""

    def __init__(
        self, registry: Registry, keyspace: str, connect: Callable[[], tuple[Any, Any]], alias: str = CHAMPION
    ):
        self.watcher, self.alias, self.keyspace, self._connect = AliasWatcher(registry, alias), alias, keyspace, connect
        self._cluster: Cluster | None = None
        self._session: Session | None = None
        self._statements: dict[str, Any] = {}
        self.state = "starting"  # scoring | no_model | unscorable | model_error
        self.reason = ""
        self.walks_scored = 0

    # -- Cassandra ------------------------------------------------------------------------------
    def _live_session(self) -> Session:
        """The Cassandra session, connected on first use (and again after :meth:`close`)."""
        if self._session is None:
            self._cluster, self._session = self._connect()
            self._statements.clear()
        return self._session

    def _prepared(self, name: str):
        session = self._live_session()
        if name not in self._statements:
            cql = {
                "walk": _insert(
                    self.keyspace, WALK_PREDICTIONS_TABLE, ("subject_id", "walk_id"), WALK_PREDICTION_COLUMNS
                ),
                "subject": _insert(
                    self.keyspace, SUBJECT_PREDICTIONS_TABLE, ("subject_id",), SUBJECT_PREDICTION_COLUMNS
                ),
                "subject_walks": f"SELECT walk_id, final, feature_version, features FROM "
                f"{identifier(self.keyspace)}.{FEATURES_TABLE} WHERE subject_id = ?",
            }[name]
            self._statements[name] = session.prepare(cql)
        return self._statements[name]

    def close(self) -> None:
        if self._cluster is not None:
            self._cluster.shutdown()
        self._cluster = self._session = None

    def _run(self, name: str, params: Iterable[tuple]) -> None:
        from cassandra.concurrent import execute_concurrent_with_args

        statement = self._prepared(name)
        for ok, result in execute_concurrent_with_args(
            self._live_session(), statement, list(params), concurrency=CONCURRENCY, raise_on_first_error=False
        ):
            if not ok:
                raise result

    # -- the model ------------------------------------------------------------------------------
    def _set_state(self, state: str, reason: str) -> None:
        if (state, reason) != (self.state, self.reason):
            (log.info if state == "scoring" else log.warning)("live predictions %s: %s", state, reason)
        self.state, self.reason = state, reason

    def model(self) -> LoadedModel | None:
        """The champion if it can score stored features, else None (the reason is logged once)."""
        try:
            model = self.watcher.get()
        except ModelError as exc:
            self._set_state("model_error", exc.message)
            return None
        except OSError as exc:
            self._set_state("model_error", f"registry unreadable: {exc}")
            return None
        if model is None:
            self._set_state("no_model", f"no model behind alias {self.alias!r} (train, then promote one)")
            return None
        try:
            predict.check_scorable(model)
        except ModelError as exc:
            self._set_state("unscorable", exc.message)
            return None
        self._set_state("scoring", f"model {model.version} (alias {self.alias})")
        return model

    # -- one micro-batch ------------------------------------------------------------------------
    def score(self, rows: list[Mapping[str, Any]]) -> int:
        """Score the batch's feature rows (dicts: subject_id, walk_id, study, samples, final,
        feature_version, features); returns the walks scored."""
        if not rows:
            return 0
        model = self.model()
        if model is None:
            return 0
        now = dt.datetime.now(dt.UTC)
        walk_params = []
        for row in rows:
            p = predict.walk_probability(model, row["features"] or {})
            walk_params.append(
                (
                    row["subject_id"],
                    row["walk_id"],
                    p,
                    predict.label(p),
                    model.version,
                    self.alias,
                    row["feature_version"],
                    bool(row["final"]),
                    now,
                    row["study"],
                    row["samples"],
                )
            )
        self._run("walk", walk_params)
        subjects = sorted({row["subject_id"] for row in rows})
        self._run("subject", [self._subject_params(model, subject, now) for subject in subjects])
        self.walks_scored += len(walk_params)
        return len(walk_params)

    def _subject_params(self, model: LoadedModel, subject_id: str, now: dt.datetime) -> tuple:
        statement = self._prepared("subject_walks")
        walks = list(self._live_session().execute(statement, (subject_id,)))
        ids = [w.walk_id for w in walks]
        features = [dict(w.features or {}) for w in walks]
        X, used = predict.subject_inputs(model, ids, features)
        p, inputs = predict.probability(model, X), X[0]
        finite = {name: float(v) for name, v in zip(model.meta["features"], inputs, strict=True) if math.isfinite(v)}
        versions = {w.feature_version for w in walks if w.feature_version is not None}
        return (
            subject_id,
            p,
            predict.label(p),
            model.version,
            self.alias,
            max(versions) if versions else None,
            all(bool(walks[i].final) for i in used),
            now,
            len(walks),
            sum(bool(w.final) for w in walks),
            [ids[i] for i in used],
            finite,
        )
