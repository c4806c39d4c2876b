"""The system monitor behind the dashboard's Pipeline panel: every service's health, the streaming job's queries
(with the time since each one's last batch), Kafka consumer lag, the bridge's counters, each
pipeline process's supervisor (restarts) and whether data flows, in one snapshot.

Health checks are the stack's own (:func:`gaitstream.health.check`), run in parallel with their
short client timeouts; the snapshot is cached a few seconds so several open pages cost one round.
Nothing here raises: a part that cannot be read says why in its ``error`` field.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from gaitstream import endpoints, health, heartbeats, pipeline_status
from gaitstream.config import Config

CACHE_SECONDS = 3.0


def check_one(service: str, cfg: Config) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        ok, detail = True, health.check(service, cfg)
    except Exception as exc:  # a failed check is the answer
        ok, detail = False, f"{type(exc).__name__}: {str(exc)[:300]}"
    kind = "service" if service in health.SERVICES else "component"
    return {
        "name": service,
        "kind": kind,
        "ok": ok,
        "detail": detail,
        "check_ms": round((time.perf_counter() - started) * 1000, 1),
    }


def checkpoint_offsets(checkpoint_dir: Path, topic: str) -> dict[str, int]:
    """Per query, the Kafka offset its latest planned micro-batch reads up to (from the checkpoint's
    ``offsets/<batch>`` file: a version line, a metadata line, then one JSON line per source)."""
    out: dict[str, int] = {}
    if not checkpoint_dir.is_dir():
        return out
    for query_dir in sorted(p for p in checkpoint_dir.iterdir() if (p / "offsets").is_dir()):
        batches = [int(p.name) for p in (query_dir / "offsets").iterdir() if p.name.isdigit()]
        if not batches:
            continue
        lines = (query_dir / "offsets" / str(max(batches))).read_text().splitlines()
        for line in lines[2:]:
            try:
                source = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(source, dict) and topic in source:
                out[query_dir.name] = sum(int(v) for v in source[topic].values())
    return out


def kafka_end_offset(cfg: Config, topic: str) -> int:
    """Sum over partitions of the topic's end offsets (the next offset to be written)."""
    from kafka import TopicPartition

    from gaitstream import clients

    consumer = clients.kafka_consumer(cfg, connections_max_idle_ms=10000)
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        ends = consumer.end_offsets([TopicPartition(topic, p) for p in partitions]) if partitions else {}
        return int(sum(ends.values()))
    finally:
        consumer.close()


def kafka_lag(cfg: Config) -> dict[str, Any]:
    """Records in the samples topic not yet read by each streaming query."""
    topic = cfg.kafka.samples_topic
    out: dict[str, Any] = {"topic": topic, "end_offset": None, "queries": [], "error": None}
    try:
        out["end_offset"] = kafka_end_offset(cfg, topic)
    except Exception as exc:
        out["error"] = f"Kafka end offsets: {type(exc).__name__}: {str(exc)[:200]}"
        return out
    checkpoints = endpoints.local_checkpoint_dir(cfg)
    if checkpoints is None:
        out["error"] = f"checkpoints at {endpoints.checkpoint_root(cfg)} are not local: lag unknown"
        return out
    for name, offset in checkpoint_offsets(checkpoints, topic).items():
        out["queries"].append({"name": name, "offset": offset, "lag": max(out["end_offset"] - offset, 0)})
    if not out["queries"]:
        out["error"] = f"no streaming checkpoint reads {topic} yet"
    return out


def streaming_status(cfg: Config) -> dict[str, Any]:
    """The job's status file (see streaming.status) with its age, or why there is none; each query
    with ``last_progress_age_s`` (seconds since its last batch) and ``stale`` (beyond
    ``supervise.stale_after_seconds``), judged as ``stack/status`` does."""
    stale_after = cfg.supervise.stale_after_seconds
    judged = pipeline_status.streaming_job(cfg)  # one read of the file, judged as stack/status does
    if judged["state"] == pipeline_status.NO_STATUS:
        return {
            "state": pipeline_status.NO_STATUS,
            "error": f"no status file at {heartbeats.streaming(cfg).path}: is the streaming job running?",
            "queries": [],
            "age_s": None,
            "ui_url": None,
            "fresh": False,
            "stale_after_s": stale_after,
        }
    age = judged["age_s"]
    return {
        "state": judged["state"],
        "error": None,
        "queries": judged["queries"],
        "age_s": None if age is None else round(age, 1),
        "ui_url": judged["ui_url"],
        "fresh": judged["fresh"],
        "stale_after_s": stale_after,
    }


