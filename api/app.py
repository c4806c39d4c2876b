"""The Litestar application: ``create_app(cfg)`` wires settings, services, routes and error mapping.

Services (Cassandra store, MongoDB client and run store, model registry, promoted model, trainer)
are created in the lifespan, kept on ``app.state`` and injected into handlers by name; they are
closed at shutdown. ``/`` is the dashboard (api.routes.dashboard).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme

from api import errors
from api.data import CassandraStore
from api.metrics import Metrics
from api.monitor import PipelineMonitor
from api.routes.dashboard import DASHBOARD_HANDLERS
from api.routes.diagnose import DiagnoseController
from api.routes.models import ModelsController
from api.routes.ops import OpsController
from api.routes.training import TrainingController
from api.runs import RunStore
from api.settings import ApiSettings
from api.training import ModelHolder, Trainer
from gaitstream import __version__, clients, pipeline_status
from gaitstream.config import Config
from model.registry import Registry

log = logging.getLogger("api")
SERVICES = ("settings", "store", "runs", "registry", "holder", "trainer", "metrics", "pipeline")


class PipelineMetrics(Metrics):
    """The API's counters plus the pipeline's (GET /metrics): supervisor restarts, the bridge's
    counters, each streaming query's batch duration, progress age and rates."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg

    def render(self, gauges: dict[str, float]) -> str:
        try:
            extra = pipeline_status.prometheus_lines(self.cfg)
        except Exception as exc:  # a status file mid-write must not break the API's own metrics
            log.warning("pipeline metrics unavailable: %s", exc)
            extra = []
        return super().render(gauges) + "".join(f"{line}\n" for line in extra)


Backends = Callable[[Config, ApiSettings], tuple[CassandraStore, RunStore, Callable[[], None]]]


def connect_backends(cfg: Config, settings: ApiSettings) -> tuple[CassandraStore, RunStore, Callable[[], None]]:
    """The Cassandra store and the MongoDB run store (both connect lazily), and what closes them."""
    store = CassandraStore(cfg, settings.keyspace, settings.backend_timeout, settings.prediction_cache_seconds)
    client = clients.mongo(cfg, timeout=settings.backend_timeout, appname="gaitstream-api")

    def close() -> None:
        store.close()
        client.close()

    return store, RunStore(client, settings.mongo_database, settings.runs_collection), close


def create_app(cfg: Config, settings: ApiSettings | None = None, backends: Backends = connect_backends) -> Litestar:
    """``backends`` builds the databases at startup; unit tests pass in-memory fakes."""
    settings = settings or ApiSettings.from_config(cfg)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        store, runs, close_backends = backends(cfg, settings)
        registry = Registry(settings.registry_dir)
        holder = ModelHolder(registry)
        model = holder.get()
        if model is not None:
            log.info("model %s loaded (alias champion)", model.version)
        trainer = Trainer(settings, store, runs, registry)
        try:
            stale = runs.fail_unfinished("interrupted: the API process that ran it stopped")
            if stale:
                log.warning("%d unfinished run(s) from a previous process marked failed", stale)
        except Exception as exc:  # MongoDB down at startup: the API still starts and answers 503
            log.warning("MongoDB unavailable at startup (%s); run history will answer 503 until it is back", exc)
        app.state.update(
            settings=settings,
            store=store,
            runs=runs,
            registry=registry,
            holder=holder,
            trainer=trainer,
            metrics=PipelineMetrics(cfg),
            pipeline=PipelineMonitor(cfg),
        )
        try:
            yield
        finally:
            trainer.close()
            close_backends()

    def provider(name: str) -> Provide:
        def from_state(state: State):
            return state[name]

        return Provide(from_state, sync_to_thread=False)

    return Litestar(
        route_handlers=[TrainingController, ModelsController, DiagnoseController, OpsController, *DASHBOARD_HANDLERS],
        lifespan=[lifespan],
        dependencies={name: provider(name) for name in SERVICES},
        exception_handlers=errors.handlers(),
        request_max_body_size=settings.max_upload_bytes,
        openapi_config=OpenAPIConfig(
            title="gaitstream API",
            version=__version__,
            path="/schema",
            description="Retrain on demand with subject-wise evaluation, model registry, runs in MongoDB, diagnosis.",
            components=Components(security_schemes={"BearerToken": SecurityScheme(type="http", scheme="bearer")}),
        ),
    )


def app_from_environment() -> Litestar:
    """The app for each uvicorn worker process (``--workers``): config read from the environment."""
    from gaitstream import config

    return create_app(config.load())
