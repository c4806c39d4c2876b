"""The Python workers' path loses Spark's archives (each re-read at every task) and keeps the rest."""

import subprocess
import sys
import zipfile
from pathlib import Path

from streaming.worker_daemon import without_spark_archives

REPO = Path(__file__).resolve().parents[2]
LIB = "/venv/lib/python3.11/site-packages/pyspark"


def test_spark_zips_and_jars_leave_the_path_the_checkout_and_other_zips_stay():
    paths = [
        f"{LIB}/python/lib/pyspark.zip",
        f"{LIB}/python/lib/py4j-0.10.9.7-src.zip",
        f"{LIB}/jars/spark-core_2.12-3.5.7.jar",
        "/work/checkout",
        "/var/spark/gaitstream-py.zip",
        "/venv/lib/python3.11/site-packages",
    ]
    assert without_spark_archives(paths) == [
        "/work/checkout",
        "/var/spark/gaitstream-py.zip",
        "/venv/lib/python3.11/site-packages",
    ]


def test_no_importer_of_a_dropped_archive_is_left_for_invalidate_caches(tmp_path):
    jar = tmp_path / "spark-core_2.12-3.5.7.jar"
    with zipfile.ZipFile(jar, "w") as z:
        z.writestr("org/apache/spark/SparkContext.class", b"")
    probe = (
        "import sys; from streaming import worker_daemon; worker_daemon.drop_spark_archives(); "
        f"print({str(jar)!r} in sys.path, {str(jar)!r} in sys.path_importer_cache)"
    )
    # The jar comes first on the path, as Spark puts it: finding streaming/ makes its zipimporter.
    env = {"PYTHONPATH": f"{jar}:{REPO}"}
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=tmp_path, check=True
    )
    assert out.stdout.split() == ["False", "False"]
