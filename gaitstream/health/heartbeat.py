"""A JSON file a process rewrites periodically: present and recent means the process is alive."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path


def read_fresh(path: Path, what: str, max_age_s: float, updated_at_s: Callable[[dict], float]) -> dict:
    """The file's document; raises when it is missing or older than ``max_age_s``."""
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise RuntimeError(f"no {what} yet at {path}") from None
    age = time.time() - updated_at_s(doc)
    if age > max_age_s:
        raise RuntimeError(f"{what} is {age:.0f}s old: process stalled or stopped")
    return doc
