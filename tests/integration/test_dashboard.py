"""The dashboard in a real browser: Debian's chromium, headless, driven by Playwright.

`gaitstream api` runs over its own seeded keyspace and database with three finished runs; the
streaming status file, bridge stats file, supervisor status files and a Spark checkpoint are
written by the test (the job's own writer, :func:`streaming.status.write_status`) so every panel
has known numbers. The queries' last progress is months old and the bridge's supervisor is waiting
to restart it: the page must say data is not flowing.
Screenshots land in var/test-artifacts/dashboard/.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from gaitstream import clients, health
from gaitstream.gaitpdb import FORCE_CHANNELS
from streaming import status as streaming_status
from streaming.schema import WINDOWS_TABLE
from streaming.seed import walk_rows
from tests.integration.api_server import REPO_ROOT, running_api

pytestmark = pytest.mark.integration
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO_ROOT / "var" / "test-artifacts" / "dashboard"
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
HELD_BACK_WINDOWS = 5  # of the live walk, inserted while the page is open
QUERY_RATES = {"archive": (41.5, 57.25), "windows": (40.0, 38.5), "deadletter": (0.0, 0.0)}
BRIDGE_RESTARTS, STREAMING_RESTARTS = 3, 1
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-features=Translate,MediaRouter",
    "--disable-default-apps",
    "--disable-extensions",
]


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's chromium; installed with apt-get when missing (CI runs as root)."""
    if not CHROMIUM.exists():
        install = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        proc = subprocess.run(install, capture_output=True, text=True, timeout=600, env=env)
        if proc.returncode != 0:  # a fresh machine's package lists may be stale or empty
            subprocess.run(["apt-get", "update", "-q"], capture_output=True, timeout=600, env=env)
            proc = subprocess.run(install, capture_output=True, text=True, timeout=600, env=env)
        if proc.returncode != 0 or not CHROMIUM.exists():
            pytest.fail(
                f"chromium is missing and `apt-get install -y chromium` failed (needs root and the "
                f"Debian mirror):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
            )
    return CHROMIUM


class FakeQuery:
    """What streaming.status.query_status reads from a StreamingQuery."""

    def __init__(self, name: str, batch_id: int, rates: tuple[float, float]):
        self.name, self.id, self.runId, self.isActive = name, uuid.uuid4(), uuid.uuid4(), True
        self.lastProgress = {
            "batchId": batch_id,
            "timestamp": "2026-01-01T12:00:00.000Z",
            "numInputRows": 400,
            "inputRowsPerSecond": rates[0],
            "processedRowsPerSecond": rates[1],
            "durationMs": {"triggerExecution": 812},
        }

    def exception(self):
        return None


