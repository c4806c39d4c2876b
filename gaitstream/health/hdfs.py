"""HDFS health: write a small file over WebHDFS (NameNode redirect to the DataNode), read it back."""

from __future__ import annotations

import time
import uuid

from hdfs import InsecureClient

from gaitstream import clients
from gaitstream.config import Config

HEALTH_DIR = "/tmp/gs-health"
TIMEOUT_S = 5
STALE_S = 300  # probe files left by a check that failed half-way are removed after this


def _remove_stale(c: InsecureClient) -> None:
    now_ms = time.time() * 1000
    for name, status in c.list(HEALTH_DIR, status=True):
        if now_ms - status["modificationTime"] > STALE_S * 1000:
            c.delete(f"{HEALTH_DIR}/{name}")


def check(cfg: Config) -> str:
    c = clients.hdfs(cfg, timeout=TIMEOUT_S)
    path = f"{HEALTH_DIR}/probe-{uuid.uuid4().hex}"
    payload = f"gaitstream health {uuid.uuid4().hex}".encode()
    try:
        c.write(path, data=payload, overwrite=True)
        with c.read(path) as reader:
            got = reader.read()
    finally:
        try:
            c.delete(path)
        except Exception:  # the check's own error (if any) is the one worth reporting
            pass
    if got != payload:
        raise RuntimeError(f"read back {got!r} from {path}, wrote {payload!r}")
    _remove_stale(c)
    used = c.content("/")
    return (
        f"hdfs ok (webhdfs {cfg.hdfs.host}:{cfg.hdfs.webhdfs_port}, "
        f"{len(payload)} B round trip, {used['fileCount']} files, {used['length']} B in /)"
    )
