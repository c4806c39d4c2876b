"""The one config object: file values, typed environment overrides, clear errors."""
from __future__ import annotations

import pytest

from gaitstream import config


def test_defaults_load_and_every_section_is_present():
    cfg = config.load(env={})
    for section in ("runtime", "data", "mqtt", "kafka", "cassandra", "hdfs", "mongo", "spark", "api"):
        assert section in cfg.sections
    assert isinstance(cfg.kafka["port"], int)


def test_env_override_is_typed_like_the_file_value():
    cfg = config.load(env={"GAITSTREAM_KAFKA_PORT": "19092", "GAITSTREAM_HDFS_YARN": "true"})
    assert cfg.kafka["port"] == 19092
    assert cfg.hdfs["yarn"] is True


def test_bad_override_names_the_variable():
    with pytest.raises(config.ConfigError, match="GAITSTREAM_KAFKA_PORT"):
        config.load(env={"GAITSTREAM_KAFKA_PORT": "ninety"})


def test_config_is_frozen():
    cfg = config.load(env={})
    with pytest.raises(TypeError):
        cfg.kafka["port"] = 1  # type: ignore[index]


def test_relative_paths_resolve_against_repo_root():
    cfg = config.load(env={})
    assert cfg.runtime_dir == config.REPO_ROOT / "var"
    assert cfg.path("data.gaitpdb_dir").name == "gaitpdb"


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(config.ConfigError, match="not found"):
        config.load(tmp_path / "nope.toml", env={})


def test_shell_export_quotes_values():
    lines = config._shell_lines(config.load(env={"GAITSTREAM_API_TOKEN": "a b'c"}))
    assert "GS_API_TOKEN='a b'\"'\"'c'" in lines