def write_pipeline_files(tmp: Path, topic: str, produced: int) -> dict[str, str]:
    """Status file, bridge stats and one checkpoint; returns the config overrides pointing at them."""
    status_file = tmp / "status.json"
    streaming_status.write_status(
        status_file, [FakeQuery(n, 7, r) for n, r in QUERY_RATES.items()], "http://127.0.0.1:4040", "running"
    )
    bridge_file = tmp / "bridge-stats.json"
    bridge_file.write_text(
        json.dumps(
            {
                "client_id": "test-bridge",
                "pid": 1,
                "updated_at": time.time() + 3600,
                "mqtt_connected": True,
                "received": 1234,
                "forwarded": 1230,
                "dead_lettered": 4,
                "resent": 0,
                "pending": 0,
                "forwarded_per_s": 12.5,
            }
        )
    )
    supervisors = tmp / "supervise"
    supervisors.mkdir()
    now = time.time()
    for name, state, restarts in (("bridge", "backoff", BRIDGE_RESTARTS), ("streaming", "running", STREAMING_RESTARTS)):
        history = [
            {"at": now - 60 + k, "code": 1, "cause": "exit code 1", "error": "KafkaTimeoutError: test", "ran_s": 2.0}
            for k in range(restarts)
        ]
        # The supervisor's own format (gaitstream.supervise); this test process stands in as its pid.
        (supervisors / f"{name}-supervisor.json").write_text(
            json.dumps(
                {
                    "name": name,
                    "pid": os.getpid(),
                    "state": state,
                    "command": [name],
                    "child_pid": None,
                    "started_at": now - 120,
                    "child_started_at": now - 30,
                    "restarts": restarts,
                    "restarts_in_row": 1,
                    "next_restart_at": now + 3600 if state == "backoff" else None,
                    "last_exit": history[-1],
                    "history": history,
                    "updated_at": now,
                }
            )
        )
    offsets = tmp / "checkpoints" / "windows" / "offsets"
    offsets.mkdir(parents=True)
    (offsets / "7").write_text(
        "v1\n"
        + json.dumps({"batchWatermarkMs": 0, "batchTimestampMs": 0})
        + "\n"
        + json.dumps({topic: {"0": max(produced - 3, 0)}})
        + "\n"
    )
    return {
        "GAITSTREAM_STREAMING_STATUS_FILE": str(status_file),
        "GAITSTREAM_BRIDGE_STATS_FILE": str(bridge_file),
        "GAITSTREAM_SPARK_CHECKPOINT_DIR": str(tmp / "checkpoints"),
        "GAITSTREAM_KAFKA_SAMPLES_TOPIC": topic,
        "GAITSTREAM_SUPERVISE_STATUS_DIR": str(supervisors),
        # the status file stays fresh for the whole module (its queries' progress is what is old)
        "GAITSTREAM_STREAMING_STATUS_INTERVAL_SECONDS": "3600",
    }


def produce(cfg, topic: str, records: int) -> None:

    from gaitstream.clients import ensure_topic

    ensure_topic(cfg, topic, partitions=1)
    producer = clients.kafka_producer(cfg)
    for k in range(records):
        producer.send(topic, key=b"test/walk", value=json.dumps({"n": k}).encode())
    producer.flush(10)
    producer.close()


@pytest.fixture(scope="module")
def dashboard(stack, tmp_path_factory):
    """The running API with three finished runs, the live walk's last windows held back, and pipeline files."""
    tmp = tmp_path_factory.mktemp("dashboard")
    topic = f"test.dashboard.{uuid.uuid4().hex[:10]}"
    # Kafka is part of what the page shows: down means the test fails here, naming it.
    health.check("kafka", stack)
    produce(stack, topic, 10)
    overrides = write_pipeline_files(tmp, topic, 10)
    with running_api(tmp, **overrides) as api:
        runs = [
            api.retrain(family="logreg", feature_set="gait", evaluation="full", seed=7),
            api.retrain(family="knn", feature_set="gait", evaluation="subject_kfold"),
            api.retrain(family="forest", feature_set="gait", evaluation="full"),
        ]
        assert all(run["status"] == "succeeded" for run in runs), [run["error"] for run in runs]
        live_ref = api.refs[0]
        _, windows = walk_rows(live_ref)
        keyspace = api.cfg.cassandra.keyspace
        api.session.execute(
            f"DELETE FROM {keyspace}.{WINDOWS_TABLE} WHERE subject_id = %s AND walk_id = %s AND window_index >= %s",
            (live_ref.subject_id, live_ref.walk_id, len(windows) - HELD_BACK_WINDOWS),
        )
        yield api, live_ref, windows


def insert_windows(api, rows: list[tuple]) -> None:
    columns = (
        "subject_id, walk_id, window_index, study, sample_count, partial, first_seq, last_seq, first_time, "
        "last_time, " + ", ".join(FORCE_CHANNELS)
    )
    statement = api.session.prepare(
        f"INSERT INTO {api.cfg.cassandra.keyspace}.{WINDOWS_TABLE} ({columns}) "
        f"VALUES ({', '.join('?' * len(columns.split(',')))})"
    )
    for row in rows:
        api.session.execute(statement, row)


