"""Streaming throughput, side by side: Spark's ceiling on this machine vs the full job (samples/s).

* ceiling: ``rate-micro-batch`` source → the same per-walk stateful operator → ``noop`` sink,
  in-process ``local[2]`` with the RocksDB state store (no Kafka, no parsing, no sinks);
* full job: N walks replayed at max speed into a fresh Kafka topic (through the bridge), then
  ``spark-submit.sh`` on an isolated keyspace/archive; samples/s = samples / (time from the queries'
  start to every full window being readable in Cassandra), with the archive and
  dead-letter queries sharing the two cores.

Usage: var/venv/bin/python bench/streaming_throughput.py [--walks 20] [--rows-per-batch 50000]
Needs the stack (Kafka, Mosquitto, Cassandra, HDFS) up for the full-job half.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from gaitstream import config as gs_config  # noqa: E402
from gaitstream.gaitpdb import FORCE_CHANNELS  # noqa: E402


def ceiling(cfg, walks: int, rows_per_batch: int, batches: int) -> float:
    """Samples/s the stateful operator alone sustains (median over measured batches)."""
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    from streaming import stateful
    from streaming.job import window_settings

    os.environ["PYSPARK_PYTHON"] = sys.executable
    spark = (SparkSession.builder.master("local[2]").appName("bench-ceiling")
             .config("spark.sql.shuffle.partitions", int(cfg.spark["shuffle_partitions"]))
             .config("spark.sql.streaming.stateStore.providerClass", str(cfg.spark["state_store_provider"]))
             .config("spark.ui.enabled", False).config("spark.driver.memory", cfg.spark["driver_memory"])
             .getOrCreate())
    rate = (spark.readStream.format("rate-micro-batch").option("rowsPerBatch", rows_per_batch).load())
    walk = F.col("value") % walks
    samples = rate.select(
        F.lit("Ga").alias("study"), F.concat(F.lit("S"), walk.cast("string")).alias("subject_id"),
        F.concat(F.lit("S"), walk.cast("string"), F.lit("_01")).alias("walk_id"),
        (F.col("value") / walks).cast("long").alias("seq"), F.lit(0).cast("long").alias("sent_at_ms"),
        ((F.col("value") / walks).cast("long") / 100.0).alias("time"),
        *[(F.rand() * 800).alias(channel) for channel in FORCE_CHANNELS])
    outputs = stateful.walk_outputs(samples, window_settings(cfg), 3600, 3600)
    with tempfile.TemporaryDirectory() as checkpoint:
        query = (outputs.writeStream.format("noop").option("checkpointLocation", checkpoint)
                 .trigger(processingTime="0 seconds").start())
        while len(query.recentProgress) < batches + 2:
            time.sleep(0.5)
            assert query.exception() is None, query.exception()
        spark.sparkContext.setLogLevel("OFF")  # stop() interrupts a batch: expected, not worth a stack trace
        query.stop()
        measured = [p for p in query.recentProgress if p["numInputRows"]][2:]  # skip warm-up
    spark.stop()
    rates = sorted(p["numInputRows"] / (p["durationMs"]["triggerExecution"] / 1000) for p in measured)
    return rates[len(rates) // 2]


def full_job(walks: int) -> tuple[float, int]:
    """Samples/s of the whole job over walks already in Kafka; returns (rate, samples)."""
    from bridge import replay
    from gaitstream import gaitpdb
    from gaitstream.health.cassandra import connect
    from tests.integration.pipeline import isolated_config, replay_into_kafka
    from tests.integration.test_streaming import JobProcess, job_env

    cfg, env = isolated_config()
    folder = cfg.path("data.gaitpdb_dir")
    refs = replay.select_walks(gaitpdb.list_walks(folder)[0], one_per_subject=True)[:walks]
    tmp = Path(tempfile.mkdtemp(prefix="gs-bench-"))
    report = replay_into_kafka(cfg, env, refs, folder, tmp / "bridge.log", timeout=600,
                               batch_size=int(cfg.replay["batch_size"]))
    full_windows = sum(n // 100 for n in report.per_walk.values())
    tag = uuid.uuid4().hex[:8]
    run_env = job_env(env, tmp, tag, GAITSTREAM_STREAMING_IDLE_TIMEOUT_SECONDS="60")
    run_cfg = gs_config.load(env=run_env)
    job = JobProcess(run_env, tmp / "job.log")
    first_batch = None
    cluster = session = None
    try:
        while True:
            assert job.alive(), job.log()[-3000:]
            if first_batch is None and "streaming job running" in job.log():  # queries started
                first_batch = time.monotonic()
            if session is None:
                try:
                    cluster, session = connect(cfg)
                except Exception:
                    pass
            if session is not None and first_batch is not None:
                try:
                    done = session.execute(f"SELECT COUNT(*) FROM {run_cfg.cassandra['keyspace']}.windows",
                                           timeout=30).one()[0]
                except Exception:
                    done = 0
                if done >= full_windows:
                    break
            time.sleep(0.5)
        seconds = time.monotonic() - first_batch
    finally:
        job.proc.send_signal(signal.SIGTERM)
        job.proc.wait(120)
        if cluster is not None:
            session.execute(f"DROP KEYSPACE IF EXISTS {run_cfg.cassandra['keyspace']}", timeout=60)
            cluster.shutdown()
    return report.samples / seconds, report.samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--walks", type=int, default=20, help="walks (one per subject) for the full job")
    parser.add_argument("--rows-per-batch", type=int, default=50_000, help="ceiling: samples per micro-batch")
    parser.add_argument("--batches", type=int, default=8, help="ceiling: measured micro-batches")
    parser.add_argument("--skip-full", action="store_true", help="only the ceiling (no services needed)")
    args = parser.parse_args()
    cfg = gs_config.load()
    top = ceiling(cfg, 159, args.rows_per_batch, args.batches)
    print(f"ceiling  (rate → stateful operator → noop, 159 walks): {top:10,.0f} samples/s", flush=True)
    if not args.skip_full:
        rate, samples = full_job(args.walks)
        print(f"full job (Kafka → parse → archive + windows/features → HDFS + Cassandra), "
              f"{args.walks} walks, {samples:,} samples: {rate:10,.0f} samples/s")
        print(f"full job / ceiling: {rate / top:.0%}; real time for 159 walks needs 15,900 samples/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
