"""One base exception for the service, mapped to an HTTP response in one place (:func:`handlers`)."""

from __future__ import annotations

import logging
from typing import Any

from litestar import MediaType, Request, Response
from litestar.types import ExceptionHandlersMap

from model import errors as model_errors

log = logging.getLogger("api")


class ApiError(Exception):
    """An error the client can act on: ``status_code`` and a JSON body ``{"error": ..., **extra}``."""

    status_code = 400
    headers: dict[str, str] = {}

    def __init__(self, message: str, **extra: Any):
        super().__init__(message)
        self.message, self.extra = message, extra


class Unauthorized(ApiError):
    status_code = 401
    headers = {"WWW-Authenticate": "Bearer"}


class NotFound(ApiError):
    status_code = 404


class Conflict(ApiError):
    status_code = 409


class InvalidInput(ApiError):
    status_code = 422


class ServiceUnavailable(ApiError):
    """Cassandra, MongoDB or the model is not there: retry later (503)."""

    status_code = 503


# The model package's plain exceptions and the status each one answers with.
MODEL_ERROR_STATUS: dict[type[model_errors.ModelError], int] = {
    model_errors.NotFound: 404,
    model_errors.IntegrityError: 409,  # an artifact whose digest does not match: never loaded
    model_errors.NoModel: 503,  # nothing promoted yet: retry after POST /retrain + promote
    model_errors.Unscorable: 422,
}


def _backend_errors() -> tuple[type[Exception], ...]:
    """Driver exceptions that mean "the database is down or slow", answered with 503."""
    from cassandra import DriverException, OperationTimedOut, ReadTimeout, Unavailable
    from cassandra.cluster import NoHostAvailable
    from cassandra.connection import ConnectionException
    from pymongo.errors import PyMongoError

    return (
        NoHostAvailable,
        OperationTimedOut,
        ReadTimeout,
        Unavailable,
        DriverException,
        ConnectionException,
        PyMongoError,
    )


# Seconds a client should wait before retrying a 503 (the drivers reconnect by themselves).
RETRY_AFTER_S = 5


def backend_name(exc: BaseException) -> str:
    """Which database an exception comes from, by its driver package."""
    module = type(exc).__module__
    return (
        "mongodb"
        if module.startswith(("pymongo", "bson"))
        else "cassandra"
        if module.startswith("cassandra")
        else "backend"
    )


def _api_error(_: Request, exc: ApiError) -> Response:
    return Response(
        {"error": exc.message, **exc.extra}, status_code=exc.status_code, media_type=MediaType.JSON, headers=exc.headers
    )


def _model_error(_: Request, exc: model_errors.ModelError) -> Response:
    status = next((code for kind, code in MODEL_ERROR_STATUS.items() if isinstance(exc, kind)), 500)
    return Response({"error": exc.message, **exc.extra}, status_code=status, media_type=MediaType.JSON)


def _backend_error(request: Request, exc: Exception) -> Response:
    """503 with the backend and the reason: the drivers reconnect by themselves, so a retry after
    ``Retry-After`` seconds succeeds once the database is back (no API restart)."""
    backend = backend_name(exc)
    log.warning("%s %s: %s unavailable: %s: %s", request.method, request.url.path, backend, type(exc).__name__, exc)
    reason = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
    return Response(
        {
            "error": f"{backend} unavailable ({type(exc).__name__}); retry later",
            "backend": backend,
            "reason": f"{type(exc).__name__}: {reason}" if reason else type(exc).__name__,
        },
        status_code=503,
        media_type=MediaType.JSON,
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


def handlers() -> ExceptionHandlersMap:
    """Exception → response mapping for ``Litestar(exception_handlers=...)``."""
    return {
        ApiError: _api_error,
        model_errors.ModelError: _model_error,
        **{kind: _backend_error for kind in _backend_errors()},
    }
