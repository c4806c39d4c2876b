#!/usr/bin/env bash
# Foreground supervisor spawned by stack/hdfs.sh: runs the NameNode and DataNode JVMs (and the
# YARN ResourceManager + NodeManager when HDFS_RUN_YARN=1) as its children; exits, stopping the
# others, as soon as one of them exits, and forwards SIGTERM/SIGINT to all of them.
# Environment (set by stack/hdfs.sh): HADOOP_CONF_DIR, HDFS_LIB_DIR, HDFS_NN_HEAP, HDFS_DN_HEAP,
# HDFS_RUN_YARN, HDFS_YARN_HEAP, HDFS_LOG_DIR; HDFS_RUN_DATANODE=0 / HDFS_RUN_NODEMANAGER=0 leave
# out the DataNode / NodeManager (hdfs.datanodes / hdfs.nodemanagers: stack/hdfs.sh runs those).
# 'run.sh node NAME HEAP CLASS': that one daemon instead, in the foreground (exec: the caller's pid
# is the JVM's), with HDFS_EXTRA_CP appended to its class path.
set -u
: "${HADOOP_CONF_DIR:?}" "${HDFS_LIB_DIR:?}" "${HDFS_LOG_DIR:?}"
JAVA="${JAVA_HOME:-/usr/lib/jvm/java-17-openjdk-amd64}/bin/java"
CP="$HADOOP_CONF_DIR:$HDFS_LIB_DIR/*${HDFS_EXTRA_CP:+:$HDFS_EXTRA_CP}"
# Hadoop's own JDK 17 list (hadoop-env / HADOOP_OPTS): reflection into java.base.
OPENS=(--add-opens=java.base/java.lang=ALL-UNNAMED --add-opens=java.base/java.lang.reflect=ALL-UNNAMED
  --add-opens=java.base/java.io=ALL-UNNAMED --add-opens=java.base/java.net=ALL-UNNAMED
  --add-opens=java.base/java.nio=ALL-UNNAMED --add-opens=java.base/java.util=ALL-UNNAMED
  --add-opens=java.base/java.util.concurrent=ALL-UNNAMED --add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED
  --add-opens=java.base/java.util.regex=ALL-UNNAMED --add-opens=java.base/java.util.zip=ALL-UNNAMED
  --add-opens=java.base/sun.nio.ch=ALL-UNNAMED --add-opens=java.base/sun.nio.cs=ALL-UNNAMED
  --add-opens=java.base/sun.security.util=ALL-UNNAMED --add-opens=java.base/sun.security.x509=ALL-UNNAMED
  --add-exports=java.base/sun.net.dns=ALL-UNNAMED --add-exports=java.base/sun.net.util=ALL-UNNAMED)

# Small daemons on a 2-core box shared with four other services: serial GC and the C1 JIT only
# (less CPU at start, smaller code cache and RSS; these daemons are I/O bound).
jvm_cmd() {  # jvm_cmd NAME HEAP CLASS [ARGS...]: the daemon's command line, into JVM
  local name="$1" heap="$2"; shift 2
  JVM=("$JAVA" -Xms64m "-Xmx$heap" -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:MaxMetaspaceSize=192m -XX:ReservedCodeCacheSize=64m
    "${OPENS[@]}" -Djava.net.preferIPv4Stack=true -Dgs.daemon="$name"
    -Dhadoop.log.dir="$HDFS_LOG_DIR" -Dhadoop.log.file="hdfs-$name.log" -Dyarn.log.dir="$HDFS_LOG_DIR"
    -Dhadoop.home.dir="$HDFS_LIB_DIR" -Dhadoop.id.str="$(id -un)" -Dhadoop.root.logger=INFO,console
    -cp "$CP" "$@")
}

if [[ "${1:-}" == node ]]; then
  (( $# >= 4 )) || { echo "usage: $0 node NAME HEAP CLASS [ARGS...]" >&2; exit 2; }
  shift
  jvm_cmd "$@"
  echo "[hdfs-run] starting $1 (pid $$)"
  exec "${JVM[@]}"
fi

: "${HDFS_NN_HEAP:?}" "${HDFS_DN_HEAP:?}"
pids=()
daemon() {  # daemon NAME HEAP CLASS [ARGS...]
  jvm_cmd "$@"
  "${JVM[@]}" &
  pids+=($!)
  echo "[hdfs-run] started $1 (pid $!)"
}
stop_all() {  # TERM, then KILL whatever is still up after 25 s (a NodeManager retrying its RM hangs)
  kill -TERM "${pids[@]}" 2>/dev/null
  local i
  for ((i = 0; i < 50; i++)); do kill -0 "${pids[@]}" 2>/dev/null || break; sleep 0.5; done
  kill -KILL "${pids[@]}" 2>/dev/null
  wait
}
trap 'echo "[hdfs-run] stopping"; stop_all; exit 143' TERM INT

daemon namenode "$HDFS_NN_HEAP" org.apache.hadoop.hdfs.server.namenode.NameNode
if [[ "${HDFS_RUN_DATANODE:-1}" == 1 ]]; then
  daemon datanode "$HDFS_DN_HEAP" org.apache.hadoop.hdfs.server.datanode.DataNode
fi
if [[ "${HDFS_RUN_YARN:-0}" == 1 ]]; then
  daemon resourcemanager "$HDFS_YARN_HEAP" org.apache.hadoop.yarn.server.resourcemanager.ResourceManager
  if [[ "${HDFS_RUN_NODEMANAGER:-1}" == 1 ]]; then
    daemon nodemanager "$HDFS_YARN_HEAP" org.apache.hadoop.yarn.server.nodemanager.NodeManager
  fi
fi
wait -n
rc=$?
echo "[hdfs-run] a daemon exited ($rc): stopping the others"
stop_all
exit "$rc"
