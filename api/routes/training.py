"""POST /retrain (token), GET /runs, GET /runs/{run_id}."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, post
from litestar.params import Parameter

from api.auth import SECURITY, require_token, require_token_when_exposed
from api.metrics import Metrics
from api.runs import RunStore
from api.schemas import ConflictBody, ErrorBody, RetrainAccepted, RetrainRequest, Run, RunStatus, response
from api.settings import ApiSettings
from api.training import Trainer, TrainingParams

RUN_FIELDS = tuple(Run.__struct_fields__)
EXPOSED_401 = response(ErrorBody, "missing or invalid bearer token (only when the API binds beyond loopback)")


def to_run(doc: dict) -> Run:
    return Run(
        **{name: doc.get(name) for name in RUN_FIELDS}
        | {
            "timings": doc.get("timings") or {},
            "params": doc.get("params") or {},
            "promoted": bool(doc.get("promoted")),
        }
    )


class TrainingController(Controller):
    tags = ["training"]

    @post(
        "/retrain",
        status_code=202,
        guards=[require_token],
        security=SECURITY,
        sync_to_thread=True,
        responses={
            401: response(ErrorBody, "missing or invalid bearer token"),
            409: response(ConflictBody, "a run is in progress (its id is in the body)"),
            503: response(ErrorBody, "MongoDB unavailable"),
        },
    )
    def retrain(
        self, data: RetrainRequest, trainer: Trainer, settings: ApiSettings, metrics: Metrics
    ) -> RetrainAccepted:
        """Start a training run in the background; poll GET /runs/{run_id} for its status and metrics."""
        params = TrainingParams(
            family=data.family or settings.default_family,
            feature_set=data.feature_set or settings.default_feature_set,
            evaluation=data.evaluation,
            seed=settings.seed if data.seed is None else data.seed,
            promote=data.promote,
        )
        try:
            run_id = trainer.submit(params)
        except Exception:
            metrics.inc("gaitstream_api_retrain_requests_total", outcome="refused")
            raise
        metrics.inc("gaitstream_api_retrain_requests_total", outcome="accepted")
        return RetrainAccepted(run_id=run_id, status="queued", status_url=f"/runs/{run_id}")

    @get(
        "/runs",
        guards=[require_token_when_exposed],
        sync_to_thread=True,
        responses={401: EXPOSED_401, 503: response(ErrorBody, "MongoDB unavailable")},
    )
    def list_runs(
        self, runs: RunStore, limit: Annotated[int, Parameter(ge=1, le=500)] = 50, status: RunStatus | None = None
    ) -> list[Run]:
        """Most recent runs first."""
        return [to_run(doc) for doc in runs.latest(limit, status)]

    @get(
        "/runs/{run_id:str}",
        guards=[require_token_when_exposed],
        sync_to_thread=True,
        responses={
            401: EXPOSED_401,
            404: response(ErrorBody, "no such run"),
            503: response(ErrorBody, "MongoDB unavailable"),
        },
    )
    def get_run(self, run_id: str, runs: RunStore) -> Run:
        """One run: status, timings, data snapshot and every metric."""
        return to_run(runs.get(run_id))
