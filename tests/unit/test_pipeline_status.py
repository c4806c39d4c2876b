"""gaitstream.pipeline_status: stale queries, dead supervisors and the Prometheus lines, from real files."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime

from gaitstream import config as gs_config
from gaitstream import pipeline_status


def iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def setup(tmp_path, query_age_s: float, restarts: int = 2, state: str = "running"):
    env = {
        "GAITSTREAM_SUPERVISE_STATUS_DIR": str(tmp_path),
        "GAITSTREAM_STREAMING_STATUS_FILE": str(tmp_path / "s.json"),
        "GAITSTREAM_BRIDGE_STATS_FILE": str(tmp_path / "b.json"),
        "GAITSTREAM_SUPERVISE_STALE_AFTER_SECONDS": "60",
    }
    cfg = gs_config.load(env=env)
    now = time.time()
    (tmp_path / "s.json").write_text(
        json.dumps(
            {
                "updated_at_ms": int(now * 1000),
                "started_at_ms": int((now - 600) * 1000),
                "state": "running",
                "queries": [
                    {
                        "name": "windows",
                        "active": True,
                        "batch_id": 7,
                        "timestamp": iso(now - query_age_s),
                        "batch_duration_ms": 1500,
                        "input_rows_per_second": 12.5,
                    },
                    {"name": "archive", "active": True, "batch_id": 3, "timestamp": iso(now - 2)},
                ],
            }
        )
    )
    (tmp_path / "streaming-supervisor.json").write_text(
        json.dumps(
            {
                "name": "streaming",
                "pid": os.getpid(),
                "state": state,
                "restarts": restarts,
                "history": [{"at": now - 100, "cause": "exit code 137 (SIGKILL)", "error": "boom", "ran_s": 50}],
            }
        )
    )
    (tmp_path / "b.json").write_text(
        json.dumps({"updated_at": now, "received": 10, "forwarded": 9, "dead_lettered": 1, "resent": 0})
    )
    return cfg


def test_a_fresh_job_has_no_problem(tmp_path):
    cfg = setup(tmp_path, query_age_s=3)
    assert pipeline_status.problems(cfg, "streaming") == []
    text = "\n".join(pipeline_status.describe(cfg, "streaming"))
    assert "2 restart(s)" in text and "exit code 137 (SIGKILL)" in text and "query windows: active, batch 7" in text


def test_a_query_without_progress_is_stale_and_a_gave_up_supervisor_is_a_problem(tmp_path):
    cfg = setup(tmp_path, query_age_s=300, state="gave-up")
    found = pipeline_status.problems(cfg, "streaming")
    assert any("query windows stale" in p for p in found) and any("gave-up" in p for p in found)
    assert not any("archive" in p for p in found)


def test_prometheus_lines(tmp_path):
    cfg = setup(tmp_path, query_age_s=3)
    lines = pipeline_status.prometheus_lines(cfg)
    assert 'gaitstream_supervisor_restarts_total{process="streaming"} 2' in lines
    assert "gaitstream_bridge_forwarded_total 9" in lines and "gaitstream_bridge_dead_lettered_total 1" in lines
    assert 'gaitstream_streaming_batch_duration_seconds{query="windows"} 1.5' in lines
    assert any(line.startswith('gaitstream_streaming_last_progress_age_seconds{query="windows"} ') for line in lines)
    assert "gaitstream_streaming_running 1" in lines
