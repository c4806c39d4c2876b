"""The model registry over HTTP: versions, aliases (champion, challenger), promote and roll back.

GET /models, GET /models/current (the champion), GET /models/aliases (with the history of moves);
with the token: POST /models/{version}/promote (champion := version), PUT /models/aliases/{alias}
({"version": ...}), POST /models/aliases/{alias}/rollback, DELETE /models/aliases/{alias}.
Every process that scores (API workers, the streaming job) follows an alias within one call.
"""

from __future__ import annotations

from litestar import Controller, delete, get, post, put

from api.auth import SECURITY, require_token
from api.errors import NotFound
from api.schemas import AliasesInfo, AliasMove, ErrorBody, ModelInfo, SetAlias, response
from model.registry import CHAMPION, Registry

TOKEN_RESPONSES = {
    401: response(ErrorBody, "missing or invalid bearer token"),
    404: response(ErrorBody, "no such version or alias"),
    409: response(ErrorBody, "artifact checksum mismatch: refused"),
}


def to_info(meta: dict, aliases: dict[str, str]) -> ModelInfo:
    held = sorted(name for name, version in aliases.items() if version == meta["version"])
    return ModelInfo(
        version=meta["version"],
        current=CHAMPION in held,
        aliases=held,
        family=meta["family"],
        feature_set=meta["feature_set"],
        created_at=meta["created_at"],
        run_id=meta["run_id"],
        sha256=meta["sha256"],
        sklearn_version=meta["sklearn_version"],
        features=meta["features"],
        metrics=meta.get("metrics", {}),
        lineage=meta.get("lineage"),
    )


def aliases_info(registry: Registry) -> AliasesInfo:
    return AliasesInfo(
        aliases=registry.aliases(),
        history=[
            AliasMove(alias=m["alias"], previous=m["from"], version=m["to"], at=m["at"], reason=m.get("reason", ""))
            for m in registry.history()
        ],
    )


class ModelsController(Controller):
    path = "/models"
    tags = ["models"]

    @get("/", sync_to_thread=True)
    def list_models(self, registry: Registry) -> list[ModelInfo]:
        """Every registered version, newest first, with the aliases pointing at it."""
        aliases = registry.aliases()
        return [to_info(registry.meta(v), aliases) for v in reversed(registry.versions())]

    @get("/current", sync_to_thread=True, responses={404: response(ErrorBody, "nothing promoted yet")})
    def current_model(self, registry: Registry) -> ModelInfo:
        """The champion (the version /diagnose and the streaming job score with)."""
        current = registry.current_version()
        if current is None:
            raise NotFound("no model promoted yet")
        return to_info(registry.meta(current), registry.aliases())

    @get("/aliases", sync_to_thread=True)
    def list_aliases(self, registry: Registry) -> AliasesInfo:
        """Each alias and the version it points at, and every move (newest first)."""
        return aliases_info(registry)

    @post(
        "/{version:str}/promote",
        status_code=200,
        guards=[require_token],
        security=SECURITY,
        sync_to_thread=True,
        responses=TOKEN_RESPONSES,
    )
    def promote(self, version: str, registry: Registry) -> ModelInfo:
        """Verify the artifact's digests and make the version the champion (atomic alias move)."""
        loaded = registry.promote(version)
        return to_info(loaded.meta, registry.aliases())

    @put(
        "/aliases/{alias:str}",
        status_code=200,
        guards=[require_token],
        security=SECURITY,
        sync_to_thread=True,
        responses=TOKEN_RESPONSES,
    )
    def set_alias(self, alias: str, data: SetAlias, registry: Registry) -> ModelInfo:
        """Point an alias (e.g. challenger) at a version, after verifying its digests."""
        loaded = registry.set_alias(alias, data.version, reason="set through the API")
        return to_info(loaded.meta, registry.aliases())

    @post(
        "/aliases/{alias:str}/rollback",
        status_code=200,
        guards=[require_token],
        security=SECURITY,
        sync_to_thread=True,
        responses=TOKEN_RESPONSES,
    )
    def rollback(self, alias: str, registry: Registry) -> ModelInfo:
        """Point an alias back at the version it held before its last move."""
        loaded = registry.rollback(alias)
        return to_info(loaded.meta, registry.aliases())

    @delete(
        "/aliases/{alias:str}",
        status_code=200,
        guards=[require_token],
        security=SECURITY,
        sync_to_thread=True,
        responses=TOKEN_RESPONSES,
    )
    def remove_alias(self, alias: str, registry: Registry) -> AliasesInfo:
        """Remove an alias (removing champion stops scoring until another version is promoted)."""
        registry.remove_alias(alias)
        return aliases_info(registry)
