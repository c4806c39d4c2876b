#!/usr/bin/env bash
# HDFS (real NameNode + DataNode daemons from Maven Central jars) on loopback for the raw archive;
# optionally a YARN ResourceManager + NodeManager next to it for spark-submit --master yarn.
# With hdfs.datanodes / hdfs.nodemanagers (the cluster profile): one DataNode / NodeManager JVM per
# listed address, each its own process next to the NameNode (+ ResourceManager).
GS_SERVICE=hdfs
GS_HELP="Runs stack/hdfs/run.sh, which supervises the NameNode and DataNode JVMs (hadoop-hdfs
\$hdfs.hadoop_version jars resolved by Maven into \$GS_RUNTIME_CACHE_DIR) and, with hdfs.yarn = true
(or GAITSTREAM_HDFS_YARN=1, or 'start --yarn' / 'restart --yarn'), a YARN ResourceManager + NodeManager.
Config keys: hdfs.host, hdfs.namenode_port, hdfs.webhdfs_port, hdfs.datanode_{port,http_port,ipc_port},
hdfs.hadoop_version, hdfs.heap (NameNode), hdfs.datanode_heap, hdfs.user, hdfs.replication, hdfs.yarn,
hdfs.yarn_rm_port, hdfs.yarn_web_port, hdfs.yarn_nm_web_port, hdfs.yarn_{scheduler,tracker,admin,nm_localizer}_port,
hdfs.yarn_heap, hdfs.yarn_nm_memory_mb, hdfs.yarn_nm_vcores, hdfs.datanodes, hdfs.nodemanagers.
The NameNode is formatted only when var/hdfs/name holds no namespace yet; data survives restarts.
Data: var/hdfs/{name,data,yarn}; client config (HADOOP_CONF_DIR): var/hdfs/conf; log: var/log/hdfs.log.
With hdfs.datanodes (e.g. --profile cluster): DataNode i (1..N) runs alone on the i-th address with
the same datanode ports, process hdfs-dn-<i> (pid and log), config and blocks in var/hdfs/dn<i>/;
run.sh then runs the NameNode (+ ResourceManager) only. With hdfs.yarn and hdfs.nodemanagers:
NodeManager i likewise, process yarn-nm-<i>, config, container dirs and logs in var/hdfs/nm<i>/.
start starts what is not running and waits until every listed node is live in the NameNode /
RUNNING in the ResourceManager; status prints one line per process. For fault tests:
  $0 stop-node dn|nm N | start-node dn|nm N | kill-node dn|nm N   (kill-node: SIGKILL, for a
  NodeManager also to its containers, as a machine failure; start-node waits until the node is
  live in the NameNode / RUNNING in the ResourceManager)."
# 'start --yarn' / 'restart --yarn': the YARN switch for this invocation.
if [[ " $* " == *" --yarn "* ]]; then export GAITSTREAM_HDFS_YARN=1; set -- "${@/--yarn/}"; fi
source "$(dirname "$0")/lib.sh"
DIR="$GS_RUNTIME_DIR/hdfs"
CONF="$DIR/conf"
BIND_CP=""

# The listed nodes; empty: the DataNode (NodeManager) runs inside run.sh, on hdfs.host.
DNS=(); [[ -n "${GS_HDFS_DATANODES:-}" ]] && IFS=, read -r -a DNS <<<"$GS_HDFS_DATANODES"
NMS=(); [[ "$GS_HDFS_YARN" == 1 && -n "${GS_HDFS_NODEMANAGERS:-}" ]] && IFS=, read -r -a NMS <<<"$GS_HDFS_NODEMANAGERS"
# A listed NodeManager's container manager port: fixed (a restarted NodeManager is the same node to
# the ResourceManager), the port after the localizer's, as Hadoop distributions number them.
NM_PORT=$((GS_HDFS_YARN_NM_LOCALIZER_PORT + 1))

