"""The Pipeline panel's file readers: Spark checkpoint offsets, the job's status file, bridge stats;
and the data-flow verdict behind the dashboard's banner."""

from __future__ import annotations

import json
import time
import uuid

from api.monitor import bridge_stats, checkpoint_offsets, data_flow, streaming_status
from gaitstream import config as gs_config
from streaming.status import write_status


def write_offsets(folder, batch: int, sources: list[dict]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["v1", json.dumps({"batchWatermarkMs": 0, "batchTimestampMs": 0}), *map(json.dumps, sources)]
    (folder / str(batch)).write_text("\n".join(lines) + "\n")


def test_checkpoint_offsets_take_each_querys_latest_batch(tmp_path):
    write_offsets(tmp_path / "windows" / "offsets", 3, [{"gait.samples": {"0": 5, "1": 6}}])
    write_offsets(tmp_path / "windows" / "offsets", 12, [{"gait.samples": {"0": 50, "1": 60}}])  # 12 > 3 numerically
    write_offsets(tmp_path / "archive" / "offsets", 0, [{"other.topic": {"0": 9}}])
    (tmp_path / "windows" / "offsets" / ".12.crc").write_text("x")
    (tmp_path / "sources").mkdir()
    assert checkpoint_offsets(tmp_path, "gait.samples") == {"windows": 110}
    assert checkpoint_offsets(tmp_path / "missing", "gait.samples") == {}


class StubQuery:
    name, id, runId, isActive = "windows", uuid.uuid4(), uuid.uuid4(), True
    lastProgress = {"batchId": 4, "inputRowsPerSecond": 12.5, "processedRowsPerSecond": 20.0}

    def exception(self):
        return None


def test_status_and_stats_files_are_read_with_their_age(tmp_path):
    cfg = gs_config.load(
        env={
            "GAITSTREAM_STREAMING_STATUS_FILE": str(tmp_path / "status.json"),
            "GAITSTREAM_BRIDGE_STATS_FILE": str(tmp_path / "bridge.json"),
        }
    )
    missing = streaming_status(cfg)
    assert missing["queries"] == [] and "no status file" in missing["error"]
    assert "no stats file" in bridge_stats(cfg)["error"]
    write_status(tmp_path / "status.json", [StubQuery()], None, "running")
    (tmp_path / "bridge.json").write_text(json.dumps({"forwarded": 3, "updated_at": time.time() - 10}))
    status = streaming_status(cfg)
    assert status["state"] == "running" and status["error"] is None and 0 <= status["age_s"] < 5
    assert status["queries"][0]["input_rows_per_second"] == 12.5
    stats = bridge_stats(cfg)
    assert stats["forwarded"] == 3 and 9 <= stats["age_s"] < 15 and stats["error"] is None


def service(name: str, ok: bool = True) -> dict:
    return {
        "name": name,
        "kind": "service",
        "ok": ok,
        "detail": "ok" if ok else "ConnectionRefusedError",
        "check_ms": 1.0,
    }


def supervised(name: str, state: str = "running", restarts: int = 0, alive: bool = True) -> dict:
    return {
        "name": name,
        "supervised": True,
        "state": state,
        "alive": alive,
        "restarts": restarts,
        "last_restart_at": None,
        "last_cause": "exit code 1" if restarts else None,
        "last_error": None,
    }


def test_data_flow_says_why_data_is_not_flowing():
    names = ("mosquitto", "kafka", "cassandra", "hdfs", "ferretdb", "bridge", "streaming", "api")
    healthy = [service(n) for n in names]
    query = {"name": "windows", "active": True, "last_progress_age_s": 2.0, "stale": False}
    streaming = {"fresh": True, "stale_after_s": 180.0, "queries": [query]}
    sups = [supervised("bridge"), supervised("streaming", restarts=2), supervised("api")]
    assert data_flow(healthy, streaming, sups) == {"flowing": True, "reasons": []}

    stale = {**streaming, "queries": [{**query, "last_progress_age_s": 2e7, "stale": True}]}
    assert data_flow(healthy, stale, sups)["reasons"] == ["query windows stale: last batch 231 d ago (> 3 min)"]
    restarting = [supervised("bridge", "backoff", 3), supervised("streaming"), supervised("api")]
    flow = data_flow(healthy, streaming, restarting)
    assert not flow["flowing"] and flow["reasons"] == ["bridge restarting (restart 3, last: exit code 1)"]
    down = [service(n, ok=n not in ("kafka", "streaming", "ferretdb")) for n in names]
    reasons = data_flow(down, streaming, sups)["reasons"]
    assert reasons == ["streaming down: ConnectionRefusedError", "kafka down"]  # FerretDB is not on the data path
