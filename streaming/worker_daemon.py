"""PySpark's Python worker daemon, started without Spark's zip archives on ``sys.path``.

Spark puts ``pyspark.zip`` and ``py4j-*-src.zip`` in front of every worker's path, and the worker
calls ``importlib.invalidate_caches()`` at the start of each task; on Python 3.11 that re-reads
each zip's whole directory (2.4 MB for pyspark.zip), which cost ~28 % of the windows operator's
worker time (py-spy, bench/streaming_throughput.py). The venv has the same pyspark installed,
so the workers import it from there. Selected by ``spark.python.daemon.module`` (streaming.job).
"""

from __future__ import annotations

import os
import sys

MODULE = "streaming.worker_daemon"


def _without_spark_zips(paths: list[str]) -> list[str]:
    return [p for p in paths if not (p.endswith(".zip") and os.path.basename(p).startswith(("pyspark", "py4j")))]


if __name__ == "__main__":
    sys.path[:] = _without_spark_zips(sys.path)
    from pyspark import daemon

    daemon.manager()
