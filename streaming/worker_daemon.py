"""PySpark's Python worker daemon, started without Spark's archives on ``sys.path``.

Spark puts ``pyspark.zip``, ``py4j-*-src.zip`` and its own ``spark-core_*.jar`` (a zip too) in front
of every worker's path, and the worker calls ``importlib.invalidate_caches()`` at the start of each
task; on Python 3.11 that re-reads each archive's whole directory. The two zips cost ~28 % of the
windows operator's worker time (py-spy, bench/streaming_throughput.py), and the jar, with its
thousands of entries, another 17-19 % at real time (py-spy, bench/e2e.py). The venv has the same
pyspark installed, so the workers import it from there; nothing Python lives in a jar. Selected by
``spark.python.daemon.module`` (streaming.job).
"""

from __future__ import annotations

import os
import sys

MODULE = "streaming.worker_daemon"


def without_spark_archives(paths: list[str]) -> list[str]:
    """``paths`` less Spark's zips and any jar."""
    return [
        p
        for p in paths
        if not (p.endswith(".jar") or (p.endswith(".zip") and os.path.basename(p).startswith(("pyspark", "py4j"))))
    ]


def drop_spark_archives() -> None:
    """Take Spark's archives off ``sys.path`` and out of ``sys.path_importer_cache``: finding this
    very module (``python -m``) already made a zipimporter for each, and it is the cache that
    ``invalidate_caches()`` walks."""
    kept = without_spark_archives(sys.path)
    for path in set(sys.path) - set(kept):
        sys.path_importer_cache.pop(path, None)
    sys.path[:] = kept


if __name__ == "__main__":
    drop_spark_archives()
    from pyspark import daemon

    daemon.manager()