def run_documents(cfg) -> list[dict]:
    with clients.mongo(cfg) as client:
        return list(client[cfg.mongo.database][cfg.mongo.runs_collection].find().sort("created_at", 1))


def plot_data(page, element_id: str) -> list[dict]:
    return page.evaluate(
        "id => (document.getElementById(id).data || [])"
        ".map(t => ({x: Array.from(t.x || []), y: Array.from(t.y || []), z: t.z || null, name: t.name}))",
        element_id,
    )


def test_dashboard_in_chromium(dashboard, chromium, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    api, live_ref, live_windows = dashboard
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    requests, console_errors = [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1366, "height": 768})
        page.on("request", lambda request: requests.append(request.url))
        page.on("console", lambda message: console_errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: console_errors.append(f"page error: {error}"))
        try:
            page.goto(api.base_url + "/", wait_until="load")
            page.set_default_timeout(20_000)

            # Pipeline: every service and process, the job's query rates, Kafka lag, bridge counters
            for name in health.SERVICES + health.COMPONENTS:
                expect(page.locator(f'#services tr[data-service="{name}"]')).to_be_visible()
            expect(page.locator('#services tr[data-service="cassandra"] .badge')).to_have_text("up")
            expect(page.locator('#services tr[data-service="api"] .badge')).to_have_text("up")
            archive_row = page.locator("#queries tbody tr", has_text="archive")
            expect(archive_row).to_contain_text("41.5")
            expect(archive_row).to_contain_text("57.3")
            expect(page.locator("#bridge-forwarded")).to_have_text("1,230")
            expect(page.locator("#bridge-dead")).to_have_text("4")
            expect(page.locator("#spark-ui")).to_have_attribute("href", f"http://127.0.0.1:{api.cfg.spark.ui_port}")
            # Supervisors' restarts, time since each query's last batch, and the banner: data is not flowing
            expect(page.locator('#supervisors tr[data-process="bridge"] .restarts')).to_have_text(str(BRIDGE_RESTARTS))
            expect(page.locator('#supervisors tr[data-process="bridge"] .badge')).to_have_text("restarting")
            expect(page.locator('#supervisors tr[data-process="streaming"] .restarts')).to_have_text(
                str(STREAMING_RESTARTS)
            )
            expect(page.locator('#supervisors tr[data-process="api"]')).to_contain_text("not started")
            windows_row = page.locator("#queries tbody tr", has_text="windows")
            expect(windows_row.locator("td.stale")).to_have_text(re.compile(r"^\d+ (s|min|h|d)$"))  # marked stale
            age_s = float(windows_row.locator("td.stale").get_attribute("data-value"))
            assert age_s == pytest.approx(time.time() - 1767268800, abs=120)  # 2026-01-01T12:00:00Z
            banner = page.locator("#flow-banner")
            expect(banner).to_be_visible()
            expect(banner).to_contain_text("Data is not flowing")
            expect(banner).to_contain_text("bridge restarting")
            expect(banner).to_contain_text("query windows stale")
            # 10 records produced, the checkpoint says 7 were read
            expect(page.locator("#kafka-end")).to_have_text("10")
            expect(page.locator("#queries tbody tr", has_text="windows").locator("td").last).to_have_text("3")

            # Models: the numbers drawn are the run documents' numbers
            docs = [d for d in run_documents(api.cfg) if d["status"] == "succeeded"]
            page.wait_for_function("() => (document.getElementById('run-history').data || [])[0]?.y.length === 3")
            history = plot_data(page, "run-history")
            assert history[0]["y"] == pytest.approx(
                [d["metrics"]["subject_wise"]["summary"]["subjects"]["accuracy"] for d in docs]
            )
            assert history[1]["y"] == pytest.approx(
                [d["metrics"]["subject_wise"]["summary"]["subjects"]["roc_auc"] for d in docs]
            )
            leaky = [
                d["metrics"]["leaky_random_row_split"]["rows"]["accuracy"]
                for d in docs
                if "leaky_random_row_split" in d["metrics"]
            ]
            assert "LEAKY" in history[2]["name"] and history[2]["y"] == pytest.approx(leaky) and len(leaky) == 2
            current = next(d for d in docs if d["promoted"])  # the first model is promoted automatically
            accuracy = current["metrics"]["subject_wise"]["summary"]["subjects"]["accuracy"]
            expect(page.locator("#current-version")).to_have_text(current["model_version"])
            expect(page.locator("#current-accuracy")).to_have_attribute("data-value", str(accuracy))
            expect(page.locator("#current-accuracy")).to_contain_text(f"{accuracy:.3f}")
            page.wait_for_function("() => (document.getElementById('roc-curve').data || []).length >= 2")
            roc = plot_data(page, "roc-curve")
            first_repeat = current["metrics"]["subject_wise"]["per_repeat"][0]["subjects"]
            assert roc[0]["x"] == pytest.approx(first_repeat["roc_curve"]["fpr"])
            assert roc[0]["y"] == pytest.approx(first_repeat["roc_curve"]["tpr"])
            confusion = first_repeat["confusion"]
            assert plot_data(page, "confusion")[0]["z"] == [
                [confusion["tn"], confusion["fp"]],
                [confusion["fn"], confusion["tp"]],
            ]
            expect(page.locator("#bv-bias")).to_have_text(f"{current['metrics']['bias_variance']['bias']:.3f}")
            expect(page.locator("#runs tbody tr .badge.leaky")).to_have_count(2)

            # Live stream: the first walk's windows, then the held-back ones arrive while the page is open
            expect(page.locator("#live-walk")).to_have_value(live_ref.walk_id)
            shown = len(live_windows) - HELD_BACK_WINDOWS
            page.wait_for_function(
                f"() => (document.getElementById('live-forces').data || [])[0]?.x.length === {shown}"
            )
            left = FORCE_CHANNELS.index("total_l") + 10  # key/bound columns come first in a window row
            assert plot_data(page, "live-forces")[0]["y"] == pytest.approx([row[left] for row in live_windows[:shown]])
            insert_windows(api, live_windows[shown:])
            page.wait_for_function(
                f"() => document.getElementById('live-forces').data[0].x.length === {len(live_windows)}"
            )
            heatmap = plot_data(page, "live-heatmap")[0]
            assert len(heatmap["x"]) == 16
            expect(page.locator("#live-caption")).to_contain_text(f"#{len(live_windows) - 1}")
            expect(page.locator("#live-left")).to_have_text(f"{live_windows[-1][left]:.1f} N")
            page.screenshot(path=str(ARTIFACTS / "full-before-actions.png"), full_page=True)

            # Retrain through the UI: token, click, the run finishes and joins the history
            page.fill("#retrain-token", api.token)
            page.select_option("#retrain-family", "logreg")
            page.click("#retrain-button")
            expect(page.locator("#retrain-status")).to_have_attribute("data-status", "succeeded", timeout=120_000)
            new_run = run_documents(api.cfg)[-1]
            assert new_run["status"] == "succeeded" and new_run["run_id"] in page.inner_text("#retrain-status")
            page.wait_for_function("() => document.getElementById('run-history').data[0].y.length === 4")

            # Diagnosis: by subject, then an uploaded (gunzipped) walk file
            page.select_option("#diagnose-subject", live_ref.subject_id)
            page.click("#diagnose-subject-form button")
            expected = httpx.post(f"{api.base_url}/diagnose", json={"subject_id": live_ref.subject_id}).json()
            expect(page.locator("#diagnosis-probability")).to_have_attribute(
                "data-value", str(expected["probability_parkinsons"])
            )
            walk_file = tmp_path / f"{api.refs[-1].walk_id}.txt"
            walk_file.write_bytes(gzip.decompress(api.refs[-1].path.read_bytes()))
            expected = httpx.post(
                f"{api.base_url}/diagnose/walk", content=walk_file.read_bytes(), headers={"content-type": "text/plain"}
            ).json()
            page.set_input_files("#diagnose-file", str(walk_file))
            page.click("#diagnose-file-form button")
            expect(page.locator("#diagnosis-source")).to_contain_text(walk_file.name)
            expect(page.locator("#diagnosis-probability")).to_have_attribute(
                "data-value", str(expected["probability_parkinsons"])
            )
            expect(page.locator("#diagnosis-prediction")).to_have_text(expected["prediction"])
            expect(page.locator("#drivers tbody tr")).to_have_count(len(expected["drivers"]))
            for panel in ("pipeline-error", "live-error", "models-error", "diagnosis-error"):
                expect(page.locator(f"#{panel}")).to_be_hidden()

            page.screenshot(path=str(ARTIFACTS / "full.png"), full_page=True)
            for panel in ("pipeline", "live", "models", "diagnosis"):
                page.locator(f"#{panel}").screenshot(path=str(ARTIFACTS / f"{panel}.png"))
        finally:
            browser.close()
    outside = sorted(
        {url for url in requests if urlsplit(url).scheme != "data" and urlsplit(url).hostname not in LOCAL_HOSTS}
    )
    assert not outside, f"requests left localhost: {outside}"
    assert not console_errors, console_errors


