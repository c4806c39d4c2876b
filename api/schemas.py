"""Typed request and response bodies (msgspec Structs); Litestar derives the OpenAPI schema from them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

Family = Literal["knn", "forest", "logreg", "svm", "gboost"]
FeatureSet = Literal["windows", "gait", "both"]
Evaluation = Literal["full", "subject_kfold"]
RunStatus = Literal["queued", "running", "succeeded", "failed"]
SubjectId = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="demographics ID, e.g. GaPt03")]


class ErrorBody(msgspec.Struct):
    error: str


class ConflictBody(msgspec.Struct):
    error: str
    running_run_id: str | None = None


class InvalidWalkBody(msgspec.Struct):
    error: str
    line: int = msgspec.field(default=0)
    reason: str | None = None


class RetrainRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Omitted fields take [api] default_family / default_feature_set / seed from the config."""

    family: Family | None = None
    feature_set: FeatureSet | None = None
    evaluation: Evaluation = "full"
    seed: Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1)] | None = None
    promote: bool = False


class RetrainAccepted(msgspec.Struct):
    run_id: str
    status: RunStatus
    status_url: str


class Run(msgspec.Struct):
    run_id: str
    status: RunStatus
    params: dict[str, Any]
    created_at: str
    started_at: str | None
    finished_at: str | None
    timings: dict[str, float]
    data: dict[str, Any] | None
    metrics: dict[str, Any] | None
    model_version: str | None
    promoted: bool
    error: str | None


class ModelInfo(msgspec.Struct):
    version: str
    current: bool  # the champion (what /diagnose and the stream score with)
    aliases: list[str]
    family: str
    feature_set: str
    created_at: str
    run_id: str
    sha256: str
    sklearn_version: str
    features: list[str]
    metrics: dict[str, Any]
    lineage: dict[str, Any] | None = None
    """The run, the walks it trained on, their feature version and the code commit."""


class SetAlias(msgspec.Struct, forbid_unknown_fields=True):
    version: Annotated[str, msgspec.Meta(pattern=r"^v\d{8}T\d{12}Z-[0-9a-f]{6}$")]


class AliasMove(msgspec.Struct):
    alias: str
    previous: str | None
    version: str | None
    at: str
    reason: str


class AliasesInfo(msgspec.Struct):
    aliases: dict[str, str]
    history: list[AliasMove]


class DiagnoseSubject(msgspec.Struct, forbid_unknown_fields=True):
    subject_id: SubjectId


class Driver(msgspec.Struct):
    feature: str
    importance: float
    value: float | None
    median_parkinsons: float | None
    median_control: float | None
    closer_to: Literal["parkinsons", "control"] | None


class Diagnosis(msgspec.Struct):
    probability_parkinsons: float
    prediction: Literal["parkinsons", "control"]
    model_version: str
    family: str
    feature_set: str
    rows_used: int
    walks: int
    final_walks: int
    drivers: list[Driver]
    usual_walks: int | None = None
    """Walks behind the answer that are usual walks (what the model was trained on)."""
    calibrated: bool | None = None
    """True when the probability is Platt-calibrated out of fold (every family but the seed's KNN)."""
    subject_id: str | None = None
    samples: int | None = None


class Health(msgspec.Struct):
    status: Literal["ok", "degraded", "down"]
    cassandra: str
    mongo: str
    model: str
    training_run: str | None


class ServiceHealth(msgspec.Struct):
    name: str
    kind: Literal["service", "component"]
    ok: bool
    detail: str
    check_ms: float


class Supervisor(msgspec.Struct):
    """A pipeline process's supervisor (``var/run/<name>-supervisor.json``)."""

    name: str
    supervised: bool
    state: str
    """running, backoff (waiting to restart it), gave-up, stopped; "not started" without a status file."""
    alive: bool
    restarts: int
    last_restart_at: float | None
    last_cause: str | None
    last_error: str | None


class DataFlow(msgspec.Struct):
    """Whether samples flow to Cassandra and the archive; ``reasons`` fill the dashboard's banner."""

    flowing: bool
    reasons: list[str]


class PipelineStatus(msgspec.Struct):
    """The dashboard's Pipeline panel; each part carries ``error`` (null when read fine)."""

    checked_at_ms: int
    services: list[ServiceHealth]
    streaming: dict[str, Any]
    """The streaming job's status file (streaming.status): state, age_s, fresh, ui_url, stale_after_s, queries
    (each with last_progress_age_s, the seconds since its last batch, and stale)."""
    kafka: dict[str, Any]
    """topic, end_offset, and per query its checkpointed offset and lag (records)."""
    bridge: dict[str, Any]
    """The bridge's stats file: received, forwarded, dead_lettered, forwarded_per_s, age_s."""
    spark_ui_url: str
    supervisors: list[Supervisor]
    """Restarts and state of the bridge's, the streaming job's and the API's supervisors."""
    flow: DataFlow


class WalkPrediction(msgspec.Struct):
    subject_id: str
    walk_id: str
    study: str | None
    probability: float | None
    label: str | None
    model_version: str | None
    model_alias: str | None
    final: bool | None
    samples: int | None
    updated_at: str | None
    age_s: float | None


class LivePredictions(msgspec.Struct):
    alias: str
    alias_version: str | None  # what the alias points at now (predictions follow within a trigger)
    walks: list[WalkPrediction]  # streaming now first (not final), then most recently updated


class WalkKey(msgspec.Struct):
    subject_id: str
    walk_id: str
    study: str | None
    samples: int | None
    final: bool | None


class WindowMeans(msgspec.Struct):
    window_index: int
    sample_count: int | None
    partial: bool | None
    total_l: float | None
    total_r: float | None
    sensors: dict[str, float | None]
    """Mean force (N) of each of the 16 sensors (l1..l8, r1..r8) over the window."""


class WalkWindows(msgspec.Struct):
    subject_id: str
    walk_id: str
    after_index: int
    windows: list[WindowMeans]
    sensor_xy: dict[str, list[float]]
    """Each sensor's (X, Y) position inside the insoles (format.txt of the data set)."""


def response(body: type, description: str):
    """An extra documented response (no generated examples: they would be random, not informative)."""
    from litestar.openapi import ResponseSpec

    return ResponseSpec(body, description=description, generate_examples=False)
