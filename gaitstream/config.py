"""The one configuration object, read from ``conf/gaitstream.toml`` plus environment overrides.

Environment is read only here, at the edge: :func:`load` returns a frozen :class:`Config`
that callers pass inward. A TOML secrets file (``runtime.secrets_file``, same sections, mode 600:
refused when group or others may read it) is merged over the file; environment overrides win
over both. Standard library only, so the ``stack/`` shell scripts can read
the same values (``python3 -m gaitstream.config --shell``) before any venv exists.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import stat
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

from gaitstream import config_schema as schema

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FILE = REPO_ROOT / "conf" / "gaitstream.toml"
ENV_PREFIX = "GAITSTREAM_"
#: Variables with the prefix that are not a key.
ENV_SPECIAL = frozenset({ENV_PREFIX + "CONFIG"})


class ConfigError(ValueError):
    """A configuration file or override that cannot be used."""


#: Path keys that are relative to ``runtime.dir`` (not the repo root) when relative: what one
#: runtime folder owns moves with it (a test session's runtime folder leaves the demo's alone).
RUNTIME_PATHS = frozenset(
    {
        "bridge.stats_file",
        "spark.checkpoint_dir",
        "streaming.status_file",
        "api.registry_dir",
        "supervise.status_dir",
        "mqtt.tls_dir",
        "mqtt.devices_dir",
    }
)


def _type_name(kind: Any) -> str:
    return {
        "str": "string",
        "int": "integer",
        "float": "number",
        "bool": "boolean",
        "tuple[str, ...]": "list of strings",
        "dict[str, int]": "table of integers (dc1=3,dc2=3)",
    }.get(str(kind), str(kind))


def _article(noun: str) -> str:
    return ("an " if noun[0] in "aeiou" else "a ") + noun


def _coerce(raw: str, kind: str, key: str) -> Any:
    """Turn an environment string into a value of the field's type."""
    if kind == "tuple[str, ...]":
        return tuple(item.strip() for item in raw.split(",") if item.strip())
    try:
        if kind == "dict[str, int]":
            pairs = (item.split("=", 1) for item in raw.split(",") if item.strip())
            return {name.strip(): int(count) for name, count in pairs}
        if kind == "bool":
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
    except ValueError as exc:
        raise ConfigError(f"{key}={raw!r} is not a valid {_type_name(kind)}") from exc
    return raw


def _checked(value: Any, kind: str, key: str, where: str) -> Any:
    """``value`` as the field's type, or a ConfigError naming the key and the expected type."""
    ok = {
        "str": isinstance(value, str),
        "bool": isinstance(value, bool),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, (int, float)) and not isinstance(value, bool),
        "tuple[str, ...]": isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value),
        "dict[str, int]": isinstance(value, Mapping)
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value.values()),
    }.get(kind, True)
    if not ok:
        raise ConfigError(f"{where}: {key} = {value!r} is not {_article(_type_name(kind))}")
    if kind == "float":
        return float(value)
    if kind == "tuple[str, ...]":
        return tuple(value)
    if kind == "dict[str, int]":
        return MappingProxyType(dict(value))
    return value


class _Sections:
    """Typed attribute access for :class:`Config` (``cfg.kafka.port``), one attribute per section."""

    runtime: schema.RuntimeSection
    data: schema.DataSection
    mqtt: schema.MqttSection
    replay: schema.ReplaySection
    bridge: schema.BridgeSection
    kafka: schema.KafkaSection
    cassandra: schema.CassandraSection
    hdfs: schema.HdfsSection
    mongo: schema.MongoSection
    spark: schema.SparkSection
    streaming: schema.StreamingSection
    api: schema.ApiSection
    supervise: schema.SuperviseSection


@dataclass(frozen=True)
class Config(_Sections):
    """The frozen, validated configuration: ``cfg.kafka.port``, or ``cfg.get("kafka.port")``."""

    sections: Mapping[str, Any]
    source: Path
    root: Path = field(default=REPO_ROOT)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.sections[name]
        except KeyError:
            raise AttributeError(f"no config section {name!r}") from None

    def get(self, dotted: str) -> Any:
        section, _, key = dotted.partition(".")
        try:
            return getattr(self.sections[section], key)
        except (KeyError, AttributeError):
            raise ConfigError(f"unknown config key {dotted!r}") from None

    def path(self, dotted: str) -> Path:
        """A path-valued key, ``~`` expanded and made absolute against the repo root (or against
        ``runtime.dir`` for the keys in :data:`RUNTIME_PATHS`)."""
        value = Path(str(self.get(dotted))).expanduser()
        if value.is_absolute():
            return value
        base = self.runtime_dir if dotted in RUNTIME_PATHS else self.root
        return (base / value).resolve()

    @property
    def runtime_dir(self) -> Path:
        return self.path("runtime.dir")

    def flat(self) -> dict[str, Any]:
        return {
            f"{name}.{f.name}": getattr(section, f.name)
            for name, section in self.sections.items()
            for f in fields(section)
        }