def test_pipeline_json_reports_restarts_batch_age_and_flow(dashboard):
    """GET /dashboard/pipeline: supervisors with restarts, seconds since each query's last batch,
    staleness judged against supervise.stale_after_seconds, and why data is not flowing."""
    api = dashboard[0]
    status = httpx.get(f"{api.base_url}/dashboard/pipeline", timeout=30).json()
    supervisors = {s["name"]: s for s in status["supervisors"]}
    assert supervisors["bridge"]["restarts"] == BRIDGE_RESTARTS and supervisors["bridge"]["state"] == "backoff"
    assert supervisors["bridge"]["last_cause"] == "exit code 1" and supervisors["bridge"]["alive"]
    assert supervisors["streaming"]["restarts"] == STREAMING_RESTARTS and supervisors["streaming"]["state"] == "running"
    assert not supervisors["api"]["supervised"] and supervisors["api"]["restarts"] == 0
    stale_after = float(api.cfg.supervise.stale_after_seconds)
    assert status["streaming"]["stale_after_s"] == stale_after
    expected_age = time.time() - 1767268800  # the fake queries' last progress: 2026-01-01T12:00:00Z
    for query in status["streaming"]["queries"]:
        assert query["last_progress_age_s"] == pytest.approx(expected_age, abs=30)
        assert query["stale"] is (expected_age > stale_after)
    flow = status["flow"]
    assert flow["flowing"] is False
    assert any(r.startswith("bridge restarting (restart 3") for r in flow["reasons"]), flow
    assert {f"query {name} stale" for name in QUERY_RATES} <= {r.split(":")[0] for r in flow["reasons"]}, flow


def test_api_errors_show_in_the_page(dashboard, chromium):
    """A wrong token and a malformed upload: the API's message is shown in the panel, not swallowed."""
    from playwright.sync_api import expect, sync_playwright

    api, _, _ = dashboard
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1366, "height": 768})
        try:
            page.goto(api.base_url + "/")
            page.fill("#retrain-token", "wrong-token")
            page.click("#retrain-button")
            expect(page.locator("#models-error")).to_contain_text("401")
            expect(page.locator("#models-error")).to_contain_text("invalid bearer token")
            page.set_input_files(
                "#diagnose-file", files=[{"name": "junk.txt", "mimeType": "text/plain", "buffer": b"0.01\t1\t2\n"}]
            )
            page.click("#diagnose-file-form button")
            expect(page.locator("#diagnosis-error")).to_contain_text("422")
            expect(page.locator("#diagnosis-error")).to_contain_text("line 1")
        finally:
            browser.close()
