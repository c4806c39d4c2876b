"""Secrets and exposure (issue 12, items 8 and 9): placeholder secrets refused outside the dev
profile, secrets redacted when printed, a mode-600 secrets file, no secret on a command line, an
empty API token never opening the API, health reads guarded beyond loopback, a loopback Spark UI."""

from __future__ import annotations

import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner
from litestar import Litestar, get
from litestar.testing import TestClient

from api import errors
from api.auth import require_token, require_token_when_exposed
from api.settings import ApiSettings
from cli import main as cli
from gaitstream import config, endpoints, secrecy

TEMPLATES = config.REPO_ROOT / "conf" / "templates"
PRODUCTION = {"GAITSTREAM_RUNTIME_PROFILE": "production"}
REAL = {
    "mqtt": {"bridge_password": "Zq8-bridge-7f3a", "replay_password": "Zq8-replay-91c2"},
    "api": {"token": "4b9f0c3e8a7d4e21"},
    "cassandra": {"username": "gaitstream", "password": "Cx7-cass-55d0"},
    "mongo": {"uri": "mongodb://gaitstream:Mg4-mongo-a1b2@127.0.0.1:27017/gaitstream"},
}


def secrets_file(tmp_path: Path, sections: dict, mode: int = 0o600) -> Path:
    path = tmp_path / "secrets.toml"
    path.write_text(config.dump_toml(sections))
    path.chmod(mode)
    return path


# ------------------------------------------------------------------ profile and placeholders


def test_local_default_and_yarn_local_are_dev_the_cluster_template_is_production():
    assert config.load(env={}).runtime.profile == "dev"
    assert config.load(TEMPLATES / "yarn-local.toml", env={}).runtime.profile == "dev"
    assert config.load(TEMPLATES / "cluster.toml", env={}).runtime.profile == "production"


def test_dev_profile_starts_with_the_shipped_secrets():
    cfg = config.load(env={})
    for component in secrecy.COMPONENTS:
        secrecy.require_safe(cfg, component)


@pytest.mark.parametrize(
    "component, key",
    [
        ("bridge", "mqtt.bridge_password"),
        ("mosquitto", "mqtt.bridge_password"),
        ("api", "api.token"),
        ("api", "cassandra.username"),
        ("api", "mongo.uri"),
        ("streaming", "cassandra.username"),
    ],
)
def test_shipped_placeholders_are_refused_outside_dev_naming_the_key(component, key):
    cfg = config.load(env=PRODUCTION)
    with pytest.raises(secrecy.SecretError, match=key.replace(".", r"\.")):
        secrecy.require_safe(cfg, component)


def test_outside_dev_the_replayer_publishes_only_as_devices():
    """The all-subjects replayer account exists only in the dev profile; devices need no password,
    and without a plain listener neither does the bridge."""
    cfg = config.load(env=PRODUCTION)
    assert secrecy.problems(cfg, "replay") == []
    cfg = config.load(env={**PRODUCTION, "GAITSTREAM_REPLAY_AS_DEVICES": "false"})
    with pytest.raises(secrecy.SecretError, match="replay.as_devices = false"):
        secrecy.require_safe(cfg, "replay")
    cfg = config.load(env={**PRODUCTION, "GAITSTREAM_MQTT_PORT": "0"})
    assert not any("mqtt.bridge_password" in p for p in secrecy.problems(cfg, "bridge"))


@pytest.mark.parametrize(
    "value", ["", "   ", "change-me", "CHANGE-ME", "bridge-secret", "my_secret", "<set me>", "password"]
)
def test_empty_and_placeholder_values_are_refused(value):
    cfg = config.load(env={**PRODUCTION, "GAITSTREAM_API_TOKEN": value})
    problems = secrecy.problems(cfg, "api")
    assert any(p.startswith("api.token ") for p in problems), problems


