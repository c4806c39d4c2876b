"""Secrets in the configuration: which keys are secret, how they are redacted for printing, and the
start-up check that refuses default, empty or placeholder secrets outside the dev profile.

Standard library only (``python3 -m gaitstream.secrecy COMPONENT`` runs before any venv exists,
from ``stack/mosquitto.sh`` and ``spark-submit.sh``).

* Profile: ``runtime.profile``. ``"dev"`` (the local default) lets the shipped secrets through;
  any other value (``"production"`` in ``conf/templates/cluster.toml``) is strict.
* Secret keys: every key whose name contains ``password``, ``token`` or ``secret`` (but not the
  path ``runtime.secrets_file``), and any URI's password (``mongo.uri``).
* Outside dev, each entry point (:data:`COMPONENTS`) refuses to start while one of the secrets it
  uses is empty, a placeholder (``change-me``, ``*-secret``, ``<...>``) or the value shipped in
  ``conf/gaitstream.toml``, and while a config file readable by group or others holds a real one
  (secrets go in the mode-600 ``runtime.secrets_file`` or in ``GAITSTREAM_*`` variables).
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from gaitstream import config

DEV_PROFILE = "dev"
SECRET_WORDS = ("password", "token", "secret")
NOT_SECRET = frozenset({"runtime.secrets_file"})
REDACTED = "<redacted>"
PLACEHOLDERS = frozenset({"change-me", "changeme", "change_me", "secret", "password", "token", "default", "xxx"})

# What each entry point uses, checked at its start. Conditional keys (Kafka SASL, Cassandra
# credentials, the Mongo URI) are interpreted by :func:`problems`.
COMPONENTS: dict[str, tuple[str, ...]] = {
    "mosquitto": ("mqtt.bridge_password",),
    "bridge": ("mqtt.bridge_password", "kafka.sasl_password"),
    "replay": ("mqtt.replay_password",),
    "api": ("api.token", "cassandra.password", "mongo.uri"),
    "streaming": ("kafka.sasl_password", "cassandra.password"),
}


class SecretError(config.ConfigError):
    """A secret that must not be used outside the dev profile; the message names every key at fault."""


def is_secret_key(dotted: str) -> bool:
    """``section.key`` names a secret (passwords, tokens, sasl_password, anything *secret*)."""
    key = dotted.rpartition(".")[2].lower()
    return dotted not in NOT_SECRET and any(word in key for word in SECRET_WORDS)


def uri_password(value: str) -> str | None:
    """The password inside a ``scheme://user:password@host`` URI, else None."""
    if "://" not in value:
        return None
    try:
        return urlsplit(value).password
    except ValueError:
        return None


def redact_uri(value: str) -> str:
    parts = urlsplit(value)
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:{REDACTED}@{host}"))


def redact(dotted: str, value: Any) -> Any:
    """The value to print for ``dotted``: secrets replaced (an empty one stays visibly empty)."""
    if is_secret_key(dotted):
        return REDACTED if value not in ("", None) else value
    if isinstance(value, str) and uri_password(value):
        return redact_uri(value)
    return value


def redacted_flat(cfg: config.Config) -> dict[str, Any]:
    """``cfg.flat()`` with every secret redacted (``gaitstream config``)."""
    return {dotted: redact(dotted, value) for dotted, value in cfg.flat().items()}


def secret_sections(cfg: config.Config) -> dict[str, dict[str, Any]]:
    """The effective secrets (and URIs carrying a password), as the sections of a secrets file."""
    sections: dict[str, dict[str, Any]] = {}
    for dotted, value in cfg.flat().items():
        if is_secret_key(dotted) or (isinstance(value, str) and uri_password(value)):
            section, _, key = dotted.partition(".")
            sections.setdefault(section, {})[key] = value
    return sections


def is_dev(cfg: config.Config) -> bool:
    return cfg.runtime.profile == DEV_PROFILE


