"""API health: ``GET /health`` answers 200."""

from __future__ import annotations

import json
import urllib.request

from gaitstream.config import Config


def check(cfg: Config) -> str:
    url = f"http://{cfg.api.host}:{cfg.api.port}/health"
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (loopback, from config)
        body = json.loads(response.read() or b"{}")
    return f"api {url} {response.status}: {json.dumps(body)[:160]}"
