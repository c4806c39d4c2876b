"""The test session's stack (tests/stack.toml) cannot touch a demo's: its own runtime folder, no
listening port shared with the default config, and the same venv and download cache."""

from __future__ import annotations

from gaitstream import config
from tests.conftest import TEST_CONFIG

DEFAULT = config.load(env={})
TESTS = config.load(TEST_CONFIG, env={})
# Linux's default ephemeral range (net.ipv4.ip_local_port_range): an outgoing connection may hold one.
EPHEMERAL = range(32768, 61000)


def ports(cfg: config.Config) -> dict[str, int]:
    return {key: value for key, value in cfg.flat().items() if key.endswith("port")}


def test_every_port_is_moved_and_none_collides():
    default, tests = ports(DEFAULT), ports(TESTS)
    assert set(tests) == set(default)
    assert not set(default.values()) & set(tests.values()), "a test port is also a default port"
    assert len(set(tests.values())) == len(tests), "two test ports are the same"
    assert not [key for key, port in tests.items() if port in EPHEMERAL]


def test_own_runtime_folder_shared_venv_and_cache():
    assert TESTS.runtime_dir != DEFAULT.runtime_dir
    assert not DEFAULT.runtime_dir.is_relative_to(TESTS.runtime_dir)
    assert TESTS.path("runtime.venv_dir") == DEFAULT.path("runtime.venv_dir")
    assert TESTS.path("runtime.cache_dir") == DEFAULT.path("runtime.cache_dir")
    for key in config.RUNTIME_PATHS:
        assert TESTS.path(key).is_relative_to(TESTS.runtime_dir), key
