"""Training runs, one MongoDB (FerretDB) document each: params, data snapshot, metrics, timings.

The ``MongoClient`` is created once at startup (see api.app) and passed in; it connects lazily, so
the API starts while FerretDB is down and the calls raise PyMongoError, answered with 503.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from api.errors import NotFound

QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


class RunStore:
    def __init__(self, client, database: str, collection: str):
        self.collection = client[database][collection]

    def create(self, run_id: str, params: dict[str, Any]) -> dict[str, Any]:
        doc = {
            "_id": run_id,
            "run_id": run_id,
            "status": QUEUED,
            "params": params,
            "created_at": now_iso(),
            "started_at": None,
            "finished_at": None,
            "timings": {},
            "data": None,
            "metrics": None,
            "model_version": None,
            "promoted": False,
            "error": None,
        }
        self.collection.insert_one(doc)
        return doc

    def update(self, run_id: str, **fields: Any) -> None:
        self.collection.update_one({"_id": run_id}, {"$set": fields})

    def get(self, run_id: str) -> dict[str, Any]:
        doc = self.collection.find_one({"_id": run_id})
        if doc is None:
            raise NotFound(f"no run {run_id!r}")
        return doc

    def latest(self, limit: int, status: str | None = None) -> list[dict[str, Any]]:
        query = {"status": status} if status else {}
        return list(self.collection.find(query).sort("created_at", -1).limit(limit))

    def fail_unfinished(self, reason: str) -> int:
        """Runs left queued/running by a previous process (it died): mark them failed."""
        result = self.collection.update_many(
            {"status": {"$in": [QUEUED, RUNNING]}},
            {"$set": {"status": FAILED, "error": reason, "finished_at": now_iso()}},
        )
        return result.modified_count
