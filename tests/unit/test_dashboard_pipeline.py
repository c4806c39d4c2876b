"""The Pipeline panel's file readers: Spark checkpoint offsets, the job's status file, bridge stats."""
from __future__ import annotations

import json
import time
import uuid

from api.pipeline import bridge_stats, checkpoint_offsets, streaming_status
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
    cfg = gs_config.load(env={"GAITSTREAM_STREAMING_STATUS_FILE": str(tmp_path / "status.json"),
                              "GAITSTREAM_BRIDGE_STATS_FILE": str(tmp_path / "bridge.json")})
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