def test_the_cluster_template_refuses_to_start_until_its_secrets_are_set(tmp_path):
    cfg = config.load(TEMPLATES / "cluster.toml", env={})
    text = "; ".join(secrecy.problems(cfg))
    # no plain MQTT listener there: devices and the bridge authenticate with certificates
    assert "mqtt." not in text
    for key in (
        "api.token",
        "kafka.sasl_password",
        "cassandra.password",
        "mongo.uri",
    ):
        assert key in text
    # With every secret in a mode-600 secrets file, every component starts.
    path = secrets_file(
        tmp_path,
        {
            **REAL,
            "kafka": {"sasl_password": "Kf2-sasl-3e4d"},
            "mongo": {"uri": "mongodb://gaitstream:Mg4-mongo-a1b2@m1:27017,m2:27017/gaitstream"},
        },
    )
    cfg = config.load(TEMPLATES / "cluster.toml", env={"GAITSTREAM_RUNTIME_SECRETS_FILE": str(path)})
    assert secrecy.problems(cfg) == []


def test_real_secrets_from_a_secrets_file_pass_outside_dev(tmp_path):
    path = secrets_file(tmp_path, REAL)
    cfg = config.load(env={**PRODUCTION, "GAITSTREAM_RUNTIME_SECRETS_FILE": str(path)})
    for component in secrecy.COMPONENTS:
        secrecy.require_safe(cfg, component)
    assert cfg.api.token == REAL["api"]["token"]


def test_a_real_secret_in_a_config_file_others_can_read_is_refused(tmp_path):
    text = (config.DEFAULT_FILE).read_text().replace('token = "change-me"', 'token = "4b9f0c3e8a7d4e21"')
    conf = tmp_path / "gaitstream.toml"
    conf.write_text(text)
    conf.chmod(0o644)
    cfg = config.load(
        conf,
        env={
            **PRODUCTION,
            "GAITSTREAM_RUNTIME_SECRETS_FILE": str(
                secrets_file(tmp_path, {k: v for k, v in REAL.items() if k != "api"})
            ),
        },
    )
    assert any("api.token is written in" in p for p in secrecy.problems(cfg, "api"))
    conf.chmod(0o600)
    assert secrecy.problems(cfg, "api") == []


# ------------------------------------------------------------------ entry points refuse to start


@pytest.mark.parametrize(
    "args, key",
    [
        (["bridge"], "mqtt.bridge_password"),
        (["api"], "api.token"),
    ],
)
def test_entry_points_refuse_to_start_with_a_placeholder_secret(args, key, monkeypatch):
    monkeypatch.setenv("GAITSTREAM_RUNTIME_PROFILE", "production")
    result = CliRunner().invoke(cli.main, args)
    assert result.exit_code != 0
    assert key in result.output and "refuses to start" in result.output


def test_the_streaming_job_refuses_to_start_with_a_placeholder_secret(monkeypatch):
    from streaming import job

    monkeypatch.setenv("GAITSTREAM_RUNTIME_PROFILE", "production")
    monkeypatch.setenv("GAITSTREAM_CASSANDRA_USERNAME", "")
    monkeypatch.setattr(job, "run", lambda cfg: pytest.fail("the job started"))
    assert job.main() == 2


def test_the_secrecy_module_exits_2_for_the_scripts(monkeypatch, capsys):
    monkeypatch.setenv("GAITSTREAM_RUNTIME_PROFILE", "production")
    assert secrecy.main(["mosquitto"]) == 2
    assert "mqtt.bridge_password" in capsys.readouterr().err
    monkeypatch.setenv("GAITSTREAM_RUNTIME_PROFILE", "dev")
    assert secrecy.main(["mosquitto"]) == 0


# ------------------------------------------------------------------ secrets file


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o700 | 0o004])
def test_a_secrets_file_readable_by_group_or_others_is_refused(tmp_path, mode):
    path = secrets_file(tmp_path, REAL, mode)
    with pytest.raises(config.ConfigError, match="chmod 600"):
        config.load(env={"GAITSTREAM_RUNTIME_SECRETS_FILE": str(path)})


def test_the_secrets_file_is_merged_over_the_config_and_the_environment_wins(tmp_path):
    path = secrets_file(tmp_path, REAL)
    cfg = config.load(env={"GAITSTREAM_RUNTIME_SECRETS_FILE": str(path), "GAITSTREAM_API_TOKEN": "from-env-1234"})
    assert cfg.mqtt.bridge_password == REAL["mqtt"]["bridge_password"]
    assert cfg.api.token == "from-env-1234"
    assert cfg.mqtt.bridge_user == "bridge"  # untouched keys keep the file's value


