"""YARN health: the ResourceManager's REST API reports STARTED and at least one active NodeManager."""

from __future__ import annotations

import json
import urllib.request

from gaitstream.config import Config

TIMEOUT_S = 3


def _get(cfg: Config, path: str) -> dict:
    url = f"http://{cfg.hdfs.host}:{cfg.hdfs.yarn_web_port}{path}"
    req = urllib.request.Request(url, headers={"Accept": "application/json"})
    with urllib.request.urlopen(req, timeout=TIMEOUT_S) as resp:
        return json.load(resp)


def check(cfg: Config) -> str:
    info = _get(cfg, "/ws/v1/cluster/info")["clusterInfo"]
    if info.get("state") != "STARTED":
        raise RuntimeError(f"ResourceManager state {info.get('state')!r}, not STARTED")
    metrics = _get(cfg, "/ws/v1/cluster/metrics")["clusterMetrics"]
    active = int(metrics.get("activeNodes", 0))
    if active < 1:
        raise RuntimeError("ResourceManager has no active NodeManager")
    return (
        f"yarn ok (rm {cfg.hdfs.host}:{cfg.hdfs.yarn_rm_port}, hadoop {info.get('hadoopVersion')}, "
        f"{active} active node(s), {metrics.get('totalMB')} MB)"
    )