def supervisors(cfg: Config) -> list[dict[str, Any]]:
    """Per pipeline process (bridge, streaming, api) its supervisor: state, restarts, the last one's cause."""
    out = []
    for name in pipeline_status.COMPONENTS:
        sup = pipeline_status.supervisor(cfg, name)
        if sup is None:
            out.append(
                {
                    "name": name,
                    "supervised": False,
                    "state": "not started",
                    "alive": False,
                    "restarts": 0,
                    "last_restart_at": None,
                    "last_cause": None,
                    "last_error": None,
                }
            )
            continue
        last = (sup.get("history") or [None])[-1] or {}
        out.append(
            {
                "name": name,
                "supervised": True,
                "state": sup.get("state"),
                "alive": bool(sup["alive"]),
                "restarts": int(sup.get("restarts") or 0),
                "last_restart_at": last.get("at"),
                "last_cause": last.get("cause"),
                "last_error": last.get("error"),
            }
        )
    return out


def duration_text(seconds: float) -> str:
    """``95 s``, ``12 min``, ``5 h``, ``331 d``: an age a person reads at a glance."""
    for limit, unit, size in ((120, "s", 1), (7200, "min", 60), (172800, "h", 3600)):
        if seconds < limit:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds / 86400:.0f} d"


FLOW_SERVICES = ("mosquitto", "kafka", "cassandra", "hdfs")  # on the samples' path (FerretDB is not)


def data_flow(services: list[dict[str, Any]], streaming: dict[str, Any], sups: list[dict[str, Any]]) -> dict[str, Any]:
    """Whether data flows from the sensors to Cassandra and the archive; if not, why (the banner)."""
    reasons = []
    by_name = {s["name"]: s for s in services}
    for sup in sups:
        if sup["name"] not in ("bridge", "streaming") or not sup["supervised"]:
            continue
        if sup["state"] == "backoff":
            reasons.append(f"{sup['name']} restarting (restart {sup['restarts']}, last: {sup['last_cause']})")
        elif sup["state"] == "gave-up":
            reasons.append(f"{sup['name']} down: its supervisor gave up after {sup['restarts']} restart(s)")
        elif sup["state"] == "stopped":
            reasons.append(f"{sup['name']} stopped")
        elif not sup["alive"]:
            reasons.append(f"{sup['name']} down: its supervisor is not running")
    for name in ("bridge", "streaming"):
        check = by_name.get(name)
        if check is not None and not check["ok"] and not any(r.startswith(name) for r in reasons):
            reasons.append(f"{name} down: {check['detail'][:160]}")
    for name in FLOW_SERVICES:
        check = by_name.get(name)
        if check is not None and not check["ok"]:
            reasons.append(f"{name} down")
    if streaming.get("fresh"):
        for query in streaming.get("queries") or []:
            age = query.get("last_progress_age_s")
            if not query.get("active"):
                reasons.append(f"query {query['name']} stopped")
            elif query.get("stale"):
                reasons.append(
                    f"query {query['name']} stale: last batch "
                    + ("never" if age is None else f"{duration_text(age)} ago")
                    + f" (> {duration_text(streaming['stale_after_s'])})"
                )
    return {"flowing": not reasons, "reasons": reasons}


def bridge_stats(cfg: Config) -> dict[str, Any]:
    heartbeat = heartbeats.bridge(cfg)
    stats = heartbeat.read()
    if stats is None:
        return {"error": f"no stats file at {heartbeat.path}: is the bridge running?"}
    age = heartbeat.age_s(stats)
    stats["age_s"] = None if age is None else round(age, 1)
    stats["error"] = None
    return stats


class PipelineMonitor:
    """Builds (and caches for :data:`CACHE_SECONDS`) the Pipeline panel's snapshot."""

    def __init__(self, cfg: Config):
        self.cfg = cfg
        self._lock = threading.Lock()
        self._cached: tuple[float, dict[str, Any]] | None = None

    def snapshot(self) -> dict[str, Any]:
        with self._lock:  # concurrent pollers wait for one round instead of starting their own
            if self._cached is not None and time.monotonic() - self._cached[0] < CACHE_SECONDS:
                return self._cached[1]
            names = health.SERVICES + health.COMPONENTS
            with ThreadPoolExecutor(max_workers=len(names) + 1) as pool:
                lag = pool.submit(kafka_lag, self.cfg)
                services = list(pool.map(lambda name: check_one(name, self.cfg), names))
                lag_result = lag.result()
            streaming, sups = streaming_status(self.cfg), supervisors(self.cfg)
            result = {
                "checked_at_ms": int(time.time() * 1000),
                "services": services,
                "streaming": streaming,
                "kafka": lag_result,
                "bridge": bridge_stats(self.cfg),
                "spark_ui_url": f"http://127.0.0.1:{self.cfg.spark.ui_port}",
                "supervisors": sups,
                "flow": data_flow(services, streaming, sups),
            }
            self._cached = (time.monotonic(), result)
            return result
