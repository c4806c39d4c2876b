"""The API while its databases are unreachable (real drivers against ports nobody listens on):
503 with the backend and the reason and a Retry-After, never 500 (issue 17). Recovery once the
database is back is covered with the real Cassandra restart in test_outages.py's run of the API."""

from __future__ import annotations

import os
import socket

import pytest
from litestar.testing import TestClient

from gaitstream import config as gs_config

pytestmark = pytest.mark.integration


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def client_without_databases(tmp_path_factory):
    from api.app import create_app

    env = {
        **os.environ,
        "GAITSTREAM_CASSANDRA_PORT": str(closed_port()),
        "GAITSTREAM_MONGO_PORT": str(closed_port()),
        "GAITSTREAM_API_BACKEND_TIMEOUT": "1.0",
        "GAITSTREAM_API_REGISTRY_DIR": str(tmp_path_factory.mktemp("registry")),
    }
    with TestClient(create_app(gs_config.load(env=env))) as client:
        yield client


@pytest.mark.parametrize(("path", "backend"), [("/dashboard/walks", "cassandra"), ("/runs", "mongodb")])
def test_a_database_down_is_a_503_with_its_reason(client_without_databases, path, backend):
    response = client_without_databases.get(path)
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["backend"] == backend and body["reason"] and "retry later" in body["error"]
    assert int(response.headers["retry-after"]) > 0


def test_health_says_which_database_is_down(client_without_databases):
    response = client_without_databases.get("/health")
    assert response.status_code == 503
    assert response.json()["cassandra"].startswith("down") and response.json()["mongo"].startswith("down")
