"""Each query's last progress as a small JSON file the API (or a human) can read.

Written atomically (temp file + rename) by the driver every ``streaming.status_interval_seconds``:
``{"updated_at_ms", "started_at_ms", "ui_url", "state", "queries": [{"name", "id", "run_id", "active",
"batch_id", "timestamp", "num_input_rows", "input_rows_per_second", "processed_rows_per_second",
"batch_duration_ms", "durations_ms", "state_operators", "error"}]}``. Rates count Kafka records (each a
batch of samples); ``durations_ms`` is Spark's split of the batch's time (latestOffset, walCommit,
addBatch, ...); ``state_operators`` has one entry per stateful operator: its rows and memory, and the
milliseconds its batch spent updating, evicting and committing (a dedupe's eviction scans its state).
"""

from __future__ import annotations

import time
from pathlib import Path

from gaitstream import heartbeats

STATE_OPERATOR_FIELDS = {
    "operatorName": "operator",
    "numRowsTotal": "rows_total",
    "numRowsUpdated": "rows_updated",
    "numRowsRemoved": "rows_removed",
    "memoryUsedBytes": "memory_used_bytes",
    "allUpdatesTimeMs": "updates_ms",
    "allRemovalsTimeMs": "removals_ms",
    "commitTimeMs": "commit_ms",
}


def state_operators(progress: dict) -> list[dict]:
    """Spark's stateOperators progress, named as the rest of the file (snake case)."""
    return [
        {ours: operator.get(theirs) for theirs, ours in STATE_OPERATOR_FIELDS.items()}
        for operator in progress.get("stateOperators") or []
    ]


def query_status(query) -> dict:
    progress = query.lastProgress or {}
    durations = progress.get("durationMs") or {}
    error = query.exception() if not query.isActive else None
    return {
        "name": query.name,
        "id": str(query.id),
        "run_id": str(query.runId),
        "active": query.isActive,
        "batch_id": progress.get("batchId"),
        "timestamp": progress.get("timestamp"),
        "num_input_rows": progress.get("numInputRows"),
        "input_rows_per_second": progress.get("inputRowsPerSecond"),
        "processed_rows_per_second": progress.get("processedRowsPerSecond"),
        "batch_duration_ms": durations.get("triggerExecution"),
        "durations_ms": durations,
        "state_operators": state_operators(progress),
        "error": str(error) if error else None,
    }


def write_status(path: Path, queries, ui_url: str | None, state: str, started_at_ms: int | None = None) -> dict:
    status = {
        "updated_at_ms": int(time.time() * 1000),
        "started_at_ms": started_at_ms,
        "ui_url": ui_url,
        "state": state,
        "queries": [query_status(q) for q in queries],
    }
    heartbeats.write(path, status, indent=1)
    return status
