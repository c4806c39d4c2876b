"""Reads of the streaming tables (``windows``, ``walk_features``) through prepared statements.

One :class:`CassandraStore` per process, created at startup and shut down at exit. It connects
lazily and retries on the next call, so the API starts (and answers 503) while Cassandra is down.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import Any

import cachetools
import numpy as np
import pandas as pd

from gaitstream.config import Config
from gaitstream.gaitpdb import FORCE_CHANNELS
from streaming.schema import (
    FEATURES_TABLE,
    SUBJECT_PREDICTION_COLUMNS,
    SUBJECT_PREDICTIONS_TABLE,
    WALK_PREDICTION_COLUMNS,
    WALK_PREDICTIONS_TABLE,
    WINDOW_KEY,
    WINDOWS_TABLE,
    names,
)

log = logging.getLogger("api.data")
FETCH_SIZE = 5000
PREDICTION_CACHE_SIZE = 10_000
WALK_COLUMNS = ("subject_id", "walk_id", "study", "samples", "final", "feature_version", "features")
WALK_KEY_COLUMNS = ("subject_id", "walk_id", "study", "samples", "final")
WINDOW_KEY_COLUMNS = names(WINDOW_KEY) + ("sample_count", "partial")
SUBJECT_PREDICTION_FIELDS = ("subject_id",) + tuple(name for name, _kind in SUBJECT_PREDICTION_COLUMNS)
WALK_PREDICTION_FIELDS = ("subject_id", "walk_id") + tuple(name for name, _kind in WALK_PREDICTION_COLUMNS)


class CassandraStore:
    """The session and the prepared statements of the API's keyspace.

    Subject predictions are read at most once per ``prediction_cache_seconds`` (the stream rewrites
    them at most once per trigger): the whole ``subject_predictions`` table as one snapshot while it
    holds at most ``PREDICTION_CACHE_SIZE`` rows, refreshed in a background thread while requests
    answer from the previous one (:meth:`_take_snapshot`), so /diagnose for a known subject is a
    memory lookup; a subject not in the snapshot, or a larger table, is read by key and cached.
    """

    def __init__(self, cfg: Config, keyspace: str, timeout: float, prediction_cache_seconds: float = 0.0):
        self.cfg, self.keyspace, self.timeout = cfg, keyspace, timeout
        self._predictions = (
            cachetools.TTLCache(maxsize=PREDICTION_CACHE_SIZE, ttl=prediction_cache_seconds)
            if prediction_cache_seconds > 0
            else None
        )
        self._cache_seconds = prediction_cache_seconds
        self._cache_lock = threading.Lock()
        self._snapshot: dict[str, dict[str, Any]] | None = None
        self._snapshot_at = -math.inf  # time.monotonic() of the read behind it
        self._snapshot_usable = prediction_cache_seconds > 0  # off for good once the table outgrows it
        self._refreshing = False
        self._lock = threading.Lock()
        self._cluster = self._session = None
        self._statements: dict[str, Any] = {}

    def session(self):
        """The connected session (connecting now if needed); driver errors mean 503 upstream."""
        with self._lock:
            if self._session is None:
                from gaitstream import clients

                self._cluster, self._session = clients.cassandra(self.cfg, request_timeout=max(self.timeout, 10.0))
            return self._session

    def prepared(self, name: str):
        session = self.session()
        if name not in self._statements:
            ks, walks, windows = self.keyspace, FEATURES_TABLE, WINDOWS_TABLE
            channels = ", ".join(FORCE_CHANNELS)
            cql = {
                "all_walks": f"SELECT {', '.join(WALK_COLUMNS)} FROM {ks}.{walks}",
                "subject_walks": f"SELECT {', '.join(WALK_COLUMNS)} FROM {ks}.{walks} WHERE subject_id = ?",
                "all_windows": f"SELECT {', '.join(WINDOW_KEY_COLUMNS)}, {channels} FROM {ks}.{windows}",
                "walk_windows": f"SELECT {', '.join(WINDOW_KEY_COLUMNS)}, {channels} FROM {ks}.{windows} "
                "WHERE subject_id = ? AND walk_id = ?",
                "walk_keys": f"SELECT {', '.join(WALK_KEY_COLUMNS)} FROM {ks}.{walks}",
                "subject_prediction": f"SELECT {', '.join(SUBJECT_PREDICTION_FIELDS)} FROM "
                f"{ks}.{SUBJECT_PREDICTIONS_TABLE} WHERE subject_id = ?",
                "all_subject_predictions": f"SELECT {', '.join(SUBJECT_PREDICTION_FIELDS)} FROM "
                f"{ks}.{SUBJECT_PREDICTIONS_TABLE}",
                "subject_prediction_stamps": f"SELECT subject_id, updated_at FROM {ks}.{SUBJECT_PREDICTIONS_TABLE}",
                "walk_predictions": f"SELECT {', '.join(WALK_PREDICTION_FIELDS)} FROM {ks}.{WALK_PREDICTIONS_TABLE}",
                "walk_windows_after": f"SELECT {', '.join(WINDOW_KEY_COLUMNS)}, {channels} FROM {ks}.{windows} "
                "WHERE subject_id = ? AND walk_id = ? AND window_index > ?",
            }[name]
            statement = session.prepare(cql)
            statement.fetch_size = FETCH_SIZE
            self._statements[name] = statement
        return self._statements[name]

    def ping(self) -> str:
        row = self.session().execute("SELECT release_version FROM system.local", timeout=self.timeout).one()
        return str(row.release_version)

    def walk_features(self, subject_id: str | None = None) -> pd.DataFrame:
        """One row per walk: key columns plus one column per feature (NaN where the map has none)."""
        if subject_id is None:
            rows = self.session().execute(self.prepared("all_walks"), timeout=self.timeout)
        else:
            rows = self.session().execute(self.prepared("subject_walks"), (subject_id,), timeout=self.timeout)
        return walks_frame(list(rows))

    def walk_feature_maps(self, subject_id: str) -> list[dict[str, Any]]:
        """A subject's walks as plain dicts (walk_id, final, feature_version, features map): no pandas."""
        rows = self.session().execute(self.prepared("subject_walks"), (subject_id,), timeout=self.timeout)
        return [
            {
                "walk_id": row.walk_id,
                "final": row.final,
                "feature_version": row.feature_version,
                "features": dict(row.features or {}),
            }
            for row in rows
        ]

    def subject_prediction(self, subject_id: str) -> dict[str, Any] | None:
        """The streaming job's latest prediction for a subject (``subject_predictions``), if any."""
        snapshot = self._prediction_snapshot()
        if snapshot is not None and subject_id in snapshot:
            return snapshot[subject_id]
        if self._predictions is not None:
            with self._cache_lock:
                if subject_id in self._predictions:
                    return self._predictions[subject_id]
        row = self.session().execute(self.prepared("subject_prediction"), (subject_id,), timeout=self.timeout).one()
        found = None if row is None else _prediction(row)
        if self._predictions is not None:
            with self._cache_lock:
                self._predictions[subject_id] = found
        return found

    def _prediction_snapshot(self) -> dict[str, dict[str, Any]] | None:
        """Every subject's prediction, at most about ``prediction_cache_seconds`` old (None: none yet,
        or not kept). A stale snapshot is answered from while a background thread takes the next:
        decoding every row's ``inputs`` map takes the driver ~60 ms, more than a request may wait."""
        if not self._snapshot_usable:
            return None
        with self._cache_lock:
            if time.monotonic() - self._snapshot_at >= self._cache_seconds and not self._refreshing:
                self._refreshing = True
                threading.Thread(target=self._take_snapshot, name="prediction-snapshot", daemon=True).start()
            return self._snapshot

    def _take_snapshot(self) -> None:
        """The next snapshot: the stamps (``updated_at``) of every row, then in full only the rows
        whose stamp moved (all of them at once when most did): an idle table costs one light read."""
        taken_at, fresh = time.monotonic(), None
        try:
            session, previous = self.session(), self._snapshot or {}
            stamps = {
                row.subject_id: row.updated_at
                for row in session.execute(self.prepared("subject_prediction_stamps"), timeout=self.timeout)
            }
            if len(stamps) > PREDICTION_CACHE_SIZE:
                log.info("subject_predictions holds over %d rows: read by subject from now on", PREDICTION_CACHE_SIZE)
                self._snapshot_usable = False
                return
            moved = [s for s, stamp in stamps.items() if s not in previous or previous[s]["updated_at"] != stamp]
            if len(moved) > len(stamps) // 2:
                rows = session.execute(self.prepared("all_subject_predictions"), timeout=self.timeout)
                fresh = {row.subject_id: _prediction(row) for row in rows}
            else:
                fresh = {s: previous[s] for s in stamps if s not in moved}
                for subject_id in moved:
                    row = session.execute(
                        self.prepared("subject_prediction"), (subject_id,), timeout=self.timeout
                    ).one()
                    if row is not None:
                        fresh[subject_id] = _prediction(row)
        except Exception as exc:  # requests read by subject meanwhile, and answer (or fail) as before
            log.warning("subject_predictions snapshot not taken: %s", exc)
            fresh = None
        finally:
            with self._cache_lock:
                self._refreshing = False
                if fresh is not None:
                    self._snapshot, self._snapshot_at = fresh, taken_at
                else:
                    self._snapshot, self._snapshot_at = None, time.monotonic()  # retry after one interval

    def walk_predictions(self) -> list[dict[str, Any]]:
        """Every walk's live prediction (the dashboard's live panel); a few hundred rows at most."""
        rows = self.session().execute(self.prepared("walk_predictions"), timeout=self.timeout)
        return [dict(zip(WALK_PREDICTION_FIELDS, tuple(row), strict=True)) for row in rows]

    def windows(self, subject_id: str | None = None, walk_ids: list[str] | None = None) -> pd.DataFrame:
        """One row per 100-sample window: key columns and the 18 channel means."""
        if subject_id is None:
            rows = list(self.session().execute(self.prepared("all_windows"), timeout=self.timeout))
        else:
            rows = [
                row
                for walk_id in walk_ids or []
                for row in self.session().execute(
                    self.prepared("walk_windows"), (subject_id, walk_id), timeout=self.timeout
                )
            ]
        columns = list(WINDOW_KEY_COLUMNS) + list(FORCE_CHANNELS)
        return pd.DataFrame([tuple(row) for row in rows], columns=columns)

    def walk_keys(self) -> list[dict[str, Any]]:
        """Every walk with stored features (no feature maps): what the dashboard's pickers list."""
        rows = self.session().execute(self.prepared("walk_keys"), timeout=self.timeout)
        return [dict(zip(WALK_KEY_COLUMNS, tuple(row), strict=True)) for row in rows]

    def walk_windows_after(self, subject_id: str, walk_id: str, after_index: int) -> pd.DataFrame:
        """One walk's windows with ``window_index > after_index`` (a poller asks only for new ones)."""
        rows = self.session().execute(
            self.prepared("walk_windows_after"), (subject_id, walk_id, after_index), timeout=self.timeout
        )
        return pd.DataFrame([tuple(row) for row in rows], columns=list(WINDOW_KEY_COLUMNS) + list(FORCE_CHANNELS))

    def close(self) -> None:
        with self._lock:
            if self._cluster is not None:
                self._cluster.shutdown()
            self._cluster = self._session = None
            self._statements.clear()


def _prediction(row: Any) -> dict[str, Any]:
    """A ``subject_predictions`` row as a plain dict (its ``inputs`` map a dict: the driver's map type
    answers ``get`` ten times slower, and /diagnose asks it once per feature)."""
    found = dict(zip(SUBJECT_PREDICTION_FIELDS, tuple(row), strict=True))
    if found.get("inputs") is not None:
        found["inputs"] = dict(found["inputs"])
    return found


def walks_frame(rows: list[Any]) -> pd.DataFrame:
    """``walk_features`` rows → a frame with the feature map spread into float columns."""
    keys = [{c: getattr(row, c) for c in WALK_COLUMNS if c != "features"} for row in rows]
    features = pd.DataFrame([dict(row.features or {}) for row in rows], dtype=np.float64)
    frame = pd.DataFrame(keys, columns=[c for c in WALK_COLUMNS if c != "features"])
    return pd.concat([frame.reset_index(drop=True), features.reset_index(drop=True)], axis=1)
