"""Test helper: `gaitstream api` as a subprocess on a free port, over its own seeded keyspace,
Mongo database and registry folder, torn down (keyspace and database dropped) at the end."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from gaitstream import clients, gaitpdb
from gaitstream import config as gs_config
from streaming import schema
from streaming.seed import seed_keyspace

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def chosen_walks(data_dir: Path, per_class_and_study: int) -> list[gaitpdb.WalkRef]:
    """Every walk of the first ``per_class_and_study`` subjects of each (study, PD/control) pair."""
    demographics = gaitpdb.read_demographics(data_dir)
    refs, _ = gaitpdb.list_walks(data_dir)
    with_walks = {r.subject_id for r in refs}
    picked: dict[tuple[str, bool], list[str]] = {}
    for subject in sorted(demographics.values(), key=lambda s: s.subject_id):
        bucket = picked.setdefault((subject.study, subject.parkinsons), [])
        if len(bucket) < per_class_and_study and subject.subject_id in with_walks:
            bucket.append(subject.subject_id)
    subjects = {s for bucket in picked.values() for s in bucket}
    return [r for r in refs if r.subject_id in subjects]


@dataclass
class RunningApi:
    base_url: str
    cfg: gs_config.Config
    env: dict[str, str]
    refs: list[gaitpdb.WalkRef]
    session: object  # a Cassandra session on the test's keyspace
    log_path: Path
    token: str

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def retrain(self, timeout: float = 180, **body) -> dict:
        """POST /retrain and wait for the run to finish; returns the run."""
        response = httpx.post(f"{self.base_url}/retrain", json=body, headers=self.auth())
        assert response.status_code == 202, response.text
        return wait_run(self.base_url, response.json()["run_id"], timeout)


def wait_run(base_url: str, run_id: str, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        run = httpx.get(f"{base_url}/runs/{run_id}").json()
        if run["status"] in ("succeeded", "failed"):
            return run
        assert time.monotonic() < deadline, run
        time.sleep(0.3)


@contextlib.contextmanager
def running_api(
    tmp_dir: Path, refs_per_class_and_study: int = 2, windows: bool = True, **env_overrides: str
) -> Iterator[RunningApi]:
    """Seed a unique keyspace with the chosen walks, start the API on it, yield, then clean up."""
    tag = uuid.uuid4().hex[:10]
    port = free_port()
    token = env_overrides.get("GAITSTREAM_API_TOKEN", f"token-{uuid.uuid4().hex}")
    (tmp_dir / "registry").mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "GAITSTREAM_CASSANDRA_KEYSPACE": f"t_api_{tag}",
        "GAITSTREAM_MONGO_DATABASE": f"t_api_{tag}",
        "GAITSTREAM_API_REGISTRY_DIR": str(tmp_dir / "registry"),
        "GAITSTREAM_API_TOKEN": token,
        "GAITSTREAM_API_PORT": str(port),
        "GAITSTREAM_API_CV_FOLDS": "3",
        "GAITSTREAM_API_CV_REPEATS": "2",
        "GAITSTREAM_API_BIAS_VARIANCE_ROUNDS": "3",
        "GAITSTREAM_API_FOREST_TREES": "100",
        **env_overrides,
    }
    cfg = gs_config.load(env=env)
    refs = chosen_walks(cfg.path("data.gaitpdb_dir"), refs_per_class_and_study)
    cluster, session = clients.cassandra(cfg, request_timeout=60)
    proc = None
    log_path = tmp_dir / "api.log"
    try:
        schema.create(cfg, session=session)
        seed_keyspace(session, cfg.cassandra.keyspace, refs, windows=windows)
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "cli.main", "api"],
                env=env,
                cwd=REPO_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log_path.read_text()
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.3)
        yield RunningApi(base, cfg, env, refs, session, log_path, token)
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            # uvicorn shuts down gracefully, then re-raises the SIGTERM it caught: -15 is a clean exit
            assert proc.wait(30) in (0, -15), log_path.read_text()[-3000:]
            assert "Application shutdown complete" in log_path.read_text(), log_path.read_text()[-3000:]
        session.execute(f"DROP KEYSPACE IF EXISTS {cfg.cassandra.keyspace}", timeout=60)
        cluster.shutdown()
        with clients.mongo(cfg) as client:
            client.drop_database(cfg.mongo.database)
