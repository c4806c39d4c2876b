"""The API's settings, built explicitly from the one config object (never read at import time)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gaitstream.config import Config
from gaitstream.endpoints import is_loopback
from streaming.schema import identifier

FAMILIES = ("knn", "forest", "logreg", "svm", "gboost")
FEATURE_SETS = ("windows", "gait", "both")


@dataclass(frozen=True)
class ApiSettings:
    """What the service needs, one field per knob; tests build it from an isolated config."""

    token: str
    """Bearer token for mutating routes ([api] token)."""
    registry_dir: Path
    """Model registry folder ([api] registry_dir)."""
    data_dir: Path
    """gaitpdb folder; only demographics.txt (the labels) is read from it ([data] gaitpdb_dir)."""
    keyspace: str
    """Cassandra keyspace holding ``windows`` and ``walk_features`` ([cassandra] keyspace)."""
    mongo_database: str
    """Database of the run documents ([mongo] database)."""
    runs_collection: str
    """Collection of the run documents ([mongo] runs_collection)."""
    default_family: str
    default_feature_set: str
    cv_folds: int
    cv_repeats: int
    seed: int
    bias_variance_rounds: int
    forest_trees: int
    max_upload_bytes: int
    backend_timeout: float
    """Seconds a Cassandra or Mongo call may take before the API answers 503."""
    prediction_cache_seconds: float = 2.0
    """How long /diagnose reuses a subject's stored live prediction ([api] prediction_cache_seconds)."""
    reads_need_token: bool = False
    """The read routes with health data need the token: true when the API binds to a non-loopback
    address ([api] host)."""

    @classmethod
    def from_config(cls, cfg: Config) -> ApiSettings:
        api = cfg.api
        settings = cls(
            token=api.token,
            registry_dir=cfg.path("api.registry_dir"),
            data_dir=cfg.path("data.gaitpdb_dir"),
            keyspace=identifier(cfg.cassandra.keyspace),
            mongo_database=cfg.mongo.database,
            runs_collection=cfg.mongo.runs_collection,
            default_family=api.default_family,
            default_feature_set=api.default_feature_set,
            cv_folds=api.cv_folds,
            cv_repeats=api.cv_repeats,
            seed=api.seed,
            bias_variance_rounds=api.bias_variance_rounds,
            forest_trees=api.forest_trees,
            max_upload_bytes=api.max_upload_bytes,
            backend_timeout=api.backend_timeout,
            prediction_cache_seconds=api.prediction_cache_seconds,
            reads_need_token=not is_loopback(api.host),
        )
        if settings.default_family not in FAMILIES or settings.default_feature_set not in FEATURE_SETS:
            raise ValueError(
                f"api.default_family must be one of {FAMILIES}, api.default_feature_set one of {FEATURE_SETS}"
            )
        return settings
