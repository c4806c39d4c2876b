"""FerretDB (MongoDB wire protocol over SQLite): insert a document, read it back by its id."""

from __future__ import annotations

import time
import uuid

from gaitstream import clients
from gaitstream.config import Config

HEALTH_COLLECTION = "health"


def health_database(cfg: Config) -> str:
    """The health check's own database, next to the project's (``<mongo.database>_health``)."""
    return f"{cfg.mongo.database}_health"


def check(cfg: Config) -> str:
    client = clients.mongo(cfg, timeout=2.0, appname="gaitstream-health")
    try:
        coll = client[health_database(cfg)][HEALTH_COLLECTION]
        doc_id = uuid.uuid4().hex
        coll.insert_one({"_id": doc_id, "at": time.time(), "probe": "gaitstream.health"})
        found = coll.find_one({"_id": doc_id})
        if found is None or found.get("probe") != "gaitstream.health":
            raise RuntimeError(f"document {doc_id} written but not read back (got {found!r})")
        coll.delete_one({"_id": doc_id})
        info = client.admin.command("buildInfo")
        ferret = info.get("ferretdbVersion") or info.get("ferretdbFeatures", {}).get("version") or "?"
        return (
            f"ferretdb {ferret} ok (mongodb wire {info.get('version', '?')}, "
            f"{cfg.mongo.host}:{cfg.mongo.port}, round trip in {health_database(cfg)}.{HEALTH_COLLECTION})"
        )
    finally:
        client.close()
