"""The job's Spark settings come from the config: the memory bounds that keep a long-running
driver flat (RocksDB's bounded memory, the UI's retained jobs, malloc arenas) and can be switched off."""

from __future__ import annotations

from gaitstream import config
from streaming import spark_conf

BOUNDED = "spark.sql.streaming.stateStore.rocksdb.boundedMemoryUsage"
MAX_MB = "spark.sql.streaming.stateStore.rocksdb.maxMemoryUsageMB"


def test_rocksdb_memory_is_bounded_by_the_config():
    conf = spark_conf.session_conf(config.load(env={"GAITSTREAM_SPARK_DEDUPE_ROCKSDB_MEMORY_MB": "96"}))
    assert (conf[BOUNDED], conf[MAX_MB]) == ("true", "96")


def test_zero_leaves_rocksdb_unbounded():
    conf = spark_conf.session_conf(config.load(env={"GAITSTREAM_SPARK_DEDUPE_ROCKSDB_MEMORY_MB": "0"}))
    assert BOUNDED not in conf and MAX_MB not in conf


def test_the_ui_keeps_what_the_config_says():
    conf = spark_conf.session_conf(config.load(env={"GAITSTREAM_SPARK_UI_RETAINED": "42"}))
    for key in ("spark.ui.retainedJobs", "spark.ui.retainedStages", "spark.sql.ui.retainedExecutions"):
        assert conf[key] == "42"


def test_malloc_arenas_reach_the_workers_and_yarn_unless_zero():
    conf = spark_conf.submit_conf(
        config.load(env={"GAITSTREAM_SPARK_MALLOC_ARENA_MAX": "3"}), "local[*]", "client", "py"
    )
    assert conf["spark.executorEnv.MALLOC_ARENA_MAX"] == conf["spark.yarn.appMasterEnv.MALLOC_ARENA_MAX"] == "3"
    conf = spark_conf.submit_conf(
        config.load(env={"GAITSTREAM_SPARK_MALLOC_ARENA_MAX": "0"}), "local[*]", "client", "py"
    )
    assert not any("MALLOC_ARENA_MAX" in key for key in conf)
