#!/usr/bin/env bash
# HDFS (real NameNode + DataNode daemons from Maven Central jars) on loopback for the raw archive;
# optionally a YARN ResourceManager + NodeManager next to it for spark-submit --master yarn.
GS_SERVICE=hdfs
GS_HELP="Runs stack/hdfs/run.sh, which supervises the NameNode and DataNode JVMs (hadoop-hdfs
\$hdfs.hadoop_version jars resolved by Maven into \$GS_RUNTIME_CACHE_DIR) and, with hdfs.yarn = true
(or GAITSTREAM_HDFS_YARN=1, or 'start --yarn' / 'restart --yarn'), a YARN ResourceManager + NodeManager.
Config keys: hdfs.host, hdfs.namenode_port, hdfs.webhdfs_port, hdfs.datanode_{port,http_port,ipc_port},
hdfs.hadoop_version, hdfs.heap (NameNode), hdfs.datanode_heap, hdfs.user, hdfs.yarn, hdfs.yarn_rm_port,
hdfs.yarn_web_port, hdfs.yarn_nm_web_port, hdfs.yarn_{scheduler,tracker,admin,nm_localizer}_port,
hdfs.yarn_heap, hdfs.yarn_nm_memory_mb, hdfs.yarn_nm_vcores.
The NameNode is formatted only when var/hdfs/name holds no namespace yet; data survives restarts.
Data: var/hdfs/{name,data,yarn}; client config (HADOOP_CONF_DIR): var/hdfs/conf; log: var/log/hdfs.log."
# 'start --yarn' / 'restart --yarn': the YARN switch for this invocation.
if [[ " $* " == *" --yarn "* ]]; then export GAITSTREAM_HDFS_YARN=1; set -- "${@/--yarn/}"; fi
source "$(dirname "$0")/lib.sh"
DIR="$GS_RUNTIME_DIR/hdfs"
CONF="$DIR/conf"

svc_install() {
  LIB="$(gs_maven_lib hdfs "$STACK_DIR/hdfs/pom.xml" -Dhadoop.version="$GS_HDFS_HADOOP_VERSION")/lib" \
    || gs_die "could not resolve the Hadoop $GS_HDFS_HADOOP_VERSION jars"
}

render() {
  mkdir -p "$CONF" "$DIR/tmp" "$DIR/yarn/local" "$DIR/yarn/logs"
  local t
  for t in core-site hdfs-site yarn-site; do
    sed -e "s|@HOST@|$GS_HDFS_HOST|g; s|@DIR@|$DIR|g; s|@USER@|$GS_HDFS_USER|g" \
        -e "s|@NN_PORT@|$GS_HDFS_NAMENODE_PORT|g; s|@WEBHDFS_PORT@|$GS_HDFS_WEBHDFS_PORT|g" \
        -e "s|@DN_PORT@|$GS_HDFS_DATANODE_PORT|g; s|@DN_HTTP_PORT@|$GS_HDFS_DATANODE_HTTP_PORT|g" \
        -e "s|@DN_IPC_PORT@|$GS_HDFS_DATANODE_IPC_PORT|g" \
        -e "s|@RM_PORT@|$GS_HDFS_YARN_RM_PORT|g; s|@RM_WEB_PORT@|$GS_HDFS_YARN_WEB_PORT|g" \
        -e "s|@NM_WEB_PORT@|$GS_HDFS_YARN_NM_WEB_PORT|g; s|@NM_MEMORY_MB@|$GS_HDFS_YARN_NM_MEMORY_MB|g" \
        -e "s|@NM_VCORES@|$GS_HDFS_YARN_NM_VCORES|g; s|@RM_SCHEDULER_PORT@|$GS_HDFS_YARN_SCHEDULER_PORT|g" \
        -e "s|@RM_TRACKER_PORT@|$GS_HDFS_YARN_TRACKER_PORT|g; s|@RM_ADMIN_PORT@|$GS_HDFS_YARN_ADMIN_PORT|g" \
        -e "s|@NM_LOCALIZER_PORT@|$GS_HDFS_YARN_NM_LOCALIZER_PORT|g" \
        "$STACK_DIR/hdfs/$t.xml.tmpl" >"$CONF/$t.xml"
  done
  cp "$STACK_DIR/hdfs/log4j.properties" "$CONF/log4j.properties"
}

# The first start (or one after var/hdfs/name was deleted) formats a new namespace; the old
# DataNode blocks then belong to no namespace, so they go too. Never runs when a namespace exists.
format_once() {
  [[ -f "$DIR/name/current/VERSION" ]] && return 0
  gs_say "formatting a new HDFS namespace in $DIR/name (first run)"
  rm -rf "$DIR/name" "$DIR/data"
  "$JAVA_HOME/bin/java" -Xmx256m -cp "$CONF:$LIB/*" -Dgs.daemon=format \
      org.apache.hadoop.hdfs.server.namenode.NameNode -format -force -nonInteractive -clusterid gaitstream \
      >>"$(gs_log "$GS_SERVICE")" 2>&1 || { gs_tail_log "$GS_SERVICE"; gs_die "namenode -format failed"; }
}

healthy() {
  gs_health "$GS_SERVICE" || return 1
  if [[ "$GS_HDFS_YARN" == 1 ]]; then gs_health yarn || return 1; fi
}

svc_start() {
  gs_ensure_venv
  if gs_running "$GS_SERVICE" && gs_health "$GS_SERVICE" >/dev/null 2>&1; then
    if [[ "$GS_HDFS_YARN" != 1 ]] || gs_health yarn >/dev/null 2>&1; then gs_say "already running"; return 0; fi
    gs_say "running without YARN: restarting with it"
  fi
  gs_running "$GS_SERVICE" && svc_stop
  svc_install
  render
  format_once
  HADOOP_CONF_DIR="$CONF" HDFS_LIB_DIR="$LIB" HDFS_NN_HEAP="$GS_HDFS_HEAP" HDFS_DN_HEAP="$GS_HDFS_DATANODE_HEAP" \
    HDFS_RUN_YARN="$GS_HDFS_YARN" HDFS_YARN_HEAP="$GS_HDFS_YARN_HEAP" HDFS_LOG_DIR="$GS_LOG_DIR" \
    gs_spawn "$GS_SERVICE" "$STACK_DIR/hdfs/run.sh"
  gs_wait_healthy "$GS_SERVICE" "$GS_RUNTIME_START_TIMEOUT" healthy
}

svc_stop() { gs_stop "$GS_SERVICE" 30; }

gs_main "$@"
