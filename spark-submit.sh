#!/usr/bin/env bash
# Submit the gaitstream streaming job (streaming/job.py) with the connector jars and the venv's Python.
usage() {
  cat <<EOF
usage: $0 [--help] [SPARK-SUBMIT OPTIONS...] [-- JOB ARGS...]

Runs streaming/job.py with spark-submit from the venv's pyspark ($GS_SPARK_VERSION):
  --master      spark.master ($GS_SPARK_MASTER) unless given; --master yarn uses
                HADOOP_CONF_DIR=\$GS_RUNTIME_DIR/hdfs/conf (stack/hdfs.sh start --yarn)
  --jars        Kafka source + Cassandra connector, resolved by jars/resolve.sh (cached)
  --py-files    (YARN) gaitstream, bridge, model and streaming zipped into $GS_RUNTIME_DIR/spark/;
                a local master's workers import this checkout (spark.executorEnv.PYTHONPATH)
  YARN          --deploy-mode, --queue, --num-executors, --executor-memory, --executor-cores from
                spark.{deploy_mode,yarn_queue,executor_instances,executor_memory,executor_cores};
                spark.yarn_spark_jars (local: this machine's pyspark jars, upload, or a URI glob),
                spark.yarn_python (empty: the venv's python, for executors and a cluster-mode driver),
                spark.yarn.tags=\$GS_YARN_TAG (default: generated) to find the application again;
                application attempts: spark.yarn.maxAppAttempts=spark.yarn_max_app_attempts,
                spark.yarn.am.attemptFailuresValidityInterval=spark.yarn_attempt_failures_validity_interval
                (YARN restarts a failed driver/AM; locally stack/streaming.sh's supervisor does).
                Cluster mode also ships the config file (--files) and the GAITSTREAM_* overrides
                (spark.yarn.appMasterEnv.*) to the driver's container; secrets (passwords,
                tokens, the Mongo URI) never go on the command line: they travel in a mode-600
                TOML secrets file (--files, runtime.secrets_file in the container)
  bind          spark.bind_host ($GS_SPARK_BIND_HOST): SPARK_LOCAL_IP for a local driver, so
                the Spark UI listens there only (the job also sets spark.driver.bindAddress/host
                and spark.ui.killEnabled=false)
  secrets       outside the dev profile (runtime.profile) nothing is submitted while a secret the
                job uses is empty or a placeholder (python -m gaitstream.secrecy streaming)
  --conf        spark.driver.memory=spark.driver_memory ($GS_SPARK_DRIVER_MEMORY),
                spark.ui.port=spark.ui_port ($GS_SPARK_UI_PORT); the SQL settings (shuffle
                partitions, state store per query, Arrow batch size) are set by the job itself
Any other option goes to spark-submit unchanged (later ones win, e.g. --conf spark.ui.port=4050).
The job reads conf/gaitstream.toml + GAITSTREAM_* overrides ([kafka] [hdfs] [cassandra] [spark]
[streaming]); it prints the Spark UI URL and writes each query's progress to streaming.status_file.

SIGTERM or SIGINT stop the queries cleanly (the signal is forwarded to the Python driver, which
stops each query and exits 0). In YARN cluster mode the driver is remote: the application is
killed through the ResourceManager instead (state KILLED; checkpoints stay consistent).
Checkpoints: spark.checkpoint_dir ($GS_SPARK_CHECKPOINT_DIR).
EOF
}
source "$(dirname "$0")/stack/lib.sh"
GS_SERVICE=spark-submit

spark_args=() job_args=() master=""
while (( $# )); do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --) shift; job_args=("$@"); break ;;
    --master) master="$2"; shift 2 ;;
    --master=*) master="${1#--master=}"; shift ;;
    *) spark_args+=("$1"); shift ;;
  esac
done
master="${master:-$GS_SPARK_MASTER}"

[[ -x "$GS_PY" ]] || gs_die "no venv at $GS_VENV: run stack/venv.sh"
(cd "$GS_ROOT" && "$GS_PY" -m gaitstream.secrecy streaming) || gs_die "refusing to submit the job (see above)"
jars="$("$GS_ROOT/jars/resolve.sh")" || gs_die "jars/resolve.sh failed"
export SPARK_HOME; SPARK_HOME="$("$GS_PY" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')"
export PYSPARK_PYTHON="$GS_PY" PYSPARK_DRIVER_PYTHON="$GS_PY"
export HADOOP_USER_NAME="${HADOOP_USER_NAME:-$GS_HDFS_USER}"
# pyspark's own Arrow code warns on every batch under pandas 2.3 (FutureWarning): not ours to fix.
export PYTHONWARNINGS="${PYTHONWARNINGS:-ignore::FutureWarning}"
export GAITSTREAM_CONFIG="${GAITSTREAM_CONFIG:-$GS_ROOT/conf/gaitstream.toml}"
# The driver's JVM (and a local master's executors in it); workers and YARN get it from spark_conf.
if (( GS_SPARK_MALLOC_ARENA_MAX > 0 )); then export MALLOC_ARENA_MAX="$GS_SPARK_MALLOC_ARENA_MAX"; fi
# Absolute, as lib.sh read it (relative to the repo root): the driver may start elsewhere (YARN).
[[ "$GAITSTREAM_CONFIG" == /* ]] || GAITSTREAM_CONFIG="$GS_ROOT/$GAITSTREAM_CONFIG"
if [[ "$master" == yarn* ]]; then export HADOOP_CONF_DIR="${HADOOP_CONF_DIR:-$GS_RUNTIME_DIR/hdfs/conf}"; fi

# The packages as one zip for YARN's executors (they have no repo checkout).
mkdir -p "$GS_RUNTIME_DIR/spark"
py_zip="$GS_RUNTIME_DIR/spark/gaitstream-py.zip"
(cd "$GS_ROOT" && "$GS_PY" - "$py_zip" <<'EOF'
import pathlib, sys, zipfile
target = pathlib.Path(sys.argv[1])
tmp = target.with_suffix(".tmp")
with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
    for package in ("gaitstream", "bridge", "model", "streaming"):
        for path in sorted(pathlib.Path(package).rglob("*.py")):
            z.write(path)
tmp.replace(target)
EOF
)

deploy_mode=client
if [[ "$master" == yarn* ]]; then
  deploy_mode="$GS_SPARK_DEPLOY_MODE"
  for ((i = 0; i < ${#spark_args[@]}; i++)); do
    case "${spark_args[i]}" in
      --deploy-mode) deploy_mode="${spark_args[i+1]}" ;;
      --deploy-mode=*) deploy_mode="${spark_args[i]#--deploy-mode=}" ;;
    esac
  done
fi
# Driver memory, UI port, YARN sizing and retries: one definition, streaming/spark_conf.py (options
# given on this script's command line win: spark-submit prefers its flags to --conf values).
conf_lines="$(cd "$GS_ROOT" && "$GS_PY" -m streaming.spark_conf submit --master "$master" \
  --deploy-mode "$deploy_mode" --python "$GS_PY")" || gs_die "python -m streaming.spark_conf failed"
submit_conf=()
while IFS= read -r kv; do submit_conf+=(--conf "$kv"); done <<<"$conf_lines"
# Python code for the workers: YARN containers get the zip (--py-files); a local master's workers
# import this checkout (spark.executorEnv.PYTHONPATH). A --py-files zip is put on a worker's sys.path
# for every task, and the task's importlib.invalidate_caches() re-reads its whole directory once per
# package imported from it: 18 % of the windows operator's worker time at real time (py-spy).
if [[ "$master" == yarn* ]]; then code=(--py-files "$py_zip")
else code=(--conf "spark.executorEnv.PYTHONPATH=$GS_ROOT"); fi
cmd=("$SPARK_HOME/bin/spark-submit" --master "$master" --name "$GS_SPARK_APP_NAME"
  --jars "$jars" "${code[@]}" "${submit_conf[@]}"
  "${spark_args[@]}" "$GS_ROOT/streaming/job.py" "${job_args[@]}")
if [[ "$master" == yarn* ]]; then
  # The tag finds this submission's application in the ResourceManager (python -m gaitstream.yarn).
  yarn_tag="${GS_YARN_TAG:-gaitstream-$(hostname -s)-$$-$RANDOM}"
  yarn=(--deploy-mode "$deploy_mode" --conf "spark.yarn.tags=$yarn_tag")
  case "$GS_SPARK_YARN_SPARK_JARS" in
    upload) ;;  # Spark's default: zip $SPARK_HOME/jars into the HDFS staging folder at each submit
    local) yarn+=(--conf "spark.yarn.jars=local:$SPARK_HOME/jars/*") ;;
    *) yarn+=(--conf "spark.yarn.jars=$GS_SPARK_YARN_SPARK_JARS") ;;
  esac
  if [[ "$deploy_mode" == cluster ]]; then
    # The driver runs in a YARN container: ship the config file next to it, hand it the
    # GAITSTREAM_* overrides, and make the paths it writes absolute (relative ones would resolve
    # against the --py-files zip there).
    # Secrets (effective values: config, secrets file, environment) go in a mode-600 file shipped
    # next to it, never on the command line; YARN expands {{PWD}} to the container's folder.
    secrets_toml="$GS_RUNTIME_DIR/spark/yarn-secrets-$$.toml"
    (umask 077 && cd "$GS_ROOT" && "$GS_PY" -m gaitstream.config --secrets-toml >"$secrets_toml") \
      || gs_die "could not write the secrets file for YARN"
    chmod 600 "$secrets_toml"
    # The whole effective config in one file (the container has no conf/gaitstream.toml to merge over).
    config_toml="$GS_RUNTIME_DIR/spark/yarn-config-$$.toml"
    (cd "$GS_ROOT" && "$GS_PY" -m gaitstream.config --effective-toml >"$config_toml") \
      || gs_die "could not write the config file for YARN"
    yarn+=(--files "$config_toml#gaitstream.toml,$secrets_toml#gaitstream-secrets.toml"
      --conf "spark.yarn.appMasterEnv.GAITSTREAM_CONFIG=gaitstream.toml"
      --conf "spark.yarn.appMasterEnv.GAITSTREAM_RUNTIME_SECRETS_FILE={{PWD}}/gaitstream-secrets.toml"
      --conf "spark.yarn.appMasterEnv.PYTHONWARNINGS=$PYTHONWARNINGS")
    while IFS='=' read -r name value; do
      case "$name" in
        GAITSTREAM_CONFIG|*PASSWORD*|*TOKEN*|*SECRET*|GAITSTREAM_MONGO_URI) ;;  # shipped in the secrets file
        GAITSTREAM_*) yarn+=(--conf "spark.yarn.appMasterEnv.$name=$value") ;;
      esac
    done < <(env)
    yarn+=(--conf "spark.yarn.appMasterEnv.GAITSTREAM_SPARK_CHECKPOINT_DIR=$GS_CHECKPOINT_ROOT"
      --conf "spark.yarn.appMasterEnv.GAITSTREAM_STREAMING_STATUS_FILE=$GS_STREAMING_STATUS_FILE")
  fi
  cmd=("${cmd[0]}" "${yarn[@]}" "${cmd[@]:1}")
  gs_say "YARN $deploy_mode mode, application tag $yarn_tag (python -m gaitstream.yarn apps $yarn_tag)"
fi
if [[ "$deploy_mode" == client && -n "$GS_SPARK_BIND_HOST" ]]; then
  # Spark 3.5's UI binds to SPARK_LOCAL_IP, else to every interface (no spark.ui.host exists).
  export SPARK_LOCAL_IP="$GS_SPARK_BIND_HOST"
fi
gs_say "master $master, UI on ${SPARK_LOCAL_IP:-every interface} port $GS_SPARK_UI_PORT (Spark moves to the next free port if taken)"

# spark-submit runs in its own process group so a SIGTERM to ours (gs_stop, Ctrl-C) does not hit
# the JVM, whose shutdown hook would kill the SparkContext under the running queries. We forward
# the signal to the Python driver instead: it stops the queries, exits, and the JVM follows.
set -m
"${cmd[@]}" &
submit_pid=$!
stop_requested=0
forward() {
  stop_requested=1
  if [[ "$deploy_mode" == cluster ]]; then  # the driver is in a YARN container: kill the application
    gs_say "stopping: killing the YARN application(s) tagged $yarn_tag"
    (cd "$GS_ROOT" && "$GS_PY" -m gaitstream.yarn kill "$yarn_tag") || kill -TERM "$submit_pid" 2>/dev/null || true
    return 0  # a bare return would return the interrupted `wait`'s 143, and set -e would exit
  fi
  local driver; driver="$(pgrep -P "$submit_pid" -f streaming/job.py | head -n1 || true)"
  if [[ -n "$driver" ]]; then gs_say "stopping: SIGTERM to the Python driver $driver"
  else gs_say "stopping: no Python driver (yet), SIGTERM to spark-submit $submit_pid"; fi
  kill -TERM "${driver:-$submit_pid}" 2>/dev/null || true
}
trap forward TERM INT
# `wait` returns early (>128) when a trapped signal arrives: wait again until the job has exited.
while kill -0 "$submit_pid" 2>/dev/null; do wait "$submit_pid" || true; done
status=0; wait "$submit_pid" || status=$?
[[ -z "${secrets_toml:-}" ]] || rm -f "$secrets_toml" "$config_toml"
# Cluster mode: spark-submit reports the application we killed on request as failed.
if [[ "$deploy_mode" == cluster && "$stop_requested" == 1 ]]; then status=0; fi
exit "$status"
