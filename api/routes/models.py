"""GET /models, GET /models/current, POST /models/{version}/promote (token)."""
from __future__ import annotations

from litestar import Controller, get, post


from api.auth import SECURITY, require_token
from api.errors import NotFound
from api.registry import Registry
from api.schemas import ErrorBody, ModelInfo, response
from api.training import ModelHolder


def to_info(meta: dict, current: str | None) -> ModelInfo:
    return ModelInfo(version=meta["version"], current=meta["version"] == current, family=meta["family"],
                     feature_set=meta["feature_set"], created_at=meta["created_at"], run_id=meta["run_id"],
                     sha256=meta["sha256"], sklearn_version=meta["sklearn_version"], features=meta["features"],
                     metrics=meta.get("metrics", {}))


class ModelsController(Controller):
    path = "/models"
    tags = ["models"]

    @get("/", sync_to_thread=True)
    def list_models(self, registry: Registry) -> list[ModelInfo]:
        """Every registered version, newest first."""
        current = registry.current_version()
        return [to_info(registry.meta(v), current) for v in reversed(registry.versions())]

    @get("/current", sync_to_thread=True, responses={404: response(ErrorBody, "nothing promoted yet")})
    def current_model(self, registry: Registry) -> ModelInfo:
        """The promoted version (the one /diagnose uses)."""
        current = registry.current_version()
        if current is None:
            raise NotFound("no model promoted yet")
        return to_info(registry.meta(current), current)

    @post("/{version:str}/promote", status_code=200, guards=[require_token], security=SECURITY, sync_to_thread=True,
          responses={401: response(ErrorBody, "missing or invalid bearer token"),
                     404: response(ErrorBody, "no such version"),
                     409: response(ErrorBody, "artifact checksum mismatch: refused")})
    def promote(self, version: str, registry: Registry, holder: ModelHolder) -> ModelInfo:
        """Verify the artifact's sha256, load it, and make it current (atomic pointer swap)."""
        loaded = registry.promote(version)
        holder.set(loaded)
        return to_info(loaded.meta, version)