def test_a_secrets_file_with_an_unknown_key_or_missing_is_refused(tmp_path):
    path = secrets_file(tmp_path, {"api": {"tokn": "x"}})
    with pytest.raises(config.ConfigError, match="api.tokn"):
        config.load(env={"GAITSTREAM_RUNTIME_SECRETS_FILE": str(path)})
    with pytest.raises(config.ConfigError, match="cannot be read"):
        config.load(env={"GAITSTREAM_RUNTIME_SECRETS_FILE": str(tmp_path / "absent.toml")})


def test_the_secrets_toml_for_yarn_round_trips_and_holds_only_secrets(tmp_path):
    path = secrets_file(tmp_path, REAL)
    cfg = config.load(env={"GAITSTREAM_RUNTIME_SECRETS_FILE": str(path)})
    shipped = secrecy.secret_sections(cfg)
    assert shipped["api"] == {"token": REAL["api"]["token"]} and shipped["mongo"] == {"uri": REAL["mongo"]["uri"]}
    assert "port" not in shipped["mqtt"] and "runtime" not in shipped
    again = secrets_file(tmp_path, shipped)
    assert config.load(env={"GAITSTREAM_RUNTIME_SECRETS_FILE": str(again)}).api.token == REAL["api"]["token"]


# ------------------------------------------------------------------ redaction


def test_gaitstream_config_redacts_every_secret(tmp_path, monkeypatch):
    path = secrets_file(tmp_path, {**REAL, "kafka": {"sasl_password": "Kf2-sasl-3e4d"}})
    monkeypatch.setenv("GAITSTREAM_RUNTIME_SECRETS_FILE", str(path))
    output = CliRunner().invoke(cli.main, ["config"]).output
    for leaked in (
        "Zq8-bridge-7f3a",
        "Zq8-replay-91c2",
        "4b9f0c3e8a7d4e21",
        "Cx7-cass-55d0",
        "Mg4-mongo-a1b2",
        "Kf2-sasl-3e4d",
    ):
        assert leaked not in output
    assert "api.token = '<redacted>'" in output
    assert "mongo.uri = 'mongodb://gaitstream:<redacted>@127.0.0.1:27017/gaitstream'" in output
    assert "mqtt.bridge_user = 'bridge'" in output and "kafka.port = 9092" in output
    assert CliRunner().invoke(cli.main, ["config", "api.token"]).output.strip() == "<redacted>"
    assert (
        CliRunner().invoke(cli.main, ["config", "api.token", "--show-secrets"]).output.strip() == REAL["api"]["token"]
    )


def test_python_m_gaitstream_config_redacts_but_the_shell_lines_keep_secrets(capsys, monkeypatch):
    monkeypatch.setenv("GAITSTREAM_API_TOKEN", "4b9f0c3e8a7d4e21")
    assert config.main([]) == 0
    assert "4b9f0c3e8a7d4e21" not in capsys.readouterr().out
    assert config.main(["--shell"]) == 0  # eval'd by the stack scripts, which need the values
    assert "GS_API_TOKEN=4b9f0c3e8a7d4e21" in capsys.readouterr().out


@pytest.mark.parametrize(
    "dotted, secret",
    [
        ("mqtt.bridge_password", True),
        ("kafka.sasl_password", True),
        ("api.token", True),
        ("x.client_secret", True),
        ("runtime.secrets_file", False),
        ("kafka.sasl_username", False),
        ("api.max_upload_bytes", False),
    ],
)
def test_which_keys_are_secret(dotted, secret):
    assert secrecy.is_secret_key(dotted) is secret


# ------------------------------------------------------------------ no secret on a command line


