"""HDFS over WebHDFS (the Python ``hdfs`` client): round trip, listing, and data kept across a restart."""

from __future__ import annotations

import uuid

import pytest

from gaitstream import clients
from tests.conftest import run_stack

pytestmark = pytest.mark.integration


@pytest.fixture()
def client(stack):
    return clients.hdfs(stack, timeout=30)


@pytest.fixture()
def base(client):
    path = f"/tmp/gs-test-{uuid.uuid4().hex}"
    yield path
    client.delete(path, recursive=True)


def test_round_trip(client, base):
    payload = bytes(range(256)) * 1000  # 256 kB of every byte value
    client.write(f"{base}/blob.bin", data=payload)
    with client.read(f"{base}/blob.bin") as reader:
        assert reader.read() == payload
    assert client.status(f"{base}/blob.bin")["length"] == len(payload)


def test_directory_listing(client, base):
    names = {f"part-{i}.csv" for i in range(3)}
    for name in names:
        client.write(f"{base}/dir/{name}", data=f"{name}\n", encoding="utf-8")
    client.makedirs(f"{base}/dir/sub")
    listing = dict(client.list(f"{base}/dir", status=True))
    assert set(listing) == names | {"sub"}
    assert listing["sub"]["type"] == "DIRECTORY"
    assert all(listing[n]["type"] == "FILE" and listing[n]["length"] == len(n) + 1 for n in names)


def test_data_survives_restart(stack, base):
    before = clients.hdfs(stack, timeout=30)
    payload = f"kept across restart {uuid.uuid4().hex}\n".encode()
    before.write(f"{base}/kept.txt", data=payload)
    run_stack("hdfs.sh", "restart")
    after = clients.hdfs(stack, timeout=30)
    with after.read(f"{base}/kept.txt") as reader:
        assert reader.read() == payload
    assert after.list(base) == ["kept.txt"]


def test_yarn_runs_a_container(stack):
    """Only with hdfs.yarn = true (GAITSTREAM_HDFS_YARN=1): the NodeManager launches a container."""
    import json
    import time
    import urllib.request

    if not stack.hdfs.yarn:
        pytest.skip("YARN is off (hdfs.yarn = false)")
    from gaitstream.health import yarn as yarn_health

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
