"""The one config object: file values, typed environment overrides, clear errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from gaitstream import config


def test_defaults_load_and_every_section_is_present():
    cfg = config.load(env={})
    for section in ("runtime", "data", "mqtt", "kafka", "cassandra", "hdfs", "mongo", "spark", "api"):
        assert section in cfg.sections
    assert isinstance(cfg.kafka.port, int)


def test_env_override_is_typed_like_the_file_value():
    cfg = config.load(env={"GAITSTREAM_KAFKA_PORT": "19092", "GAITSTREAM_HDFS_YARN": "true"})
    assert cfg.kafka.port == 19092
    assert cfg.hdfs.yarn is True


def test_bad_override_names_the_variable():
    with pytest.raises(config.ConfigError, match="GAITSTREAM_KAFKA_PORT"):
        config.load(env={"GAITSTREAM_KAFKA_PORT": "ninety"})


def test_config_is_frozen():
    cfg = config.load(env={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.kafka.port = 1  # type: ignore[misc]


def test_relative_paths_resolve_against_repo_root():
    cfg = config.load(env={})
    assert cfg.runtime_dir == config.REPO_ROOT / "var"
    assert cfg.path("api.registry_dir") == cfg.runtime_dir / "models"  # runtime-owned: under runtime.dir
    assert cfg.path("data.gaitpdb_dir").name == "gaitpdb"


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(config.ConfigError, match="not found"):
        config.load(tmp_path / "nope.toml", env={})


def test_shell_export_quotes_values():
    lines = config._shell_lines(config.load(env={"GAITSTREAM_API_TOKEN": "a b'c"}))
    assert "GS_API_TOKEN='a b'\"'\"'c'" in lines


def test_runtime_owned_paths_move_with_the_runtime_folder():
    cfg = config.load(env={"GAITSTREAM_RUNTIME_DIR": "/tmp/gs-other"})
    assert cfg.path("bridge.stats_file") == Path("/tmp/gs-other/run/bridge-stats.json")
    assert cfg.path("spark.checkpoint_dir").parent == Path("/tmp/gs-other/spark")
    assert cfg.path("data.gaitpdb_dir") == config.load(env={}).path("data.gaitpdb_dir")  # repo-relative


def test_values_have_the_declared_types():
    cfg = config.load(env={"GAITSTREAM_STREAMING_TRIGGER_SECONDS": "2"})
    assert cfg.streaming.trigger_seconds == 2.0 and isinstance(cfg.streaming.trigger_seconds, float)
    assert cfg.cassandra.contact_points == ()
    for section, cls in config.schema.SECTIONS.items():
        assert isinstance(getattr(cfg, section), cls)


def test_an_overlay_holds_only_what_differs(tmp_path):
    overlay = tmp_path / "mine.toml"
    overlay.write_text("[kafka]\nport = 19092\n")
    cfg = config.load(overlay, env={})
    assert cfg.kafka.port == 19092
    assert cfg.kafka.samples_topic == config.load(env={}).kafka.samples_topic  # from the defaults


@pytest.mark.parametrize(
    "text, match",
    [
        ("[kafka]\nprot = 19092\n", "kafka.prot is not a config key"),
        ("[kafak]\nport = 19092\n", r"\[kafak\] is not a config section"),
        ('[kafka]\nport = "19092"\n', "kafka.port = '19092' is not an integer"),
        ("[streaming]\nlive_predictions = 1\n", "streaming.live_predictions = 1 is not a boolean"),
        ('[cassandra]\ncontact_points = "a,b"\n', "cassandra.contact_points = 'a,b' is not a list of strings"),
    ],
)
def test_unknown_keys_and_wrong_types_name_the_key(tmp_path, text, match):
    overlay = tmp_path / "bad.toml"
    overlay.write_text(text)
    with pytest.raises(config.ConfigError, match=match):
        config.load(overlay, env={})


def test_unknown_environment_variable_is_refused():
    with pytest.raises(config.ConfigError, match="GAITSTREAM_KAFKA_PROT"):
        config.load(env={"GAITSTREAM_KAFKA_PROT": "1"})


def test_datacenters_table_from_the_environment():
    cfg = config.load(env={"GAITSTREAM_CASSANDRA_DATACENTERS": "dc1=3, dc2=2"})
    assert dict(cfg.cassandra.datacenters) == {"dc1": 3, "dc2": 2}


def test_effective_toml_is_a_complete_config_without_secrets(tmp_path, monkeypatch, capsys):
    """What spark-submit.sh ships to a YARN container, where no conf/gaitstream.toml exists to merge over."""
    overlay = tmp_path / "mine.toml"
    overlay.write_text('[kafka]\nport = 19092\n[api]\ntoken = "not-shipped"\n')
    monkeypatch.setenv("GAITSTREAM_CONFIG", str(overlay))
    assert config.main(["--effective-toml"]) == 0
    shipped = tmp_path / "gaitstream.toml"
    shipped.write_text(capsys.readouterr().out)
    monkeypatch.setattr(config, "DEFAULT_FILE", tmp_path / "absent" / "gaitstream.toml")
    loaded = config.load(shipped, env={})
    assert loaded.kafka.port == 19092 and loaded.api.token == ""  # secrets travel in the secrets file
    assert loaded.spark.checkpoint_dir == "spark/checkpoints-v3"


def test_a_complete_file_with_an_undeclared_key_is_refused(tmp_path, monkeypatch):
    """Where no default file is merged under it (a YARN container), every key must still be declared."""
    shipped = tmp_path / "gaitstream.toml"
    shipped.write_text(config.DEFAULT_FILE.read_text().replace("[kafka]\n", "[kafka]\nprot = 1\n", 1))
    monkeypatch.setattr(config, "DEFAULT_FILE", tmp_path / "absent" / "gaitstream.toml")
    with pytest.raises(config.ConfigError, match="kafka.prot is not a config key"):
        config.load(shipped, env={})
