"""The bridge's per-device bounds and dead-letter records, without any broker."""

from __future__ import annotations

import hashlib

import pytest

from bridge.bridge import BridgeStats, dead_letter_record
from bridge.limits import OpenWalks
from gaitstream import config


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_open_walks_are_bounded_per_subject_within_the_idle_window():
    # max 2, idle 10 s:
    #   t=0 A_01 ✓  t=1 A_02 ✓  t=2 A_03 ✗  t=5 A_01 ✓ (refreshed)  t=12 A_03 ✓ (A_02 closed at 11)
    clock = FakeClock()
    walks = OpenWalks(max_per_subject=2, idle_seconds=10, clock=clock)
    assert walks.admit("A", "A_01")
    clock.now = 1
    assert walks.admit("A", "A_02")
    clock.now = 2
    assert not walks.admit("A", "A_03")
    assert walks.admit("B", "B_01")  # another subject has its own bound
    assert walks.admit("A", "A_02")  # an open walk always goes on
    clock.now = 5
    assert walks.admit("A", "A_01")
    clock.now = 12.5
    assert walks.open_walks("A") == ["A_01"]
    assert walks.admit("A", "A_03")
    assert not walks.admit("A", "A_04")
    assert walks.open_walks("A") == ["A_01", "A_03"]


def test_a_walk_bomb_cannot_grow_the_bridges_memory():
    clock = FakeClock()
    walks = OpenWalks(max_per_subject=16, idle_seconds=120, clock=clock)
    admitted = [walks.admit("GaCo01", f"GaCo01_{i}") for i in range(100_000)]
    assert sum(admitted) == 16 and all(admitted[:16])
    assert walks.sweep() == (1, 16)
    clock.now = 121
    assert walks.sweep() == (0, 0)  # idle subjects are forgotten


def test_open_walks_refuses_nonsense_bounds():
    with pytest.raises(ValueError):
        OpenWalks(max_per_subject=0, idle_seconds=10)


def test_an_oversized_dead_letter_is_cut_with_length_and_sha256():
    raw = bytes(range(256)) * 40_000  # 10,240,000 bytes, bigger than any Kafka record limit
    value, headers = dead_letter_record(
        raw,
        "oversized: 10240000 bytes > 262144",
        "gait/Ga/GaCo01/GaCo01_01",
        "bridge-1",
        max_bytes=262_144,
        received_at_ms=5,
    )
    h = dict(headers)
    assert value == raw[:262_144]
    assert h["truncated"] == b"1"
    assert h["original_length"] == b"10240000"
    assert h["original_sha256"] == hashlib.sha256(raw).hexdigest().encode()
    assert h["reason"].startswith(b"oversized") and h["received_at_ms"] == b"5"
    assert sum(len(k) + len(v) for k, v in headers) < 8192


def test_a_small_dead_letter_keeps_its_bytes_and_long_headers_are_cut():
    value, headers = dead_letter_record(b"{nope", "bad JSON: x" * 1000, "gait/" + "t" * 70_000, "b", max_bytes=262_144)
    h = dict(headers)
    assert value == b"{nope" and "truncated" not in h and h["original_length"] == b"5"
    assert len(h["reason"]) == len(h["mqtt_topic"]) == 1024


def test_the_stats_file_carries_every_new_counter():
    counters = BridgeStats().counters()
    assert {
        "received",
        "forwarded",
        "dead_lettered",
        "resent",
        "clock_skew",
        "too_many_walks",
        "kafka_refused",
        "truncated",
        "dead_letter_failed",
        "open_walks",
    } <= set(counters)


def test_the_dead_letter_limit_stays_below_kafkas_default_record_limit():
    for path in [config.DEFAULT_FILE, *sorted((config.REPO_ROOT / "conf" / "templates").glob("*.toml"))]:
        # Without a secrets file: a profile's secrets are generated on its first start, not in a clone.
        cfg = config.load(path, env={"GAITSTREAM_RUNTIME_SECRETS_FILE": ""})
        assert 0 < cfg.bridge.dead_letter_max_bytes <= 1_000_000 - 16_384, path.name
        assert cfg.bridge.dead_letter_max_bytes >= cfg.bridge.max_payload_bytes, path.name
