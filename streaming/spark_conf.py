"""Every Spark setting of the streaming job, in one place.

Two groups, because Spark reads some settings only before its JVM starts:

* :func:`submit_conf`: what ``spark-submit.sh`` must pass on the command line (driver memory and
  JVM options, the UI port, YARN sizing and retries). The script asks for them with
  ``python -m streaming.spark_conf submit --master M --deploy-mode D`` (one ``key=value`` a line).
* :func:`session_conf`: what the driver sets on its SparkSession (SQL, state store, connector,
  resilience, scheduler pools, bind address), wherever it runs.

Stdlib and the config only: importing it does not start or need Spark.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gaitstream import config as gs_config
from gaitstream import endpoints
from streaming import worker_daemon

WINDOWS_POOL, ARCHIVE_POOL = "windows", "archive"


def fair_scheduler_file(cfg: gs_config.Config) -> Path | None:
    """The FAIR pools: windows (the latency path) weighted ``spark.windows_pool_weight`` to 1 for the
    archive. None where the driver cannot write it (YARN cluster mode: pools then get weight 1)."""
    path = cfg.runtime_dir / "spark" / "fairscheduler.xml"
    weight = cfg.spark.windows_pool_weight
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    path.write_text(f"""<?xml version="1.0"?>
<allocations>
  <pool name="{WINDOWS_POOL}">
    <schedulingMode>FIFO</schedulingMode><weight>{weight}</weight><minShare>1</minShare>
  </pool>
  <pool name="{ARCHIVE_POOL}">
    <schedulingMode>FIFO</schedulingMode><weight>1</weight><minShare>0</minShare>
  </pool>
</allocations>
""")
    return path


def scheduler_conf(cfg: gs_config.Config) -> dict[str, str]:
    conf = {"spark.scheduler.mode": "FAIR"}
    allocation = fair_scheduler_file(cfg)
    if allocation is not None:
        conf["spark.scheduler.allocation.file"] = allocation.as_uri()
    return conf


def resilience_conf(cfg: gs_config.Config) -> dict[str, str]:
    """Connector and HDFS client settings that ride out a Cassandra or NameNode outage, and Spark's
    own Prometheus endpoints ([spark] cassandra_*, hdfs_connect_*, prometheus_enabled)."""
    sp = cfg.spark
    conf = {
        "spark.cassandra.query.retry.count": str(sp.cassandra_query_retry_count),
        "spark.cassandra.connection.reconnectionDelayMS.min": str(sp.cassandra_reconnection_delay_min_ms),
        "spark.cassandra.connection.reconnectionDelayMS.max": str(sp.cassandra_reconnection_delay_max_ms),
        "spark.cassandra.connection.timeoutMS": str(sp.cassandra_connection_timeout_ms),
        "spark.hadoop.ipc.client.connect.max.retries": str(sp.hdfs_connect_retries),
        "spark.hadoop.ipc.client.connect.max.retries.on.timeouts": str(sp.hdfs_connect_retries),
        "spark.hadoop.ipc.client.connect.retry.interval": str(sp.hdfs_connect_retry_interval_ms),
    }
    if sp.prometheus_enabled:
        conf.update(
            {
                "spark.ui.prometheus.enabled": "true",
                "spark.sql.streaming.metricsEnabled": "true",
                "spark.metrics.conf.*.sink.prometheusServlet.class": "org.apache.spark.metrics.sink.PrometheusServlet",
                "spark.metrics.conf.*.sink.prometheusServlet.path": "/metrics/prometheus",
            }
        )
    return conf


def rocksdb_memory_conf(max_mb: int) -> dict[str, str]:
    """One memory bound for every RocksDB state store of the job (0 = unbounded, RocksDB's defaults)."""
    if max_mb <= 0:
        return {}
    return {
        "spark.sql.streaming.stateStore.rocksdb.boundedMemoryUsage": "true",
        "spark.sql.streaming.stateStore.rocksdb.maxMemoryUsageMB": str(max_mb),
    }


def malloc_arena_conf(arenas: int) -> dict[str, str]:
    """MALLOC_ARENA_MAX for the Python workers and YARN's containers (spark-submit.sh exports it for
    the local driver's JVM itself); 0 = glibc's default."""
    if arenas <= 0:
        return {}
    return {
        "spark.executorEnv.MALLOC_ARENA_MAX": str(arenas),
        "spark.yarn.appMasterEnv.MALLOC_ARENA_MAX": str(arenas),
    }


def session_conf(cfg: gs_config.Config) -> dict[str, str]:
    """What the driver sets on its session; resources (master, memory, jars) come from :func:`submit_conf`."""
    sp = cfg.spark
    return {
        "spark.sql.shuffle.partitions": str(sp.shuffle_partitions),
        "spark.sql.execution.arrow.maxRecordsPerBatch": str(sp.arrow_batch_size),
        "spark.sql.streaming.stateStore.rocksdb.changelogCheckpointing.enabled": "true",
        **rocksdb_memory_conf(sp.dedupe_rocksdb_memory_mb),
        "spark.ui.retainedJobs": str(sp.ui_retained),
        "spark.ui.retainedStages": str(sp.ui_retained),
        "spark.sql.ui.retainedExecutions": str(sp.ui_retained),
        "spark.sql.session.timeZone": "UTC",
        "spark.python.daemon.module": worker_daemon.MODULE,
        **endpoints.spark_cassandra_conf(cfg),
        **resilience_conf(cfg),
        **scheduler_conf(cfg),
        **endpoints.spark_bind_conf(cfg),  # loopback UI, no kill links ([spark] bind_host)
    }


def submit_conf(cfg: gs_config.Config, master: str, deploy_mode: str, python: str) -> dict[str, str]:
    """What must be on spark-submit's command line (read before the driver's JVM starts)."""
    sp = cfg.spark
    log_dir = cfg.runtime_dir / "log"
    conf = {
        "spark.driver.memory": sp.driver_memory,
        "spark.driver.extraJavaOptions": f"-XX:ErrorFile={log_dir}/spark-hs_err_%p.log",
        "spark.ui.port": str(sp.ui_port),
        **malloc_arena_conf(sp.malloc_arena_max),
    }
    if master.startswith("yarn"):
        conf.update(
            {
                "spark.yarn.queue": sp.yarn_queue,
                "spark.executor.instances": str(sp.executor_instances),
                "spark.executor.memory": sp.executor_memory,
                "spark.executor.cores": str(sp.executor_cores),
                "spark.pyspark.python": sp.yarn_python or python,
                "spark.yarn.maxAppAttempts": str(sp.yarn_max_app_attempts),
                "spark.yarn.am.attemptFailuresValidityInterval": sp.yarn_attempt_failures_validity_interval,
            }
        )
    return conf


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m streaming.spark_conf", description="Print the streaming job's Spark settings, key=value a line."
    )
    parser.add_argument("group", choices=("submit", "session"), help="spark-submit's settings, or the session's")
    parser.add_argument("--master", default=None, help="default: spark.master")
    parser.add_argument("--deploy-mode", default=None, help="default: spark.deploy_mode")
    parser.add_argument("--python", default=sys.executable, help="executors' Python when spark.yarn_python is empty")
    args = parser.parse_args(argv)
    cfg = gs_config.load()
    if args.group == "submit":
        conf = submit_conf(cfg, args.master or cfg.spark.master, args.deploy_mode or cfg.spark.deploy_mode, args.python)
    else:
        conf = session_conf(cfg)
    for key, value in conf.items():
        print(f"{key}={value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
