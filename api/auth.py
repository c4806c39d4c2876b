"""Bearer-token guard for the mutating routes (token from [api] token)."""
from __future__ import annotations

import hmac

from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler

from api.errors import Unauthorized

SECURITY = [{"BearerToken": []}]


def require_token(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    expected = connection.app.state.settings.token
    scheme, _, token = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected.encode()):
        raise Unauthorized("missing or invalid bearer token")