def test_mosquitto_passwords_never_reach_a_command_line(tmp_path):
    """render() of stack/mosquitto.sh with a mosquitto_passwd that records its argv."""
    script = (config.REPO_ROOT / "stack" / "mosquitto.sh").read_text()
    render = script[script.index("render() {") :]
    render = render[: render.index("\n}\n") + 3]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "mosquitto_passwd"
    fake.write_text('#!/bin/sh\necho "$@" >>"$ARGV_LOG"\n[ "$1" = -U ] && sed -i "s/:.*/:HASHED/" "$2"\n')
    fake.chmod(0o755)
    run_dir = tmp_path / "run"
    harness = (
        textwrap.dedent("""\
        set -euo pipefail
        gs_log() { echo "$RUN/mosquitto.log"; }
        gs_die() { echo "$*" >&2; exit 1; }
        DIR="$RUN" STACK_DIR="$STACK"
        """)
        + render
        + "\nrender\n"
    )
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "ARGV_LOG": str(tmp_path / "argv"),
        "RUN": str(run_dir),
        "STACK": str(config.REPO_ROOT / "stack"),
        "GS_MQTT_HOST": "127.0.0.1",
        "GS_MQTT_PORT": "1883",
        "GS_MQTT_TLS_PORT": "8883",
        "GS_MQTT_TLS_DIR": str(tmp_path / "tls"),
        "GS_MQTT_AUTOSAVE_INTERVAL_SECONDS": "5",
        "GS_MQTT_ACL_NAMESPACE_LEVELS": "0",
        "GS_RUNTIME_PROFILE": "dev",
        "GS_MQTT_MAX_QUEUED_MESSAGES": "10",
        "GS_MQTT_MAX_INFLIGHT_MESSAGES": "10",
        "GS_MQTT_TOPIC_PREFIX": "gait",
        "GS_MQTT_BRIDGE_USER": "bridge",
        "GS_MQTT_BRIDGE_PASSWORD": "Zq8-bridge-7f3a",
        "GS_MQTT_REPLAY_USER": "replayer",
        "GS_MQTT_REPLAY_PASSWORD": "Zq8-replay-91c2",
    }
    subprocess.run(["bash", "-c", harness], env=env, check=True, timeout=30)
    argv = (tmp_path / "argv").read_text()
    assert "Zq8-" not in argv and "-b" not in argv.split()
    passwd = run_dir / "passwd"
    assert passwd.read_text().splitlines() == ["bridge:HASHED", "replayer:HASHED"]
    assert passwd.stat().st_mode & 0o077 == 0


@pytest.mark.skipif(shutil.which("mosquitto_passwd") is None, reason="mosquitto_passwd not installed")
def test_mosquitto_passwd_hashes_a_plain_file_in_place(tmp_path):
    """The real tool accepts what render() writes (user:password lines) and hashes it."""
    path = tmp_path / "passwd"
    path.write_text("bridge:Zq8-bridge-7f3a\nreplayer:Zq8-replay-91c2\n")
    path.chmod(0o600)
    subprocess.run(["mosquitto_passwd", "-U", str(path)], check=True, timeout=30, capture_output=True)
    text = path.read_text()
    assert "Zq8-" not in text and text.startswith("bridge:$")


def test_spark_submit_ships_secrets_in_a_file_not_as_application_master_env():
    script = (config.REPO_ROOT / "spark-submit.sh").read_text()
    assert "--secrets-toml" in script and "GAITSTREAM_RUNTIME_SECRETS_FILE={{PWD}}/gaitstream-secrets.toml" in script
    loop = script[script.index("while IFS='=' read -r name value") : script.index("done < <(env)")]
    assert "*PASSWORD*|*TOKEN*|*SECRET*|GAITSTREAM_MONGO_URI) ;;" in loop


# ------------------------------------------------------------------ API authentication


def guarded_app(token: str, reads_need_token: bool) -> Litestar:
    @get("/write", guards=[require_token], sync_to_thread=False)
    def write() -> str:
        return "written"

    @get("/read", guards=[require_token_when_exposed], sync_to_thread=False)
    def read() -> str:
        return "read"

    settings = ApiSettings.from_config(config.load(env={"GAITSTREAM_API_TOKEN": token}))
    settings = type(settings)(**{**settings.__dict__, "reads_need_token": reads_need_token})
    app = Litestar([write, read], exception_handlers=errors.handlers())
    app.state.settings = settings
    return app


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer ", "bearer  ", "Basic Zm9vOmJhcg==", "Bearer x"])
def test_an_empty_token_locks_the_mutating_routes_instead_of_opening_them(header):
    with TestClient(guarded_app("", reads_need_token=False)) as client:
        response = client.get("/write", headers={"Authorization": header} if header is not None else {})
        assert response.status_code == 401


def test_the_right_token_opens_the_mutating_routes():
    with TestClient(guarded_app("4b9f0c3e8a7d4e21", reads_need_token=False)) as client:
        assert client.get("/write", headers={"Authorization": "Bearer 4b9f0c3e8a7d4e21"}).status_code == 200
        assert client.get("/write", headers={"Authorization": "Bearer 4b9f0c3e8a7d4e2"}).status_code == 401


