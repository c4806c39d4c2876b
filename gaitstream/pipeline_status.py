"""What the pipeline's own processes report about themselves, beyond their health check.

``python -m gaitstream.pipeline_status NAME`` (NAME: bridge, streaming, api; used by
``stack/status`` through ``stack/NAME.sh status``) prints the supervisor's restart count and last
cause and, for the streaming job, each query's state and the age of its last progress; it exits 1
when something is down or stale (:func:`problems`), else 0. The same readings feed the API's
``/metrics`` (:func:`prometheus_lines`).

Config keys: [supervise] status_dir, stale_after_seconds; [streaming] status_file,
status_interval_seconds; [bridge] stats_file.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from datetime import datetime
from typing import Any

from gaitstream import config as gs_config
from gaitstream import heartbeats

COMPONENTS = ("bridge", "streaming", "api")
# The streaming job's state when it has written no status file (yet).
NO_STATUS = "no status file"


def _age_s(epoch_s: float | None, now: float) -> float | None:
    return None if epoch_s is None else round(now - epoch_s, 1)


def progress_epoch_s(timestamp: str | None) -> float | None:
    """A Structured Streaming progress timestamp (ISO 8601, UTC ``Z``) in epoch seconds."""
    if not timestamp:
        return None
    try:
        return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def pid_alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def supervisor(cfg: gs_config.Config, name: str) -> dict[str, Any] | None:
    """The supervisor's status file, with ``alive`` (its pid runs) added; None if it never ran."""
    doc = heartbeats.supervisor(cfg, name).read()
    if doc is not None:
        doc["alive"] = pid_alive(doc.get("pid"))
    return doc


def streaming_job(cfg: gs_config.Config, now: float | None = None) -> dict[str, Any]:
    """The job's status file (``streaming.status``) judged: file age, and per query its age and staleness."""
    now = time.time() if now is None else now
    stale_after = cfg.supervise.stale_after_seconds
    heartbeat = heartbeats.streaming(cfg)
    file_max_age = heartbeat.max_age_s
    status = heartbeat.read()
    if status is None:
        return {"state": NO_STATUS, "age_s": None, "fresh": False, "queries": [], "ui_url": None}
    age = heartbeat.age_s(status, now)
    started = status.get("started_at_ms")
    running_s = now - started / 1000 if isinstance(started, (int, float)) else math.inf
    queries = []
    for query in status.get("queries") or []:
        q_age = _age_s(progress_epoch_s(query.get("timestamp")), now)
        # No progress yet is fine for a job that started less than stale_after seconds ago.
        stale = running_s > stale_after if q_age is None else q_age > stale_after
        queries.append({**query, "last_progress_age_s": q_age, "stale": stale})
    return {
        "state": status.get("state"),
        "age_s": age,
        "fresh": age is not None and age <= file_max_age,
        "queries": queries,
        "ui_url": status.get("ui_url"),
    }


def problems(cfg: gs_config.Config, name: str) -> list[str]:
    """Why ``name`` is not fine, beyond its health check (empty when it is)."""
    out = []
    sup = supervisor(cfg, name)
    if sup is not None and cfg.supervise.enabled:
        if sup["state"] in ("gave-up", "stopped") or not sup["alive"]:
            out.append(f"supervisor {sup['state']}" + ("" if sup["alive"] else " (not running)"))
        elif sup["state"] == "backoff":
            out.append("supervisor waiting to restart it")
    if name == "streaming":
        job = streaming_job(cfg)
        if not job["fresh"]:
            out.append(
                f"status file {job['state']}" + (f", {job['age_s']:.0f}s old" if job["age_s"] is not None else "")
            )
        elif job["state"] != "running":
            out.append(f"job {job['state']}")
        for query in job["queries"]:
            if not query.get("active"):
                out.append(f"query {query['name']} not active")
            elif query["stale"]:
                age = query["last_progress_age_s"]
                out.append(
                    f"query {query['name']} stale (last progress {'never' if age is None else f'{age:.0f}s ago'})"
                )
    return out


def stopped_on_purpose(cfg: gs_config.Config, name: str) -> tuple[bool, str]:
    """For a process that is not running: was it never started or stopped on request (True), or
    did it die (its supervisor gave up, or the supervisor itself was killed)?"""
    sup = supervisor(cfg, name)
    if sup is None:
        return True, "not started"
    if sup["state"] == "stopped":
        return True, "stopped on request"
    if sup["state"] == "gave-up":
        last = sup.get("last_exit") or {}
        return False, f"DOWN: supervisor gave up after {sup.get('restarts', 0)} restart(s), last {last.get('cause')}"
    return False, f"DOWN: supervisor pid {sup.get('pid')} gone while {sup['state']} (killed?)"


def _clock(epoch_s: float | None) -> str:
    return time.strftime("%H:%M:%S", time.localtime(epoch_s)) if epoch_s else "?"