def _shipped_defaults() -> dict[str, Any]:
    try:
        return config.load(config.DEFAULT_FILE, env={}).flat()
    except config.ConfigError:
        return {}


def weakness(value: Any, shipped: Any = None) -> str | None:
    """Why ``value`` is not a usable secret (empty, placeholder, the shipped default), else None."""
    text = str(value if value is not None else "").strip()
    lowered = text.lower()
    if not text:
        return "is empty"
    if lowered in PLACEHOLDERS or lowered.endswith(("-secret", "_secret")) or lowered.startswith("change-me"):
        return f"is the placeholder {text!r}"
    if text.startswith("<") and text.endswith(">"):
        return f"is the template placeholder {text!r}"
    if shipped not in (None, "") and text == str(shipped):
        return "is the default shipped in conf/gaitstream.toml"
    return None


def _key_problems(cfg: config.Config, dotted: str, shipped: dict[str, Any]) -> list[str]:
    value = cfg.get(dotted)
    env = config.ENV_PREFIX + dotted.replace(".", "_").upper()
    if dotted == "mqtt.bridge_password" and cfg.mqtt.port == 0:
        return []  # no plain listener: the bridge's identity is its client certificate
    if dotted == "mqtt.replay_password":
        if cfg.replay.as_devices:
            return []  # devices publish with their own certificates
        return [
            "replay.as_devices = false publishes as mqtt.replay_user, an all-subjects account that "
            "exists only in the dev profile: publish as devices (gaitstream devices add SUBJECT)"
        ]
    if dotted == "kafka.sasl_password":
        if "SASL" not in cfg.kafka.security_protocol.upper():
            return []
        if not cfg.kafka.sasl_username.strip():
            return ["kafka.sasl_username is empty (kafka.security_protocol uses SASL)"]
    if dotted == "cassandra.password" and not cfg.cassandra.username.strip():
        return [
            "cassandra.username is empty: outside the dev profile Cassandra needs credentials "
            "(cassandra.username and cassandra.password)"
        ]
    if dotted == "mongo.uri":
        uri = str(value).strip()
        if not uri:
            return [
                "mongo.uri is empty: outside the dev profile MongoDB needs a URI with credentials "
                "(mongodb://user:password@host/...)"
            ]
        try:
            parts = urlsplit(uri)
            user, password = parts.username, parts.password
        except ValueError:
            return ["mongo.uri is not a valid URI"]
        if not user or password is None:
            return ["mongo.uri has no user:password (outside the dev profile MongoDB needs credentials)"]
        reason = weakness(password)
        return [f"mongo.uri's password {reason} (set {env})"] if reason else []
    reason = weakness(value, shipped.get(dotted))
    return [f"{dotted} {reason} (set it in runtime.secrets_file or {env})"] if reason else []


def _readable_by_others(path: Path) -> bool:
    try:
        return bool(os.stat(path).st_mode & (stat.S_IRWXG | stat.S_IRWXO))
    except OSError:
        return False


def _file_problems(cfg: config.Config, keys: tuple[str, ...]) -> list[str]:
    """A real secret written in a config file that group or others can read."""
    if not _readable_by_others(cfg.source):
        return []
    try:
        with open(cfg.source, "rb") as handle:
            raw = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError):
        return []
    found = []
    for dotted in keys:
        section, _, key = dotted.partition(".")
        value = raw.get(section, {}).get(key)
        if not isinstance(value, str):
            continue
        secret = uri_password(value) if dotted == "mongo.uri" else value
        if secret is not None and weakness(secret) is None:
            found.append(
                f"{dotted} is written in {cfg.source}, which group or others can read: move it to "
                f"runtime.secrets_file (mode 600) or {config.ENV_PREFIX}{dotted.replace('.', '_').upper()}"
            )
    return found