svc_install() {
  LIB="$(gs_maven_lib hdfs "$STACK_DIR/hdfs/pom.xml" -Dhadoop.version="$GS_HDFS_HADOOP_VERSION")/lib" \
    || gs_die "could not resolve the Hadoop $GS_HDFS_HADOOP_VERSION jars"
  if (( ${#DNS[@]} )); then build_bind_factory; fi
}

# build_bind_factory: stack/hdfs/BoundSocketFactory.java compiled against the Hadoop jars into the
# download cache (first run only; keyed by its source and the Hadoop version); sets BIND_CP.
build_bind_factory() {
  local src="$STACK_DIR/hdfs/BoundSocketFactory.java" key tmp
  key="$( (cat "$src"; echo "$GS_HDFS_HADOOP_VERSION") | sha256sum | cut -c1-12)"
  BIND_CP="$GS_RUNTIME_CACHE_DIR/hdfs-bind-$key"
  [[ -f "$BIND_CP/.complete" ]] && return 0
  gs_say "compiling $src into $BIND_CP (first run only)"
  tmp="$(mktemp -d "$GS_RUNTIME_CACHE_DIR/hdfs-bind.XXXXXX")"
  "$JAVA_HOME/bin/javac" -nowarn -d "$tmp" -cp "$LIB/*" "$src" >>"$(gs_log "$GS_SERVICE")" 2>&1 \
    || { rm -rf "$tmp"; gs_tail_log "$GS_SERVICE"; gs_die "javac $src failed (a JDK is needed: $JAVA_HOME)"; }
  touch "$tmp/.complete"
  mv -T "$tmp" "$BIND_CP" 2>/dev/null || rm -rf "$tmp"  # a concurrent start compiled it first
}

# render_flag NAME ON: the sed expression keeping (ON=1, marker removed) or dropping the template
# lines that start with @NAME@.
render_flag() { if [[ "$2" == 1 ]]; then echo "s/^@$1@//"; else echo "/^@$1@/d"; fi; }

# render_to DEST DN_HOST DATA_DIR NM_HOST NM_DIR NM_PORT BIND: the three site files and log4j into
# DEST for the daemons run with it (DataNode on DN_HOST storing blocks in DATA_DIR, NodeManager on
# NM_HOST with NM_DIR/{local,logs}; BIND=1: the DataNode's NameNode RPC leaves from DN_HOST).
render_to() {
  local dest="$1" dn_host="$2" data_dir="$3" nm_host="$4" nm_dir="$5" nm_port="$6" bind="$7" t
  mkdir -p "$dest"
  for t in core-site hdfs-site yarn-site; do
    sed -e '/^@TEMPLATE@/d' -e "$(render_flag IF_DATANODES "$(( ${#DNS[@]} > 0 ))")" \
        -e "$(render_flag IF_NODEMANAGERS "$(( ${#NMS[@]} > 0 ))")" -e "$(render_flag UNLESS_NODEMANAGERS "$(( ${#NMS[@]} == 0 ))")" \
        -e "$(render_flag IF_BIND "$bind")" \
        -e "s|@HOST@|$GS_HDFS_HOST|g; s|@DIR@|$DIR|g; s|@USER@|$GS_HDFS_USER|g" \
        -e "s|@NN_PORT@|$GS_HDFS_NAMENODE_PORT|g; s|@WEBHDFS_PORT@|$GS_HDFS_WEBHDFS_PORT|g" \
        -e "s|@DN_HOST@|$dn_host|g; s|@DATA_DIR@|$data_dir|g; s|@REPLICATION@|$GS_HDFS_REPLICATION|g" \
        -e "s|@DN_PORT@|$GS_HDFS_DATANODE_PORT|g; s|@DN_HTTP_PORT@|$GS_HDFS_DATANODE_HTTP_PORT|g" \
        -e "s|@DN_IPC_PORT@|$GS_HDFS_DATANODE_IPC_PORT|g" \
        -e "s|@RM_PORT@|$GS_HDFS_YARN_RM_PORT|g; s|@RM_WEB_PORT@|$GS_HDFS_YARN_WEB_PORT|g" \
        -e "s|@NM_HOST@|$nm_host|g; s|@NM_DIR@|$nm_dir|g; s|@NM_PORT@|$nm_port|g" \
        -e "s|@NM_WEB_PORT@|$GS_HDFS_YARN_NM_WEB_PORT|g; s|@NM_MEMORY_MB@|$GS_HDFS_YARN_NM_MEMORY_MB|g" \
        -e "s|@NM_VCORES@|$GS_HDFS_YARN_NM_VCORES|g; s|@RM_SCHEDULER_PORT@|$GS_HDFS_YARN_SCHEDULER_PORT|g" \
        -e "s|@RM_TRACKER_PORT@|$GS_HDFS_YARN_TRACKER_PORT|g; s|@RM_ADMIN_PORT@|$GS_HDFS_YARN_ADMIN_PORT|g" \
        -e "s|@NM_LOCALIZER_PORT@|$GS_HDFS_YARN_NM_LOCALIZER_PORT|g" \
        "$STACK_DIR/hdfs/$t.xml.tmpl" >"$dest/$t.xml"
  done
  cp "$STACK_DIR/hdfs/log4j.properties" "$dest/log4j.properties"
}

# render: the main configuration (NameNode, ResourceManager, the DataNode and NodeManager of run.sh
# when none are listed, and every client: HADOOP_CONF_DIR).
render() {
  mkdir -p "$CONF" "$DIR/tmp" "$DIR/yarn/local" "$DIR/yarn/logs"
  render_to "$CONF" "$GS_HDFS_HOST" "$DIR/data" "$GS_HDFS_HOST" "$DIR/yarn" 0 0
}

# Listed nodes: KIND dn|nm, N 1..: process name, folder, address.
node_name() { if [[ "$1" == dn ]]; then echo "hdfs-dn-$2"; else echo "yarn-nm-$2"; fi; }
node_dir() { echo "$DIR/$1$2"; }
node_addr() { if [[ "$1" == dn ]]; then echo "${DNS[$(($2 - 1))]}"; else echo "${NMS[$(($2 - 1))]}"; fi; }
# node_list: "KIND N" for every listed node, DataNodes first.
node_list() {
  local i
  for ((i = 1; i <= ${#DNS[@]}; i++)); do echo "dn $i"; done
  for ((i = 1; i <= ${#NMS[@]}; i++)); do echo "nm $i"; done
}

render_node() {
  local d; d="$(node_dir "$1" "$2")"
  if [[ "$1" == dn ]]; then
    mkdir -p "$d/data"
    render_to "$d/conf" "$(node_addr dn "$2")" "$d/data" "$GS_HDFS_HOST" "$DIR/yarn" 0 1
  else
    mkdir -p "$d/local" "$d/logs"
    render_to "$d/conf" "$GS_HDFS_HOST" "$DIR/data" "$(node_addr nm "$2")" "$d" "$NM_PORT" 0
  fi
}

# The first start (or one after var/hdfs/name was deleted) formats a new namespace; the old
# DataNode blocks then belong to no namespace, so they go too. Never runs when a namespace exists.
format_once() {
  [[ -f "$DIR/name/current/VERSION" ]] && return 0
  gs_say "formatting a new HDFS namespace in $DIR/name (first run)"
  rm -rf "$DIR/name" "$DIR/data" "$DIR"/dn[0-9]*/data
  "$JAVA_HOME/bin/java" -Xmx256m -cp "$CONF:$LIB/*" -Dgs.daemon=format \
      org.apache.hadoop.hdfs.server.namenode.NameNode -format -force -nonInteractive -clusterid gaitstream \
      >>"$(gs_log "$GS_SERVICE")" 2>&1 || { gs_tail_log "$GS_SERVICE"; gs_die "namenode -format failed"; }
}

healthy() {
  gs_health "$GS_SERVICE" || return 1
  if [[ "$GS_HDFS_YARN" == 1 ]]; then gs_health yarn || return 1; fi
}

# run.sh supervises the NameNode (+ ResourceManager), and the DataNode (NodeManager) unless listed.
spawn_main() {
  HADOOP_CONF_DIR="$CONF" HDFS_LIB_DIR="$LIB" HDFS_NN_HEAP="$GS_HDFS_HEAP" HDFS_DN_HEAP="$GS_HDFS_DATANODE_HEAP" \
    HDFS_RUN_YARN="$GS_HDFS_YARN" HDFS_YARN_HEAP="$GS_HDFS_YARN_HEAP" HDFS_LOG_DIR="$GS_LOG_DIR" \
    HDFS_RUN_DATANODE="$(( ${#DNS[@]} == 0 ))" HDFS_RUN_NODEMANAGER="$(( ${#NMS[@]} == 0 ))" \
    gs_spawn "$GS_SERVICE" "$STACK_DIR/hdfs/run.sh"
}

# spawn_node KIND N: one listed DataNode / NodeManager JVM (run.sh node: exec, so the pid file holds the JVM).
spawn_node() {
  local name d daemon cls heap extra_cp=""
  name="$(node_name "$1" "$2")"; d="$(node_dir "$1" "$2")"
  if [[ "$1" == dn ]]; then
    daemon=datanode cls=org.apache.hadoop.hdfs.server.datanode.DataNode heap="$GS_HDFS_DATANODE_HEAP" extra_cp="$BIND_CP"
  else
    daemon=nodemanager cls=org.apache.hadoop.yarn.server.nodemanager.NodeManager heap="$GS_HDFS_YARN_HEAP"
  fi
  GS_SERVICE="$name" gs_say "starting on $(node_addr "$1" "$2")"
  HADOOP_CONF_DIR="$d/conf" HDFS_LIB_DIR="$LIB" HDFS_LOG_DIR="$GS_LOG_DIR" HDFS_EXTRA_CP="$extra_cp" \
    gs_spawn "$name" "$STACK_DIR/hdfs/run.sh" node "$daemon-$2" "$heap" "$cls"
}

# main_has_rm: the running run.sh has a ResourceManager (it may have been started without YARN).
main_has_rm() {
  local pid; pid="$(gs_pid "$GS_SERVICE")"
  [[ -n "$pid" ]] && pgrep -s "$pid" -f -- "-Dgs.daemon=resourcemanager" >/dev/null
}

# wait_all TIMEOUT CMD...: run CMD until it succeeds; fail early when run.sh or a listed node exited,
# after TIMEOUT seconds otherwise; on failure print the log tail of the process(es) concerned.
wait_all() {
  local timeout="$1"; shift
  local deadline=$((SECONDS + timeout)) out kind n name
  while :; do
    if out="$("$@" 2>&1)"; then gs_say "healthy: ${out//$'\n'/; }"; return 0; fi
    while read -r kind n; do
      if [[ "$kind" == main ]]; then name="$GS_SERVICE"; else name="$(node_name "$kind" "$n")"; fi
      if ! gs_running "$name"; then
        gs_say "$name exited before it was healthy (last check: ${out##*$'\n'})"
        gs_tail_log "$name"; return 1
      fi
    done < <(echo "main 0"; node_list)
    if (( SECONDS >= deadline )); then
      gs_say "not healthy after ${timeout}s (last check: ${out##*$'\n'})"
      gs_tail_log "$GS_SERVICE" 15
      while read -r kind n; do gs_tail_log "$(node_name "$kind" "$n")" 15; done < <(node_list)
      return 1
    fi
    sleep 1
  done
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
  spawn_main
  gs_wait_healthy "$GS_SERVICE" "$GS_RUNTIME_START_TIMEOUT" healthy
}

svc_stop() { gs_stop "$GS_SERVICE" 30; }

# --- Listed nodes (hdfs.datanodes, hdfs.nodemanagers) ----------------------------------------------

# cluster_start: start whatever is not running (run.sh, listed nodes), then wait for all of it.
cluster_start() {
  gs_ensure_venv
  local kind n down=() main_down=0
  gs_running "$GS_SERVICE" || main_down=1
  while read -r kind n; do gs_running "$(node_name "$kind" "$n")" || down+=("$kind $n"); done < <(node_list)
  if (( main_down == 0 )) && [[ "$GS_HDFS_YARN" == 1 ]] && ! main_has_rm; then
    gs_say "running without YARN: restarting the NameNode with a ResourceManager"
    gs_stop "$GS_SERVICE" 30; main_down=1
  fi
  if (( main_down == 0 && ${#down[@]} == 0 )); then
    if healthy >/dev/null 2>&1; then
      gs_say "already running (${#DNS[@]} DataNodes, ${#NMS[@]} NodeManagers)"; return 0
    fi
    gs_say "running but not healthy: restarting every process"; cluster_stop
    main_down=1; mapfile -t down < <(node_list)
  fi
  svc_install
  render
  format_once
  if (( main_down )); then spawn_main; fi
  local node
  for node in "${down[@]}"; do
    # shellcheck disable=SC2086
    render_node $node; spawn_node $node
  done
  wait_all "$GS_RUNTIME_START_TIMEOUT" healthy
}

# node_names_to_stop: the listed nodes' process names, and any other node pid file (a node left from
# an earlier config of this runtime folder).
node_names_to_stop() {
  local kind n f
  { while read -r kind n; do node_name "$kind" "$n"; done < <(node_list)
    for f in "$GS_RUN_DIR"/hdfs-dn-*.pid "$GS_RUN_DIR"/yarn-nm-*.pid; do
      if [[ -e "$f" ]]; then basename "$f" .pid; fi
    done; } | sort -u
}

# cluster_stop: the nodes at once (NodeManagers unregister from a ResourceManager still running),
# then the NameNode (+ ResourceManager).
cluster_stop() {
  local name pids=() rc=0 p
  while read -r name; do
    (GS_SERVICE="$name" gs_stop "$name" 30) & pids+=("$!")
  done < <(node_names_to_stop)
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  gs_stop "$GS_SERVICE" 30 || rc=1
  return "$rc"
}

# jvm_pid SESSION DAEMON: the pid of run.sh's DAEMON JVM (namenode, resourcemanager).
jvm_pid() { pgrep -s "$1" -f -- "-Dgs.daemon=$2 " | head -n 1 || true; }
jvm_rss_mb() { ps -o rss= -p "$1" 2>/dev/null | awk '{printf "%d", $1 / 1024}' || true; }

# node_states KIND [ADDRESS]: "ADDRESS<TAB>ok|bad<TAB>state" per listed node (or ADDRESS only) as
# the NameNode / ResourceManager sees it (python -m gaitstream.health.hdfs datanodes, .yarn
# nodemanagers); non-zero unless every one is live / RUNNING.
node_states() {
  local module=hdfs verb=datanodes
  [[ "$1" == nm ]] && module=yarn verb=nodemanagers
  (cd "$GS_ROOT" && "$GS_PY" -m "gaitstream.health.$module" "$verb" "${@:2}" 2>&1)
}

# cluster_status: one line per process (pid, RSS, how the NameNode / ResourceManager sees a listed
# node), then the health checks. Exit 0 when every process runs and both checks pass; 3 when
# nothing runs; 1 otherwise.
cluster_status() {
  local main pid line running=0 rc=0 kind n name addr ok state out daemon states_dn="" states_nm=""
  main="$(gs_pid "$GS_SERVICE")"
  [[ -n "$main" ]] && running=1
  while read -r kind n; do gs_running "$(node_name "$kind" "$n")" && running=$((running + 1)); done < <(node_list)
  if (( running == 0 )); then gs_say "stopped (${#DNS[@]} DataNodes, ${#NMS[@]} NodeManagers)"; return 3; fi
  for daemon in namenode resourcemanager; do
    [[ "$daemon" == resourcemanager && "$GS_HDFS_YARN" != 1 ]] && continue
    line="$daemon $GS_HDFS_HOST:"
    if [[ "$daemon" == namenode ]]; then line+="$GS_HDFS_NAMENODE_PORT"; else line+="$GS_HDFS_YARN_RM_PORT"; fi
    pid=""; [[ -n "$main" ]] && pid="$(jvm_pid "$main" "$daemon")"
    if [[ -n "$pid" ]]; then line+=": running (pid $pid, $(jvm_rss_mb "$pid") MiB RSS; run.sh pid $main)"
    else line+=": stopped"; rc=1
    fi
    gs_say "$line"
  done
  if (( ${#DNS[@]} )); then states_dn="$(node_states dn)" || true; fi
  if (( ${#NMS[@]} )); then states_nm="$(node_states nm)" || true; fi
  while read -r kind n; do
    name="$(node_name "$kind" "$n")"; addr="$(node_addr "$kind" "$n")"; pid="$(gs_pid "$name")"
    if [[ "$kind" == dn ]]; then line="datanode $n $addr:$GS_HDFS_DATANODE_PORT ($name): "
    else line="nodemanager $n $addr:$NM_PORT ($name): "
    fi
    if [[ -z "$pid" ]]; then line+="stopped"; rc=1
    else line+="running (pid $pid, $(gs_rss_mb "$pid") MiB RSS)"
    fi
    if [[ "$kind" == dn ]]; then out="$states_dn"; else out="$states_nm"; fi
    if IFS=$'\t' read -r _ ok state < <(awk -F'\t' -v a="$addr" '$1 == a' <<<"$out"); then
      line+=", $state"; [[ "$ok" == ok ]] || rc=1
    else
      line+=", state unknown (${out##*$'\n'})"; rc=1
    fi
    gs_say "$line"
  done < <(node_list)
  if out="$(healthy 2>&1)"; then gs_say "healthy: ${out//$'\n'/; }"
  else gs_say "NOT healthy: ${out##*$'\n'}"; rc=1
  fi
  return "$rc"
}

# node_arg VERB KIND N: KIND dn|nm and N must name a listed node.
node_arg() {
  local verb="$1" kind="${2:-}" n="${3:-}" count
  case "$kind" in
    dn) count=${#DNS[@]} ;;
    nm) count=${#NMS[@]} ;;
    *) gs_die "usage: $0 $verb dn|nm N" ;;
  esac
  (( count )) || gs_die "$verb $kind: no listed $kind nodes (hdfs.datanodes / hdfs.yarn + hdfs.nodemanagers; use --profile cluster)"
  [[ "$n" =~ ^[0-9]+$ ]] && (( n >= 1 && n <= count )) || gs_die "$verb $kind needs a node number 1..$count (got '$n')"
}

# node_start KIND N: start it unless it runs, then wait until the NameNode reports it live / the
# ResourceManager RUNNING.
node_start() {
  local name; name="$(node_name "$1" "$2")"
  gs_ensure_venv
  if gs_running "$name"; then GS_SERVICE="$name" gs_say "already running"
  else svc_install; render; render_node "$1" "$2"; spawn_node "$1" "$2"
  fi
  GS_SERVICE="$name" gs_wait_healthy "$name" "$GS_RUNTIME_START_TIMEOUT" node_ready "$1" "$(node_addr "$1" "$2")"
}

# node_ready KIND ADDRESS: that node's state; non-zero unless it is live / RUNNING.
node_ready() {
  local out rc=0
  out="$(node_states "$1" "$2")" || rc=$?
  awk -F'\t' 'NF >= 3 {print $3; next} {print}' <<<"$out"
  return "$rc"
}

# node_containers N: the session ids of the containers NodeManager N runs (its container pid files:
# each names the session leader of one container's process tree).
node_containers() {
  local f pid
  for f in "$(node_dir nm "$1")"/local/nmPrivate/*/*/*.pid; do
    [[ -f "$f" ]] || continue
    pid="$(cat "$f" 2>/dev/null || true)"
    if [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then echo "$pid"; fi
  done
}

# node_kill KIND N: SIGKILL to the node's JVM; for a NodeManager also to the containers it launched,
# as when its machine fails (they run in their own sessions and would outlive the JVM).
node_kill() {
  local name pid sid containers=(); name="$(node_name "$1" "$2")"; pid="$(gs_pid "$name")"
  GS_SERVICE="$name"
  if [[ "$1" == nm ]]; then mapfile -t containers < <(node_containers "$2"); fi
  if [[ -z "$pid" ]]; then gs_say "not running"; rm -f "$(gs_pidfile "$name")"
  else
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  fi
  for sid in "${containers[@]}"; do pkill -KILL -s "$sid" 2>/dev/null || true; done
  [[ -n "$pid" ]] || return 0
  local deadline=$((SECONDS + 10))
  while kill -0 "$pid" 2>/dev/null && (( SECONDS < deadline )); do sleep 0.2; done
  rm -f "$(gs_pidfile "$name")"
  if [[ "$1" == nm ]]; then gs_say "killed (SIGKILL to process group $pid and to ${#containers[@]} container(s))"
  else gs_say "killed (SIGKILL to process group $pid)"
  fi
}

case "${1:-}" in
  stop-node) node_arg "$@"; GS_SERVICE="$(node_name "$2" "$3")" gs_stop "$(node_name "$2" "$3")" 30; exit ;;
  start-node) node_arg "$@"; node_start "$2" "$3"; exit ;;
  kill-node) node_arg "$@"; node_kill "$2" "$3"; exit ;;
esac
if (( ${#DNS[@]} || ${#NMS[@]} )); then
  svc_start() { cluster_start; }
  svc_status() { cluster_status; }
fi
# Any node process (listed now, or left from an earlier config) stops with the service.
if (( ${#DNS[@]} || ${#NMS[@]} )) || compgen -G "$GS_RUN_DIR/hdfs-dn-*.pid" >/dev/null \
    || compgen -G "$GS_RUN_DIR/yarn-nm-*.pid" >/dev/null; then
  svc_stop() { cluster_stop; }
fi

gs_main "$@"
