"""One base exception for the service, mapped to an HTTP response in one place (:func:`handlers`)."""
from __future__ import annotations

import logging
from typing import Any

from litestar import MediaType, Request, Response

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


class IntegrityError(ApiError):
    """A registry artifact whose checksum does not match its meta.json: never loaded."""

    status_code = 409


def _backend_errors() -> tuple[type[BaseException], ...]:
    """Driver exceptions that mean "the database is down or slow", answered with 503."""
    from cassandra import DriverException, OperationTimedOut, ReadTimeout, Unavailable
    from cassandra.cluster import NoHostAvailable
    from pymongo.errors import PyMongoError

    return (NoHostAvailable, OperationTimedOut, ReadTimeout, Unavailable, DriverException, PyMongoError)


def _api_error(_: Request, exc: ApiError) -> Response:
    return Response({"error": exc.message, **exc.extra}, status_code=exc.status_code, media_type=MediaType.JSON,
                    headers=exc.headers)


def _backend_error(request: Request, exc: Exception) -> Response:
    log.warning("%s %s: backend unavailable: %s: %s", request.method, request.url.path, type(exc).__name__, exc)
    return Response({"error": f"backend unavailable ({type(exc).__name__}); retry later"},
                    status_code=503, media_type=MediaType.JSON)


def handlers() -> dict[type[BaseException], Any]:
    """Exception → response mapping for ``Litestar(exception_handlers=...)``."""
    return {ApiError: _api_error, **{kind: _backend_error for kind in _backend_errors()}}
