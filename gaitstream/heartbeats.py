"""The JSON files the pipeline's processes rewrite periodically: where each is, how it is written
and read, and how old it may be before its writer counts as stalled.

* the bridge's stats file (``bridge.stats_file``, every ``bridge.stats_interval`` s),
* the streaming job's status file (``streaming.status_file``, every ``streaming.status_interval_seconds``),
* each supervisor's status file (``<supervise.status_dir>/<name>-supervisor.json``, on every change).

Writers replace the file atomically (temp file + rename), so a reader never sees half a document.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gaitstream.config import Config


def write(path: Path, doc: dict[str, Any], indent: int | None = None) -> None:
    """Replace ``path`` with ``doc`` as JSON, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(doc, indent=indent))
    os.replace(tmp, path)


def read(path: Path) -> dict[str, Any] | None:
    """The document at ``path``, or None when there is none (or it cannot be read)."""
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return doc if isinstance(doc, dict) else None


@dataclass(frozen=True)
class Heartbeat:
    """One process's file: ``updated_at_s`` finds the time it was written in a document."""

    what: str
    path: Path
    max_age_s: float
    updated_at_s: Callable[[dict[str, Any]], float | None]

    def read(self) -> dict[str, Any] | None:
        return read(self.path)

    def age_s(self, doc: dict[str, Any], now: float | None = None) -> float | None:
        updated = self.updated_at_s(doc)
        return None if updated is None else (time.time() if now is None else now) - updated

    def read_fresh(self) -> dict[str, Any]:
        """The document; raises when it is missing or older than :attr:`max_age_s`."""
        doc = self.read()
        if doc is None:
            raise RuntimeError(f"no {self.what} yet at {self.path}")
        age = self.age_s(doc)
        if age is None or age > self.max_age_s:
            raise RuntimeError(
                f"{self.what} is {'of unknown age' if age is None else f'{age:.0f}s old'}: process stalled or stopped"
            )
        return doc


def _number(value: Any, scale: float = 1.0) -> float | None:
    return float(value) / scale if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def bridge(cfg: Config) -> Heartbeat:
    """The bridge's counters (``updated_at`` in epoch seconds)."""
    return Heartbeat(
        "bridge stats file",
        cfg.path("bridge.stats_file"),
        3 * cfg.bridge.stats_interval + 5,
        lambda doc: _number(doc.get("updated_at")),
    )


def streaming(cfg: Config) -> Heartbeat:
    """The streaming job's queries (``updated_at_ms`` in epoch milliseconds)."""
    return Heartbeat(
        "streaming status file",
        cfg.path("streaming.status_file"),
        4 * cfg.streaming.status_interval_seconds + 10,
        lambda doc: _number(doc.get("updated_at_ms"), 1000.0),
    )


def supervisor(cfg: Config, name: str) -> Heartbeat:
    """A supervisor's state (rewritten on each change only: it has no maximum age)."""
    return Heartbeat(
        f"{name} supervisor status file",
        cfg.path("supervise.status_dir") / f"{name}-supervisor.json",
        math.inf,
        lambda doc: _number(doc.get("updated_at")),
    )
