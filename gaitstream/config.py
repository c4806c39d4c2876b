"""The one configuration object, read from ``conf/gaitstream.toml`` plus environment overrides.

Environment is read only here, at the edge: :func:`load` returns a frozen :class:`Config`
that callers pass inward. Standard library only, so the ``stack/`` shell scripts can read
the same values (``python3 -m gaitstream.config --shell``) before any venv exists.
"""
from __future__ import annotations

import argparse
import os
import shlex
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
    """Read the TOML file and apply ``GAITSTREAM_<SECTION>_<KEY>`` overrides from ``env``."""
    env = os.environ if env is None else env
    source = Path(path or env.get(ENV_PREFIX + "CONFIG") or DEFAULT_FILE)
    try:
        with open(source, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {source}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {source} is not valid TOML: {exc}") from exc
    sections: dict[str, Mapping[str, Any]] = {}
    for section, keys in data.items():
        if not isinstance(keys, dict):
            raise ConfigError(f"{source}: top-level key {section!r} must be a [section]")
        merged = dict(keys)
        for key, value in keys.items():
            name = f"{ENV_PREFIX}{section}_{key}".upper()
            if name in env:
                merged[key] = _coerce(env[name], value, name)
        sections[section] = MappingProxyType(merged)
    return Config(MappingProxyType(sections), source.resolve())


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
        elif dotted.endswith(("_dir", ".dir", "_file")):
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
    parser.add_argument("--shell", action="store_true", help="print GS_SECTION_KEY=value lines for eval")
    args = parser.parse_args(argv)
    try:
        cfg = load()
        if args.key:
            print(cfg.get(args.key))
        elif args.shell:
            print("\n".join(_shell_lines(cfg)))
        else:
            for dotted, value in cfg.flat().items():
                print(f"{dotted} = {value!r}")
    except ConfigError as exc:
        print(f"gaitstream config: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
