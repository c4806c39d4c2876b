"""Bearer-token guards (token from [api] token).

* :func:`require_token`: the mutating routes. An empty configured token never lets a request
  through (it locks those routes instead of turning authentication off).
* :func:`require_token_when_exposed`: the read routes that return health data (``/diagnose``,
  ``/dashboard/*``, ``/runs``). Open while the API binds to loopback (``api.host``), the same
  token otherwise.
"""

from __future__ import annotations

import hmac

from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler
from litestar.openapi.spec import SecurityRequirement

from api.errors import Unauthorized

SECURITY: list[SecurityRequirement] = [{"BearerToken": []}]


def token_matches(authorization: str, expected: str) -> bool:
    """``Authorization: Bearer <token>`` carries ``expected``; never true when ``expected`` is empty."""
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not expected or not token:
        return False
    return hmac.compare_digest(token.encode(), expected.encode())


def require_token(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    if not token_matches(connection.headers.get("authorization", ""), connection.app.state.settings.token):
        raise Unauthorized("missing or invalid bearer token")


def require_token_when_exposed(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    if connection.app.state.settings.reads_need_token:
        require_token(connection, handler)