def problems(cfg: config.Config, component: str | None = None) -> list[str]:
    """Every reason ``component`` (all of them when None) must not start with this config; empty in dev."""
    if is_dev(cfg):
        return []
    if component is not None and component not in COMPONENTS:
        raise ValueError(f"unknown component {component!r}; one of {sorted(COMPONENTS)}")
    keys = COMPONENTS[component] if component else tuple(dict.fromkeys(k for ks in COMPONENTS.values() for k in ks))
    shipped = _shipped_defaults()
    found = [problem for dotted in keys for problem in _key_problems(cfg, dotted, shipped)]
    return found + _file_problems(cfg, keys)


def require_safe(cfg: config.Config, component: str) -> None:
    """Raise :class:`SecretError` naming every key at fault when ``component`` must not start."""
    found = problems(cfg, component)
    if found:
        profile = cfg.runtime.profile
        raise SecretError(
            f"{component} refuses to start with profile {profile!r} (runtime.profile): " + "; ".join(found)
        )


GENERATED = ("api.token", "mqtt.bridge_password", "mqtt.replay_password", "cassandra.password", "kafka.sasl_password")


def generate_secrets_file(cfg_path: Path, path: Path) -> bool:
    """Write random secrets into ``path`` (mode 600) unless it exists: what a profile run on one
    machine needs (stack/up --profile cluster). The Mongo URI gets the generated password with the
    configured host and port. Returns True when written."""
    import secrets as random_secrets

    if path.exists():
        return False
    raw: dict[str, dict[str, str]] = {}
    for dotted in GENERATED:
        section, _, key = dotted.partition(".")
        raw.setdefault(section, {})[key] = random_secrets.token_urlsafe(24)
    # The other values come from the chosen config (without a secrets file yet).
    env = {k: v for k, v in os.environ.items() if k != config.ENV_PREFIX + "RUNTIME_SECRETS_FILE"}
    env[config.ENV_PREFIX + "RUNTIME_SECRETS_FILE"] = ""
    cfg = config.load(cfg_path, env=env)
    # FerretDB's SCRAM users live in the database they were set up in (stack/ferretdb.sh).
    raw["mongo"] = {
        "uri": f"mongodb://gaitstream:{random_secrets.token_urlsafe(24)}@{cfg.mongo.host}:{cfg.mongo.port}/"
        f"?directConnection=true&authSource={cfg.mongo.database}&authMechanism=SCRAM-SHA-256"
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("# Generated by python -m gaitstream.secrecy generate: random secrets of this runtime folder.\n")
        for section, keys in raw.items():
            handle.write(f"\n[{section}]\n")
            for key, value in keys.items():
                handle.write(f'{key} = "{value}"\n')
    return True


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["mongo-user"]:
        # stack/ferretdb.sh: the URI's user and password, on two lines of stdout (never argv)
        uri = config.load().mongo.uri
        try:
            parts = urlsplit(uri)
            user, password = parts.username, parts.password
        except ValueError:
            user = password = None
        if user and password is not None:
            print(user)
            print(password)
        return 0
    if argv[:1] == ["generate"]:
        gen = argparse.ArgumentParser(
            prog="python -m gaitstream.secrecy generate",
            description="Write random secrets (mode 600) for CONFIG's runtime.secrets_file unless it exists.",
        )
        gen.add_argument("config", help="the config file (e.g. conf/templates/cluster-local.toml)")
        gen.add_argument("secrets_file", help="where to write them")
        a = gen.parse_args(argv[1:])
        if generate_secrets_file(Path(a.config), Path(a.secrets_file)):
            print(f"wrote random secrets to {a.secrets_file} (mode 600)")
        return 0
    parser = argparse.ArgumentParser(
        prog="python -m gaitstream.secrecy",
        description="Exit 2 (naming the keys) if COMPONENT would refuse to start with the effective config.",
    )
    parser.add_argument("component", choices=sorted(COMPONENTS))
    args = parser.parse_args(argv)
    try:
        require_safe(config.load(), args.component)
    except config.ConfigError as exc:
        print(f"gaitstream: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
