"""The YARN applications of one submission, through the ResourceManager REST API.

spark-submit.sh tags each YARN submission (``spark.yarn.tags``) so that it, and the tests, can
find that application again and kill it: in cluster deploy mode the driver runs in a YARN
container, so stopping the local spark-submit does not stop the application.

    python -m gaitstream.yarn apps TAG    # one line per application: id state finalStatus
    python -m gaitstream.yarn kill TAG    # kill the tag's unfinished applications, wait until they end
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.request

from gaitstream import config as gs_config

TIMEOUT_S = 10
ENDED = ("FINISHED", "FAILED", "KILLED")


def rm_url(cfg: gs_config.Config) -> str:
    return f"http://{cfg.hdfs.host}:{cfg.hdfs.yarn_web_port}/ws/v1/cluster"


def _call(url: str, method: str = "GET", body: dict | None = None) -> dict:
    req = urllib.request.Request(
        url,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Accept": "application/json", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=TIMEOUT_S) as resp:
        data = resp.read()
    return json.loads(data) if data else {}


def apps(cfg: gs_config.Config, tag: str) -> list[dict]:
    """Every application carrying ``tag`` (YARN lower-cases tags), oldest first."""
    found = (_call(f"{rm_url(cfg)}/apps?applicationTags={tag.lower()}").get("apps") or {}).get("app") or []
    return sorted(found, key=lambda app: app["startedTime"])


def kill(cfg: gs_config.Config, app_id: str) -> None:
    _call(f"{rm_url(cfg)}/apps/{app_id}/state?user.name={cfg.hdfs.user}", "PUT", {"state": "KILLED"})


def kill_tagged(cfg: gs_config.Config, tag: str, timeout: float = 60) -> list[dict]:
    """Kill the tag's unfinished applications and wait until YARN reports each one ended."""
    deadline = time.monotonic() + timeout
    while True:
        running = [app for app in apps(cfg, tag) if app["state"] not in ENDED]
        if not running:
            return apps(cfg, tag)
        if time.monotonic() > deadline:
            raise TimeoutError(f"still running after {timeout}s: {[app['id'] for app in running]}")
        for app in running:
            if app["state"] != "KILLING":
                kill(cfg, app["id"])
        time.sleep(1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gaitstream.yarn", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("apps", "kill"))
    parser.add_argument("tag")
    args = parser.parse_args(argv)
    cfg = gs_config.load()
    found = kill_tagged(cfg, args.tag) if args.action == "kill" else apps(cfg, args.tag)
    for app in found:
        print(app["id"], app["state"], app["finalStatus"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