def describe(cfg: gs_config.Config, name: str) -> list[str]:
    lines = []
    sup = supervisor(cfg, name)
    if sup is not None:
        state = sup["state"] if sup["alive"] else "not running"
        text = f"supervisor pid {sup['pid']} {state}, {sup['restarts']} restart(s)"
        last = (sup.get("history") or [None])[-1]
        if last:
            text += f"; last at {_clock(last['at'])}: {last['cause']} after {last['ran_s']:.0f}s"
            if last.get("error"):
                text += f" ({last['error'][:160]})"
        lines.append(text)
    elif cfg.supervise.enabled:
        lines.append("not supervised (started without stack/*.sh, or supervisor status file missing)")
    if name == "streaming":
        job = streaming_job(cfg)
        age = f", status {job['age_s']:.0f}s old" if job["age_s"] is not None else ""
        lines.append(f"job {job['state']}{age}")
        for query in job["queries"]:
            q_age = query["last_progress_age_s"]
            when = (
                "never" if q_age is None else f"{_clock(progress_epoch_s(query.get('timestamp')))} ({q_age:.0f}s ago)"
            )
            duration = query.get("batch_duration_ms")
            lines.append(
                f"query {query['name']}: {'active' if query.get('active') else 'NOT active'}, "
                f"batch {query.get('batch_id')}, last progress {when}"
                + (f", {duration / 1000:.1f}s per batch" if isinstance(duration, (int, float)) else "")
                + (" STALE" if query["stale"] and query.get("active") else "")
                + (f", error: {str(query['error']).splitlines()[0][:200]}" if query.get("error") else "")
            )
    return lines


def _metric(name: str, value: float | None, **labels: str) -> str | None:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    label_text = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{name}{{{label_text}}} {value}" if labels else f"{name} {value}"


BRIDGE_COUNTERS = ("received", "forwarded", "dead_lettered", "resent")


def prometheus_lines(cfg: gs_config.Config) -> list[str]:
    """Pipeline metrics in Prometheus text format: supervisor restarts, the bridge's counters,
    per-query batch duration, progress age and input rate."""
    now = time.time()
    lines: list[str | None] = [
        "# TYPE gaitstream_supervisor_restarts_total counter",
        "# TYPE gaitstream_supervisor_up gauge",
    ]
    for name in COMPONENTS:
        sup = supervisor(cfg, name)
        if sup is not None:
            lines.append(_metric("gaitstream_supervisor_restarts_total", sup.get("restarts", 0), process=name))
            lines.append(
                _metric("gaitstream_supervisor_up", int(sup["alive"] and sup["state"] == "running"), process=name)
            )
    stats = heartbeats.bridge(cfg).read()
    if stats is not None:
        for key in BRIDGE_COUNTERS:
            if isinstance(stats.get(key), (int, float)):
                lines.append(f"# TYPE gaitstream_bridge_{key}_total counter")
                lines.append(_metric(f"gaitstream_bridge_{key}_total", stats[key]))
        if isinstance(stats.get("updated_at"), (int, float)):
            lines.append(_metric("gaitstream_bridge_stats_age_seconds", round(now - stats["updated_at"], 1)))
    job = streaming_job(cfg, now)
    if job["age_s"] is not None:
        lines.append(_metric("gaitstream_streaming_status_age_seconds", job["age_s"]))
    lines.append(_metric("gaitstream_streaming_running", int(job["fresh"] and job["state"] == "running")))
    for query in job["queries"]:
        q = query["name"]
        lines.append(_metric("gaitstream_streaming_query_active", int(bool(query.get("active"))), query=q))
        lines.append(_metric("gaitstream_streaming_last_progress_age_seconds", query["last_progress_age_s"], query=q))
        duration = query.get("batch_duration_ms")
        lines.append(
            _metric(
                "gaitstream_streaming_batch_duration_seconds",
                duration / 1000 if isinstance(duration, (int, float)) else None,
                query=q,
            )
        )
        lines.append(_metric("gaitstream_streaming_batch_id", query.get("batch_id"), query=q))
        lines.append(_metric("gaitstream_streaming_input_rows_per_second", query.get("input_rows_per_second"), query=q))
        lines.append(
            _metric("gaitstream_streaming_processed_rows_per_second", query.get("processed_rows_per_second"), query=q)
        )
    return [line for line in lines if line is not None]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gaitstream.pipeline_status",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("name", choices=COMPONENTS)
    parser.add_argument(
        "--not-running",
        action="store_true",
        help="the process is not running: exit 0 if never started or stopped on request, 1 if it died",
    )
    args = parser.parse_args(argv)
    cfg = gs_config.load()
    if args.not_running:
        fine, why = stopped_on_purpose(cfg, args.name)
        print(f"[{args.name}]   {why}")
        return 0 if fine else 1
    for line in describe(cfg, args.name):
        print(f"[{args.name}]   {line}")
    found = problems(cfg, args.name)
    for problem in found:
        print(f"[{args.name}]   PROBLEM: {problem}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