def test_health_reads_are_open_on_loopback_and_need_the_token_beyond_it():
    with TestClient(guarded_app("4b9f0c3e8a7d4e21", reads_need_token=False)) as client:
        assert client.get("/read").status_code == 200
    with TestClient(guarded_app("4b9f0c3e8a7d4e21", reads_need_token=True)) as client:
        assert client.get("/read").status_code == 401
        assert client.get("/read", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get("/read", headers={"Authorization": "Bearer 4b9f0c3e8a7d4e21"}).status_code == 200


@pytest.mark.parametrize(
    "host, exposed",
    [
        ("127.0.0.1", False),
        ("localhost", False),
        ("::1", False),
        ("127.0.0.2", False),
        ("0.0.0.0", True),
        ("::", True),
        ("", True),
        ("10.1.2.3", True),
        ("api.example", True),
    ],
)
def test_reads_need_the_token_when_the_api_binds_beyond_loopback(host, exposed):
    settings = ApiSettings.from_config(config.load(env={"GAITSTREAM_API_HOST": host}))
    assert settings.reads_need_token is exposed


def test_the_health_read_routes_carry_the_exposure_guard():
    from api.app import create_app

    app = create_app(config.load(env={}))
    guarded, open_paths = set(), set()
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            if "OPTIONS" not in handler.http_methods:
                (guarded if require_token_when_exposed in (handler.guards or []) else open_paths).add(route.path)
    for path in (
        "/diagnose",
        "/diagnose/walk",
        "/dashboard/pipeline",
        "/dashboard/predictions",
        "/dashboard/walks",
        "/dashboard/windows",
        "/runs",
        "/runs/{run_id:str}",
    ):
        assert path in guarded, path
    assert "/" in open_paths  # the page itself loads, then asks for the token


def test_the_api_command_passes_a_bind_address_on_to_the_app(monkeypatch):
    seen = {}
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(kw, app=app))
    monkeypatch.setenv("GAITSTREAM_API_WORKERS", "1")
    monkeypatch.setenv("GAITSTREAM_API_HOST", "127.0.0.1")
    monkeypatch.delenv("GAITSTREAM_API_HOST")  # recorded: whatever the command sets is undone afterwards
    result = CliRunner().invoke(cli.main, ["api", "--host", "0.0.0.0"])
    assert result.exit_code == 0, result.output
    assert seen["host"] == "0.0.0.0"
    assert os.environ["GAITSTREAM_API_HOST"] == "0.0.0.0"


# ------------------------------------------------------------------ Spark UI on loopback


def test_the_job_binds_the_driver_and_its_ui_to_loopback_without_kill_links(monkeypatch):
    from streaming import job

    recorded: dict[str, object] = {}

    class Builder:
        def appName(self, name):
            return self

        def config(self, key, value):
            recorded[key] = value
            return self

        def getOrCreate(self):
            return "session"

    class FakeSession:
        builder = Builder()

    monkeypatch.setattr(job, "SparkSession", FakeSession)
    monkeypatch.setenv("SPARK_LOCAL_IP", "unset")
    monkeypatch.delenv("SPARK_LOCAL_IP")  # recorded: the job's setdefault is undone afterwards
    assert job.build_session(config.load(env={})) == "session"
    assert recorded["spark.ui.killEnabled"] == "false"
    assert recorded["spark.driver.bindAddress"] == "127.0.0.1" and recorded["spark.driver.host"] == "127.0.0.1"
    assert os.environ["SPARK_LOCAL_IP"] == "127.0.0.1"  # what Spark 3.5's UI binds to


def test_spark_bind_conf_per_template():
    assert (
        endpoints.spark_bind_conf(config.load(TEMPLATES / "yarn-local.toml", env={}))["spark.driver.host"]
        == "127.0.0.1"
    )
    # The cluster-mode driver lives in a YARN container reached through the ResourceManager's proxy.
    assert endpoints.spark_bind_conf(config.load(TEMPLATES / "cluster.toml", env={})) == {
        "spark.ui.killEnabled": "false"
    }


def test_spark_submit_exports_spark_local_ip_for_a_local_driver():
    script = (config.REPO_ROOT / "spark-submit.sh").read_text()
    assert 'export SPARK_LOCAL_IP="$GS_SPARK_BIND_HOST"' in script
