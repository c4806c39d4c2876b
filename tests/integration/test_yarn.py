"""The streaming job on the local mini YARN: replay → bridge → Kafka → ``spark-submit.sh --master yarn``
→ Cassandra, in client and cluster deploy mode.

YARN runs next to HDFS (``stack/hdfs.sh start --yarn``: restarts a running HDFS with YARN added).
Each submission is found again in the ResourceManager by its tag (spark.yarn.tags), must be
RUNNING while its windows arrive, and must end (client mode: FINISHED after SIGTERM stops the
queries; cluster mode: KILLED through the REST API) leaving no application and no process behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
import uuid

import pytest

from bridge import replay
from gaitstream import clients, gaitpdb
from gaitstream import yarn as gs_yarn
from gaitstream.clients import hdfs as hdfs_client
from gaitstream.health import yarn as yarn_health
from tests.integration.pipeline import REPO_ROOT, drop_keyspace, isolated_config, replay_into_kafka

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WALKS = ("JuPt03_05", "JuPt02_01")  # 4803 and 5505 samples: each ends in a partial window
IDLE_TIMEOUT_S = 5


@pytest.fixture(scope="module")
def yarn(stack):
    """HDFS with YARN (a restart when HDFS runs without it; left running with YARN afterwards)."""
    proc = subprocess.run(
        [str(REPO_ROOT / "stack" / "hdfs.sh"), "start", "--yarn"], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, f"stack/hdfs.sh start --yarn failed:\n{proc.stdout}\n{proc.stderr}"
    assert yarn_health.check(stack).startswith("yarn ok")
    return stack


def test_yarn_runs_a_container(yarn):
    """The NodeManager launches a container (a plain command through the ResourceManager's REST API)."""
    stack = yarn
    assert yarn_health.check(stack).startswith("yarn ok")
    base = f"http://{stack.hdfs.host}:{stack.hdfs.yarn_web_port}/ws/v1/cluster"

    def call(path, data=None):
        req = urllib.request.Request(
            base + path,
            data=None if data is None else json.dumps(data).encode(),
            method="GET" if data is None else "POST",
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            body = resp.read()
            return json.loads(body) if body else None

    app_id = call("/apps/new-application", {})["application-id"]
    marker = uuid.uuid4().hex
    # Not a real ApplicationMaster (it never registers), so the app ends FAILED with exit code 0:
    # what matters is that a container ran the command.
    call(
        f"/apps?user.name={stack.hdfs.user}",
        {
            "application-id": app_id,
            "application-name": "gs-test-smoke",
            "application-type": "YARN",
            "am-container-spec": {"commands": {"command": f"echo {marker} > <LOG_DIR>/stdout"}},
            "resource": {"memory": 256, "vCores": 1},
            "max-app-attempts": 1,
        },
    )
    deadline = time.monotonic() + 120
    while (app := call(f"/apps/{app_id}")["app"])["state"] not in ("FINISHED", "FAILED", "KILLED"):
        assert time.monotonic() < deadline, f"app still {app['state']}"
        time.sleep(1)
    assert "exitCode: 0" in app["diagnostics"], app["diagnostics"]
    logs = stack.runtime_dir / "hdfs" / "yarn" / "logs" / app_id
    assert any(marker in p.read_text() for p in logs.glob("container_*/stdout"))


@pytest.fixture(scope="module")
def topic(stack, tmp_path_factory):
    """The walks replayed through MQTT and the bridge into a fresh Kafka topic."""
    tmp = tmp_path_factory.mktemp("yarn")
    cfg, env = isolated_config()
    folder = cfg.path("data.gaitpdb_dir")
    refs = replay.select_walks(gaitpdb.list_walks(folder)[0], walks=WALKS)
    report = replay_into_kafka(cfg, env, refs, folder, tmp / "bridge.log", timeout=180)
    return cfg, env, tmp, report.per_walk


def expected_window_counts(per_walk: dict[str, int]) -> dict[tuple[str, int], int]:
    """(walk, window index) → samples: 100 each, the last window holding the remainder."""
    return {(walk, i): min(100, n - 100 * i) for walk, n in per_walk.items() for i in range((n + 99) // 100)}


def tables(cfg, keyspace: str) -> tuple[dict, dict]:
    cluster, session = clients.cassandra(cfg)
    try:
        windows = {
            (w.walk_id, w.window_index): w.sample_count
            for w in session.execute(f"SELECT walk_id, window_index, sample_count FROM {keyspace}.windows", timeout=30)
        }
        finals = {
            f.walk_id: f.samples
            for f in session.execute(f"SELECT walk_id, samples, final FROM {keyspace}.walk_features", timeout=30)
            if f.final
        }
    finally:
        cluster.shutdown()
    return windows, finals


def container_logs(cfg, app_ids: list[str]) -> str:
    """The tail of each YARN container's stderr (the driver's, in cluster mode)."""
    out = []
    for app_id in app_ids:
        for path in sorted((cfg.runtime_dir / "hdfs" / "yarn" / "logs" / app_id).glob("container_*/stderr")):
            out.append(f"--- {path}\n{path.read_text(errors='replace')[-3000:]}")
    return "\n".join(out)


@pytest.mark.parametrize("deploy_mode", ["client", "cluster"])
def test_streaming_job_on_yarn(yarn, topic, deploy_mode):
    cfg, env, tmp, per_walk = topic
    tag = f"{deploy_mode}{uuid.uuid4().hex[:8]}"
    keyspace, hdfs_dir, yarn_tag = f"t_yarn_{tag}", f"/test/yarn/{tag}", f"gs-test-{tag}"
    namenode = f"hdfs://{cfg.hdfs.host}:{cfg.hdfs.namenode_port}"
    run_env = {
        **env,
        "GS_YARN_TAG": yarn_tag,
        "GAITSTREAM_SPARK_DEPLOY_MODE": deploy_mode,
        "GAITSTREAM_SPARK_DRIVER_MEMORY": "768m",
        "GAITSTREAM_SPARK_EXECUTOR_MEMORY": "768m",
        "GAITSTREAM_SPARK_EXECUTOR_INSTANCES": "1",
        "GAITSTREAM_SPARK_EXECUTOR_CORES": "2",
        "GAITSTREAM_SPARK_CHECKPOINT_DIR": f"{namenode}{hdfs_dir}/checkpoints",
        "GAITSTREAM_SPARK_UI_PORT": "0",
        "GAITSTREAM_CASSANDRA_KEYSPACE": keyspace,
        "GAITSTREAM_HDFS_ARCHIVE_PATH": f"{hdfs_dir}/raw",
        "GAITSTREAM_STREAMING_DEADLETTER_PATH": f"{hdfs_dir}/deadletter",
        "GAITSTREAM_STREAMING_STATUS_FILE": str(tmp / f"status-{tag}.json"),
        "GAITSTREAM_STREAMING_STATUS_INTERVAL_SECONDS": "1",
        "GAITSTREAM_STREAMING_IDLE_TIMEOUT_SECONDS": str(IDLE_TIMEOUT_S),
    }
    log_path = tmp / f"job-{tag}.log"
    started = time.monotonic()
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [str(REPO_ROOT / "spark-submit.sh"), "--master", "yarn"],
            env=run_env,
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def diagnostics() -> str:
        ids = [app["id"] for app in gs_yarn.apps(cfg, yarn_tag)]
        return f"apps {ids}\n{log_path.read_text(errors='replace')[-4000:]}\n{container_logs(cfg, ids)}"

    try:
        expected, windows, finals = expected_window_counts(per_walk), {}, {}
        deadline = time.monotonic() + 240
        while (windows, finals) != (expected, per_walk):
            assert proc.poll() is None, f"spark-submit.sh exited {proc.returncode}:\n{diagnostics()}"
            assert time.monotonic() < deadline, f"{len(windows)}/{len(expected)} windows:\n{diagnostics()}"
            time.sleep(2)
            try:
                windows, finals = tables(cfg, keyspace)
            except Exception:  # keyspace not created yet
                pass
        print(f"{deploy_mode} mode: all {len(expected)} windows {time.monotonic() - started:.0f}s after submit")

        apps = gs_yarn.apps(cfg, yarn_tag)
        assert [(a["state"], a["applicationType"], a["queue"]) for a in apps] == [
            ("RUNNING", "SPARK", cfg.spark.yarn_queue)
        ], apps

        stopped = time.monotonic()
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(120) == 0, diagnostics()
        apps = gs_yarn.apps(cfg, yarn_tag)
        print(
            f"{deploy_mode} mode: stopped in {time.monotonic() - stopped:.0f}s: "
            f"{[(a['id'], a['state'], a['finalStatus']) for a in apps]}"
        )
        want = ("FINISHED", "SUCCEEDED") if deploy_mode == "client" else ("KILLED", "KILLED")
        assert [(a["state"], a["finalStatus"]) for a in apps] == [want], diagnostics()
        with pytest.raises(ProcessLookupError):  # nothing of the job's session is left locally
            os.killpg(proc.pid, 0)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
        left = gs_yarn.kill_tagged(cfg, yarn_tag)  # a failed run must not leave its application running
        drop_keyspace(cfg, keyspace)
        hdfs_client(cfg).delete(hdfs_dir, recursive=True)
    assert all(app["state"] in gs_yarn.ENDED for app in left)
