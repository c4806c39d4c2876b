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
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FILE = REPO_ROOT / "conf" / "gaitstream.toml"
ENV_PREFIX = "GAITSTREAM_"


class ConfigError(ValueError):
    """A configuration file or override that cannot be used."""


def _coerce(raw: str, like: Any, key: str) -> Any:
    """Turn an environment string into the type of the file's value."""
    if isinstance(like, list):
        return [item.strip() for item in raw.split(",") if item.strip()]
    try:
        if isinstance(like, bool):
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if isinstance(like, int):
            return int(raw)
        if isinstance(like, float):
            return float(raw)
    except ValueError as exc:
        raise ConfigError(f"{key}={raw!r} is not a valid {type(like).__name__}") from exc
    return raw


@dataclass(frozen=True)
class Config:
    """Frozen view of every section (``cfg.kafka["port"]`` or ``cfg.get("kafka.port")``)."""

    sections: Mapping[str, Mapping[str, Any]]
    source: Path
    root: Path = field(default=REPO_ROOT)

    def __getattr__(self, name: str) -> Mapping[str, Any]:
        try:
            return self.sections[name]
        except KeyError:
            raise AttributeError(f"no config section {name!r}") from None

    def get(self, dotted: str) -> Any:
        section, _, key = dotted.partition(".")
        try:
            return self.sections[section][key]
        except KeyError:
            raise ConfigError(f"unknown config key {dotted!r}") from None

    def path(self, dotted: str) -> Path:
        """A path-valued key, ``~`` expanded and made absolute against the repo root."""
        value = Path(str(self.get(dotted))).expanduser()
        return value if value.is_absolute() else (self.root / value).resolve()

    @property
    def runtime_dir(self) -> Path:
        return self.path("runtime.dir")

    def flat(self) -> dict[str, Any]:
        return {f"{s}.{k}": v for s, keys in self.sections.items() for k, v in keys.items()}


def load(path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Read the TOML file, merge the secrets file over it and apply ``GAITSTREAM_<SECTION>_<KEY>``
    overrides from ``env``."""
    env = os.environ if env is None else env
    source = Path(path or env.get(ENV_PREFIX + "CONFIG") or DEFAULT_FILE)
    try:
        with open(source, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {source}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {source} is not valid TOML: {exc}") from exc
    for section, keys in data.items():
        if not isinstance(keys, dict):
            raise ConfigError(f"{source}: top-level key {section!r} must be a [section]")
    secrets_file = env.get(ENV_PREFIX + "RUNTIME_SECRETS_FILE", data.get("runtime", {}).get("secrets_file", ""))
    if secrets_file:
        data = _merge_secrets(data, _secrets_path(str(secrets_file)))
    sections: dict[str, Mapping[str, Any]] = {}
    for section, keys in data.items():
        merged = dict(keys)
        for key, value in keys.items():
            name = f"{ENV_PREFIX}{section}_{key}".upper()
            if name in env:
                merged[key] = _coerce(env[name], value, name)
        sections[section] = MappingProxyType(merged)
    return Config(MappingProxyType(sections), source.resolve())


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
        raise ConfigError(f"secrets file {path} (runtime.secrets_file) has mode {stat.S_IMODE(mode):03o}: group "
                          f"and others must have no access (chmod 600 {shlex.quote(str(path))})")
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"secrets file {path} cannot be read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"secrets file {path} is not valid TOML: {exc}") from exc


def _merge_secrets(data: dict[str, Any], path: Path) -> dict[str, Any]:
    """The config's sections with the secrets file's values over them; unknown keys are refused."""
    merged = {section: dict(keys) for section, keys in data.items()}
    for section, keys in read_secrets_file(path).items():
        if not isinstance(keys, dict) or section not in merged:
            raise ConfigError(f"secrets file {path}: [{section}] is not a config section")
        for key, value in keys.items():
            if key not in merged[section]:
                raise ConfigError(f"secrets file {path}: {section}.{key} is not a config key")
            merged[section][key] = value
    return merged


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
        elif isinstance(value, list):
            value = ",".join(str(item) for item in value)
        elif isinstance(value, dict):
            continue
        elif dotted.endswith(("_dir", ".dir", "_file")) and value != "":
            value = cfg.path(dotted)
        name = "GS_" + dotted.replace(".", "_").upper()
        lines.append(f"{name}={shlex.quote(str(value))}")
    lines.append(f"GS_ROOT={shlex.quote(str(cfg.root))}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gaitstream.config",
        description="Print gaitstream's effective configuration (file + GAITSTREAM_* overrides).",
    )
    parser.add_argument("key", nargs="?", help="one dotted key to print, e.g. kafka.port")
    parser.add_argument("--shell", action="store_true", help="print GS_SECTION_KEY=value lines for eval (secrets included)")
    parser.add_argument("--secrets-toml", action="store_true",
                        help="print the effective secrets as a TOML secrets file (for spark-submit.sh --files)")
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
