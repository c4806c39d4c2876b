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
