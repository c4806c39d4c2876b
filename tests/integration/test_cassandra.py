"""Cassandra service: CQL round trips with prepared statements, and durability across restarts.

Each test works in its own keyspace so tests never see each other's rows.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from gaitstream import clients
from gaitstream.health import cassandra as cass_health

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "stack" / "cassandra.sh"


def run_script(verb: str) -> str:
    proc = subprocess.run([str(SCRIPT), verb], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"cassandra.sh {verb} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def session_for(cfg):
    return clients.cassandra(cfg, connect_timeout=5, request_timeout=30)


@pytest.fixture
def keyspace(stack) -> Iterator[str]:
    name = f"test_{uuid.uuid4().hex[:12]}"
    cluster, session = session_for(stack)
    session.execute(f"CREATE KEYSPACE {name} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}")
    session.execute(
        f"CREATE TABLE {name}.samples (walk text, t int, force double, at timestamp, "
        "PRIMARY KEY (walk, t)) WITH CLUSTERING ORDER BY (t ASC)"
    )
    cluster.shutdown()
    yield name
    cluster, session = session_for(stack)
    try:
        session.execute(f"DROP KEYSPACE IF EXISTS {name}")
    finally:
        cluster.shutdown()


def write_rows(cfg, keyspace: str, walk: str, n: int) -> list[tuple[int, float]]:
    rows = [(t, t * 1.5 + 0.25) for t in range(n)]
    at = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    cluster, session = session_for(cfg)
    try:
        insert = session.prepare(f"INSERT INTO {keyspace}.samples (walk, t, force, at) VALUES (?, ?, ?, ?)")
        for t, force in rows:
            session.execute(insert, (walk, t, force, at))
    finally:
        cluster.shutdown()
    return rows


def read_rows(cfg, keyspace: str, walk: str) -> list[tuple[int, float]]:
    cluster, session = session_for(cfg)
    try:
        select = session.prepare(f"SELECT t, force FROM {keyspace}.samples WHERE walk = ?")
        return [(r.t, r.force) for r in session.execute(select, (walk,))]
    finally:
        cluster.shutdown()


def test_health_check_round_trips(stack):
    summary = cass_health.check(stack)
    assert summary.startswith(f"cassandra {stack.cassandra.version} ok"), summary


def test_prepared_round_trip(stack, keyspace):
    written = write_rows(stack, keyspace, "GaPt03_01", 50)
    assert read_rows(stack, keyspace, "GaPt03_01") == written
    assert read_rows(stack, keyspace, "no-such-walk") == []


def test_rows_survive_graceful_restart(stack, keyspace):
    written = write_rows(stack, keyspace, "restart", 20)
    out = run_script("restart")
    assert "healthy" in out
    assert read_rows(stack, keyspace, "restart") == written


def test_rows_survive_crash_via_commitlog_replay(stack, keyspace):
    """SIGKILL skips the drain, so the rows exist only in the commit log: the start must replay it."""
    written = write_rows(stack, keyspace, "crash", 20)
    pidfile = stack.runtime_dir / "run" / "cassandra.pid"
    pid = int(pidfile.read_text().strip())
    os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"cassandra pid {pid} still alive after SIGKILL")
    out = run_script("start")
    assert "healthy" in out
    assert read_rows(stack, keyspace, "crash") == written
