"""FerretDB (MongoDB wire protocol on SQLite): round trips, operator queries, data kept over a restart."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymongo import ASCENDING, DESCENDING, MongoClient

from gaitstream import clients
from gaitstream.config import Config

pytestmark = pytest.mark.integration

STACK = Path(__file__).resolve().parents[2] / "stack"


def _client(cfg: Config) -> MongoClient:
    return clients.mongo(cfg, timeout=5.0)


@pytest.fixture()
def collection(stack: Config) -> Iterator:
    """A fresh, uniquely named collection in a test database, dropped afterwards."""
    client = _client(stack)
    coll = client[f"{stack.mongo.database}_test"][f"t_{uuid.uuid4().hex[:12]}"]
    yield coll
    try:
        coll.drop()
    finally:
        client.close()


def test_insert_find_round_trip(collection) -> None:
    doc = {
        "_id": uuid.uuid4().hex,
        "subject": "GaPt03",
        "cadence": 104.5,
        "tags": ["pd", "walk"],
        "nested": {"left": 1, "right": 2},
    }
    collection.insert_one(dict(doc))
    assert collection.find_one({"_id": doc["_id"]}) == doc
    assert collection.count_documents({}) == 1


def test_operator_query_sort_limit(collection) -> None:
    collection.insert_many([{"run": i, "score": i * 0.1, "status": "done" if i % 2 else "failed"} for i in range(20)])
    got = list(
        collection.find({"run": {"$gt": 10}, "status": "done"}, {"_id": 0, "run": 1}).sort("run", DESCENDING).limit(3)
    )
    assert [d["run"] for d in got] == [19, 17, 15]
    got = list(collection.find({"score": {"$gte": 0.5, "$lt": 0.8}}).sort("run", ASCENDING))
    assert [d["run"] for d in got] == [5, 6, 7]
    assert collection.count_documents({"run": {"$in": [1, 2, 99]}}) == 2
    collection.update_one({"run": 3}, {"$set": {"status": "rerun"}})
    assert collection.find_one({"run": 3})["status"] == "rerun"


def test_document_survives_restart(stack: Config) -> None:
    db, name = f"{stack.mongo.database}_test", f"restart_{uuid.uuid4().hex[:12]}"
    doc = {"_id": uuid.uuid4().hex, "kept": True, "n": 42}
    client = _client(stack)
    try:
        client[db][name].insert_one(dict(doc))
    finally:
        client.close()

    proc = subprocess.run([str(STACK / "ferretdb.sh"), "restart"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    client = _client(stack)
    try:
        assert client[db][name].find_one({"_id": doc["_id"]}) == doc
        client[db][name].drop()
    finally:
        client.close()
