"""GET /health (Cassandra, MongoDB, model) and GET /metrics (Prometheus text)."""

from __future__ import annotations

from typing import Literal

from litestar import Controller, MediaType, Response, get

from api.data import CassandraStore
from api.metrics import Metrics
from api.runs import RunStore
from api.schemas import Health, response
from api.training import ModelHolder, Trainer


def _probe(call) -> tuple[bool, str]:
    try:
        return True, f"ok ({call()})"
    except Exception as exc:  # any failure is the answer here
        return False, f"down ({type(exc).__name__}: {str(exc)[:200]})"


class OpsController(Controller):
    tags = ["operations"]

    @get("/health", sync_to_thread=True, responses={503: response(Health, "Cassandra or MongoDB unreachable")})
    def health(self, store: CassandraStore, runs: RunStore, holder: ModelHolder, trainer: Trainer) -> Response[Health]:
        """200 when Cassandra and MongoDB answer (status "degraded" if no model is loaded), else 503."""
        cassandra_ok, cassandra = _probe(lambda: f"cassandra {store.ping()}")
        mongo_ok, mongo = _probe(lambda: runs.collection.database.client.admin.command("ping") and "ping")
        model = holder.get()
        model_text = (
            f"loaded {model.version} ({model.meta['family']}/{model.meta['feature_set']})" if model else "none promoted"
        )
        up = cassandra_ok and mongo_ok
        status: Literal["ok", "degraded", "down"] = "down" if not up else ("ok" if model else "degraded")
        body = Health(status=status, cassandra=cassandra, mongo=mongo, model=model_text, training_run=trainer.running)
        return Response(body, status_code=200 if up else 503)

    @get("/metrics", media_type=MediaType.TEXT, sync_to_thread=False)
    def metrics(self, metrics: Metrics, holder: ModelHolder, trainer: Trainer) -> str:
        """Prometheus text exposition: diagnoses, retrain requests, model loaded, training running."""
        return metrics.render(
            {
                "gaitstream_api_model_loaded": int(holder.get() is not None),
                "gaitstream_api_training_running": int(trainer.running is not None),
            }
        )
