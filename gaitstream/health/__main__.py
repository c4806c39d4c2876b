"""``python -m gaitstream.health SERVICE``: exit 0 and print a summary when healthy, else 1."""

from __future__ import annotations

import argparse
import sys

from gaitstream import config
from gaitstream.health import COMPONENTS, SERVICES, check


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gaitstream.health", description=__doc__)
    parser.add_argument("service", choices=SERVICES + COMPONENTS + ("yarn",))
    args = parser.parse_args(argv)
    try:
        print(check(args.service, config.load()))
    except Exception as exc:  # a health check reports any failure as "unhealthy", with its cause
        print(f"{args.service} unhealthy: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