def _load_toml(source: Path) -> dict[str, Any]:
    """A TOML file's top level, or a ConfigError naming the file."""
    try:
        with open(source, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {source}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {source} is not valid TOML: {exc}") from exc


def _sections(data: dict[str, Any], source: Path) -> dict[str, Any]:
    for section, keys in data.items():
        if not isinstance(keys, dict):
            raise ConfigError(f"{source}: top-level key {section!r} must be a [section]")
    return data


def _read_toml(source: Path) -> dict[str, Any]:
    return _sections(_load_toml(source), source)


EXTENDS_KEY = "extends"


def _read_toml_layer(source: Path) -> dict[str, Any]:
    """An overlay's sections (its ``extends`` line is read by :func:`_overlay_chain`)."""
    data = _load_toml(source)
    data.pop(EXTENDS_KEY, None)
    return _sections(data, source)


def _overlay_chain(source: Path) -> list[Path]:
    """``source`` and the overlays it extends (``extends = "other.toml"`` at its top, relative to
    its folder), base first: conf/templates/cluster-local.toml is the cluster template with only
    addresses and secrets changed."""
    chain: list[Path] = []
    current: Path | None = source
    while current is not None:
        if current.resolve() in [c.resolve() for c in chain]:
            raise ConfigError(f"{current}: 'extends' loops back to itself")
        parent = _load_toml(current).get(EXTENDS_KEY)
        chain.append(current)
        if parent is not None and not isinstance(parent, str):
            raise ConfigError(f"{current}: 'extends' must name a file")
        current = (current.parent / parent) if parent else None
    return chain[::-1]


def _merge(base: dict[str, dict[str, Any]], over: Mapping[str, Any], where: str) -> dict[str, dict[str, Any]]:
    """``over``'s values over ``base``'s; a section or key that ``base`` lacks is an error naming it."""
    merged = {section: dict(keys) for section, keys in base.items()}
    for section, keys in over.items():
        if not isinstance(keys, dict) or section not in merged:
            raise ConfigError(f"{where}: [{section}] is not a config section")
        for key, value in keys.items():
            if key not in merged[section]:
                raise ConfigError(f"{where}: {section}.{key} is not a config key")
            merged[section][key] = value
    return merged


def _build(data: Mapping[str, Mapping[str, Any]], env: Mapping[str, str], source: Path) -> Config:
    """The typed sections: every key present and of its field's type, environment overrides applied."""
    known = {f"{ENV_PREFIX}{section}_{f.name}".upper() for section, cls in schema.SECTIONS.items() for f in fields(cls)}
    unknown = sorted(
        name for name in env if name.startswith(ENV_PREFIX) and name not in known and name not in ENV_SPECIAL
    )
    if unknown:
        raise ConfigError(
            f"unknown configuration variable(s) {', '.join(unknown)}: "
            f"GAITSTREAM_<SECTION>_<KEY> must name a key of conf/gaitstream.toml"
        )
    for section, keys in data.items():  # the default file or a complete one: every key must be declared
        declared = {f.name for f in fields(schema.SECTIONS[section])} if section in schema.SECTIONS else None
        if declared is None:
            raise ConfigError(f"{source}: [{section}] is not a config section (gaitstream/config_schema.py)")
        for key in keys:
            if key not in declared:
                raise ConfigError(f"{source}: {section}.{key} is not a config key (gaitstream/config_schema.py)")
    sections: dict[str, Any] = {}
    for section, cls in schema.SECTIONS.items():
        keys = data.get(section, {})
        values = {}
        for f in fields(cls):
            dotted, name = f"{section}.{f.name}", f"{ENV_PREFIX}{section}_{f.name}".upper()
            if name in env:
                values[f.name] = _checked(_coerce(env[name], str(f.type), name), str(f.type), dotted, name)
            elif f.name in keys:
                values[f.name] = _checked(keys[f.name], str(f.type), dotted, str(source))
            else:
                raise ConfigError(f"{source}: {dotted} is missing")
        sections[section] = cls(**values)
    return Config(MappingProxyType(sections), source.resolve())


def load(path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None) -> Config:
    """The defaults (``conf/gaitstream.toml``), the chosen file (``path`` or ``$GAITSTREAM_CONFIG``:
    only what differs) merged over them, then the secrets file, then ``GAITSTREAM_<SECTION>_<KEY>``
    overrides from ``env``. Unknown sections, keys or variables and wrong types are errors naming
    the key."""
    env = os.environ if env is None else env
    source = Path(path or env.get(ENV_PREFIX + "CONFIG") or DEFAULT_FILE)
    if not DEFAULT_FILE.is_file():
        # Code shipped without the repository (a YARN container runs it from a zip): the chosen
        # file must then be complete (``--effective-toml`` writes one); _build names a missing key.
        data = _read_toml(source)
    elif source.resolve() == DEFAULT_FILE.resolve():
        data = _read_toml(DEFAULT_FILE)
    else:
        data = _read_toml(DEFAULT_FILE)
        for layer in _overlay_chain(source):
            data = _merge(data, _read_toml_layer(layer), str(layer))
    secrets_file = env.get(ENV_PREFIX + "RUNTIME_SECRETS_FILE", data["runtime"].get("secrets_file", ""))
    if secrets_file:
        path_ = _secrets_path(str(secrets_file))
        data = _merge(data, read_secrets_file(path_), f"secrets file {path_}")
    return _build(data, env, source)


def _secrets_path(raw: str) -> Path:
    path = Path(raw).expanduser()
    return path if path.is_absolute() else REPO_ROOT / path


def read_secrets_file(path: Path) -> dict[str, dict[str, Any]]:
    """The TOML secrets file (same sections as the config), refused unless only its owner can read it."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise ConfigError(f"secrets file {path} (runtime.secrets_file) cannot be read: {exc}") from exc
    if not stat.S_ISREG(mode):
        raise ConfigError(f"secrets file {path} (runtime.secrets_file) is not a regular file")
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"secrets file {path} (runtime.secrets_file) has mode {stat.S_IMODE(mode):03o}: group "
            f"and others must have no access (chmod 600 {shlex.quote(str(path))})"
        )
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"secrets file {path} cannot be read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"secrets file {path} is not valid TOML: {exc}") from exc


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise ConfigError(f"cannot write {value!r} as TOML")


def dump_toml(sections: Mapping[str, Mapping[str, Any]]) -> str:
    """Sections of plain values as TOML text (``tomllib`` reads it back unchanged)."""
    lines = []
    for section, keys in sections.items():
        lines.append(f"[{section}]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in keys.items())
        lines.append("")
    return "\n".join(lines)


def _shell_lines(cfg: Config) -> list[str]:
    """``GS_SECTION_KEY=value`` lines for ``eval`` in the stack scripts; paths resolved."""
    lines = []
    for dotted, value in cfg.flat().items():
        if isinstance(value, bool):
            value = "1" if value else "0"
        elif isinstance(value, (list, tuple)):
            value = ",".join(str(item) for item in value)
        elif isinstance(value, Mapping):
            continue
        elif dotted.endswith(("_dir", ".dir", "_file")) and value != "" and "://" not in str(value):
            value = cfg.path(dotted)
        name = "GS_" + dotted.replace(".", "_").upper()
        lines.append(f"{name}={shlex.quote(str(value))}")
    from gaitstream import endpoints  # stdlib only, like this module

    for name, value in endpoints.derived(cfg).items():
        lines.append(f"GS_{name.upper()}={shlex.quote(value)}")
    lines.append(f"GS_ROOT={shlex.quote(str(cfg.root))}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gaitstream.config",
        description="Print gaitstream's effective configuration (file + GAITSTREAM_* overrides).",
    )
    parser.add_argument("key", nargs="?", help="one dotted key to print, e.g. kafka.port")
    parser.add_argument(
        "--shell", action="store_true", help="print GS_SECTION_KEY=value lines for eval (secrets included)"
    )
    parser.add_argument(
        "--secrets-toml",
        action="store_true",
        help="print the effective secrets as a TOML secrets file (for spark-submit.sh --files)",
    )
    parser.add_argument(
        "--effective-toml",
        action="store_true",
        help="print the whole effective config as one TOML file, secrets left empty (with --secrets-toml's "
        "file next to it, what a process without the repository needs: spark-submit.sh, YARN cluster mode)",
    )
    parser.add_argument("--show-secrets", action="store_true", help="do not redact secrets")
    args = parser.parse_args(argv)
    from gaitstream import secrecy

    try:
        cfg = load()
        if args.key:
            value = cfg.get(args.key)
            print(value if args.show_secrets else secrecy.redact(args.key, value))
        elif args.shell:
            print("\n".join(_shell_lines(cfg)))
        elif args.secrets_toml:
            print(dump_toml(secrecy.secret_sections(cfg)), end="")
        elif args.effective_toml:
            secret = secrecy.secret_sections(cfg)
            sections = {
                name: {
                    f.name: "" if f.name in secret.get(name, {}) else getattr(section, f.name) for f in fields(section)
                }
                for name, section in cfg.sections.items()
            }
            print(dump_toml(sections), end="")
        else:
            flat = cfg.flat() if args.show_secrets else secrecy.redacted_flat(cfg)
            for dotted, value in flat.items():
                print(f"{dotted} = {value!r}")
    except ConfigError as exc:
        print(f"gaitstream config: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
