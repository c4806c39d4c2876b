#!/usr/bin/env bash
# Cassandra 5.0 (the pipeline's feature/result store), run from Maven Central jars: one local node,
# or one node per address of cassandra.nodes (the cluster-local profile).
GS_SERVICE=cassandra
GS_HELP="Runs org.apache.cassandra:cassandra-all (CassandraDaemon, foreground JVM) as one local node.
Config keys: [cassandra] host, port (CQL), storage_port, version, heap, heap_initial, max_direct_memory,
cluster_name; [runtime] dir, cache_dir, start_timeout.
Jars: resolved once by Maven into \$GS_RUNTIME_CACHE_DIR/cassandra-<hash>/lib.
Config rendered from stack/cassandra/{cassandra.yaml,logback.xml,jvm.options} into
\$GS_RUNTIME_DIR/cassandra/conf; data, commit log, hints, caches under \$GS_RUNTIME_DIR/cassandra;
log in \$GS_RUNTIME_DIR/log/cassandra.log.
With cassandra.nodes (e.g. --profile cluster): node i (1-based) runs on the i-th address with the same
ports, its folders in \$GS_RUNTIME_DIR/cassandra/node<i>, its config rendered by
python -m gaitstream.cassandra_admin render (first node = seed, GossipingPropertyFileSnitch with
dc=cassandra.local_datacenter rack=rack<i>), pid and log named cassandra-<i>. The seed starts first,
then the others together. With cassandra.username: PasswordAuthenticator + CassandraAuthorizer, and
after the start system_auth replicated to every node, the role cassandra.username (password from the
config) created as a login superuser, the built-in 'cassandra' role disabled. No JMX (no nodetool).
Per node: $0 {start-node|stop-node|kill-node} N (kill-node: SIGKILL, no drain), repair-node N KEYSPACE
(every row read at ALL through node N: read repair writes what it missed), {isolate-node|heal-node} N
(a network partition of node N's address: every packet to it dropped, with whatever else runs
there; the process keeps running); status prints one line per node."
source "$(dirname "$0")/lib.sh"

CASS_HOME="$GS_RUNTIME_DIR/cassandra"
CASS_CONF="$CASS_HOME/conf"
CASS_TEMPLATES="$STACK_DIR/cassandra"
# cassandra.nodes, one address each; empty = the single node on cassandra.host.
CASS_NODES=()
IFS=, read -r -a CASS_NODES <<<"$GS_CASSANDRA_NODES"

cass_lib() {
  CASS_LIB="$(gs_maven_lib cassandra "$CASS_TEMPLATES/pom.xml" -Dcassandra.version="$GS_CASSANDRA_VERSION")/lib"
  [[ -f "$CASS_LIB/cassandra-all-$GS_CASSANDRA_VERSION.jar" ]] \
    || gs_die "cassandra-all-$GS_CASSANDRA_VERSION.jar missing from $CASS_LIB"
}

svc_install() {
  cass_lib
  mkdir -p "$CASS_CONF" "$CASS_HOME"/{data,commitlog,saved_caches,hints,cdc_raw,triggers,logs}
  # Re-rendered on every start so that conf changes apply; the data folders are untouched.
  sed -e "s|@CLUSTER_NAME@|$GS_CASSANDRA_CLUSTER_NAME|g" \
      -e "s|@DATA_DIR@|$CASS_HOME|g" \
      -e "s|@HOST@|$GS_CASSANDRA_HOST|g" \
      -e "s|@PORT@|$GS_CASSANDRA_PORT|g" \
      -e "s|@STORAGE_PORT@|$GS_CASSANDRA_STORAGE_PORT|g" \
      "$CASS_TEMPLATES/cassandra.yaml" >"$CASS_CONF/cassandra.yaml"
  if grep -q '@[A-Z_]*@' "$CASS_CONF/cassandra.yaml"; then
    gs_die "unrendered placeholder in $CASS_CONF/cassandra.yaml: $(grep -o '@[A-Z_]*@' "$CASS_CONF/cassandra.yaml" | head -1)"
  fi
  cp "$CASS_TEMPLATES/logback.xml" "$CASS_CONF/logback.xml"
}

# cass_jvm_opts DIR: the JVM flags of a node whose folder (conf/, data, logs) is DIR, into CASS_OPTS.
cass_jvm_opts() {
  local dir="$1" jamm; jamm="$(ls "$CASS_LIB"/jamm-*.jar | head -1)"
  [[ -f "$jamm" ]] || gs_die "jamm agent jar not found in $CASS_LIB"
  mapfile -t CASS_OPTS < <(grep -v -e '^[[:space:]]*#' -e '^[[:space:]]*$' "$CASS_TEMPLATES/jvm.options")
  CASS_OPTS+=(
    "-Xms$GS_CASSANDRA_HEAP_INITIAL" "-Xmx$GS_CASSANDRA_HEAP"
    "-XX:MaxDirectMemorySize=$GS_CASSANDRA_MAX_DIRECT_MEMORY"
    "-javaagent:$jamm"
    "-Dcassandra.config=file://$dir/conf/cassandra.yaml"
    "-Dcassandra-foreground=true"
    "-Dcassandra.storagedir=$dir"
    "-Dcassandra.logdir=$dir/logs"
    "-Dcassandra.triggers_dir=$dir/triggers"
    "-Dlogback.configurationFile=file://$dir/conf/logback.xml"
    "-XX:ErrorFile=$dir/logs/hs_err_%p.log"
  )
}

svc_start() {
  if (( ${#CASS_NODES[@]} )); then cluster_start; return; fi
  gs_ensure_venv
  if gs_running $GS_SERVICE && gs_health $GS_SERVICE >/dev/null 2>&1; then gs_say "already running"; return 0; fi
  if gs_running $GS_SERVICE; then
    # Alive but not answering yet (e.g. a start still in progress): wait for it, do not start twice.
    gs_say "process running, waiting for it to become healthy"
    gs_wait_healthy $GS_SERVICE "$GS_RUNTIME_START_TIMEOUT" gs_health $GS_SERVICE; return
  fi
  svc_install
  local -a CASS_OPTS
  cass_jvm_opts "$CASS_HOME"
  gs_say "starting Cassandra $GS_CASSANDRA_VERSION on $GS_CASSANDRA_HOST:$GS_CASSANDRA_PORT (heap $GS_CASSANDRA_HEAP_INITIAL..$GS_CASSANDRA_HEAP)"
  # Working directory = the data folder, so nothing the JVM drops lands in the caller's cwd.
  cd "$CASS_HOME"
  gs_spawn $GS_SERVICE "$JAVA_HOME/bin/java" "${CASS_OPTS[@]}" -cp "$CASS_LIB/*" \
    org.apache.cassandra.service.CassandraDaemon
  gs_wait_healthy $GS_SERVICE "$GS_RUNTIME_START_TIMEOUT" gs_health $GS_SERVICE
}

# SIGTERM runs Cassandra's shutdown hook (drain: flush memtables, close the commit log); a drain
# of a small node takes seconds, 60 s of grace before SIGKILL.
svc_stop() {
  if (( ${#CASS_NODES[@]} )); then cluster_stop; return; fi
  gs_stop $GS_SERVICE 60
}

svc_status() {
  if (( ${#CASS_NODES[@]} )); then cluster_status; return; fi
  gs_status $GS_SERVICE
}

# --- cassandra.nodes: one JVM per address -------------------------------------------------------
cass_admin() { (cd "$GS_ROOT" && "$GS_PY" -m gaitstream.cassandra_admin "$@"); }

# node_check N: N is a configured node (1..count).
node_check() {
  (( ${#CASS_NODES[@]} )) || gs_die "per-node commands need cassandra.nodes (e.g. --profile cluster)"
  [[ "${1:-}" =~ ^[0-9]+$ ]] && (( $1 >= 1 && $1 <= ${#CASS_NODES[@]} )) \
    || gs_die "node '${1:-}': give a number from 1 to ${#CASS_NODES[@]}"
}

# node_cql_open N: node N accepts connections on its CQL port (its start is complete).
node_cql_open() { (: <"/dev/tcp/${CASS_NODES[$1 - 1]}/$GS_CASSANDRA_PORT") 2>/dev/null; }

# node_spawn N: start node N's JVM (its conf rendered already); returns at once.
node_spawn() {
  local i="$1" dir="$CASS_HOME/node$1"
  local -a CASS_OPTS
  cass_jvm_opts "$dir"
  CASS_OPTS+=(
    "-Dcassandra-rackdc.properties=file://$dir/conf/cassandra-rackdc.properties"
    # A fresh cluster's nodes join together; no range-movement lock between them.
    "-Dcassandra.consistent.rangemovement=false"
    # system_auth is created with one copy per node, so the built-in superuser (written at QUORUM
    # once a quorum is up) and the roles are on every node whichever joins first; retried every 3 s.
    "-Dcassandra.system_auth.default_rf=${#CASS_NODES[@]}"
    "-Dcassandra.superuser_setup_delay_ms=3000"
    # A restarted node first asks its seed and saved peers for the ring (gossip shadow round) and
    # waits ring_delay (30 s by default) when none answers: the seed restarting alone; 5 s here.
    "-Dcassandra.ring_delay_ms=5000"
  )
  GS_SERVICE="cassandra-$i" gs_say "starting node $i on ${CASS_NODES[i - 1]}:$GS_CASSANDRA_PORT (storage $GS_CASSANDRA_STORAGE_PORT, heap $GS_CASSANDRA_HEAP_INITIAL..$GS_CASSANDRA_HEAP)"
  (cd "$dir" && gs_spawn "cassandra-$i" "$JAVA_HOME/bin/java" "${CASS_OPTS[@]}" -cp "$CASS_LIB/*" \
    org.apache.cassandra.service.CassandraDaemon)
}

# node_wait N TIMEOUT: until node N answers on its CQL port; fails early when its JVM died.
node_wait() {
  local i="$1" deadline=$((SECONDS + $2)) t0=$SECONDS
  local GS_SERVICE="cassandra-$i"
  until node_cql_open "$i"; do
    if ! gs_running "cassandra-$i"; then
      gs_say "process exited before its CQL port opened"; gs_tail_log "cassandra-$i"; return 1
    fi
    if (( SECONDS >= deadline )); then
      gs_say "CQL port ${CASS_NODES[i - 1]}:$GS_CASSANDRA_PORT not open after $2 s"; gs_tail_log "cassandra-$i"; return 1
    fi
    sleep 1
  done
  gs_say "CQL port ${CASS_NODES[i - 1]}:$GS_CASSANDRA_PORT open (waited $((SECONDS - t0)) s)"
}

# nodes_up N...: start the nodes that are not running (the seed, node 1, first and alone: the others
# join through it) and wait until every one of N... answers on its CQL port.
nodes_up() {
  local i rest=() wait=()
  for i in "$@"; do
    if gs_running "cassandra-$i"; then
      GS_SERVICE="cassandra-$i" gs_say "already running (pid $(gs_pid "cassandra-$i"))"; wait+=("$i")
    elif (( i == 1 )); then
      node_spawn 1; node_wait 1 "$GS_RUNTIME_START_TIMEOUT" || return 1
    else
      rest+=("$i"); wait+=("$i")
    fi
  done
  for i in ${rest[@]+"${rest[@]}"}; do node_spawn "$i"; done
  for i in ${wait[@]+"${wait[@]}"}; do node_wait "$i" "$GS_RUNTIME_START_TIMEOUT" || return 1; done
}

cluster_prepare() {
  gs_ensure_venv
  cass_lib
  cass_admin render >/dev/null || gs_die "could not render the nodes' configuration"
}

cluster_start() {
  local i all=() t0=$SECONDS
  for ((i = 1; i <= ${#CASS_NODES[@]}; i++)); do all+=("$i"); done
  cluster_prepare
  local running=0
  for i in "${all[@]}"; do gs_running "cassandra-$i" && running=$((running + 1)); done
  if (( running == ${#all[@]} )) && gs_health cassandra >/dev/null 2>&1; then gs_say "already running"; return 0; fi
  gs_say "starting ${#all[@]} nodes (${CASS_NODES[*]}), CQL port $GS_CASSANDRA_PORT"
  nodes_up "${all[@]}" || return 1
  if [[ -n "$GS_CASSANDRA_USERNAME" ]]; then
    gs_say "setting up roles (role $GS_CASSANDRA_USERNAME, system_auth replication)"
    cass_admin setup --timeout "$GS_RUNTIME_START_TIMEOUT" || { gs_tail_log cassandra-1 20; return 1; }
  fi
  gs_wait_healthy cassandra-1 "$GS_RUNTIME_START_TIMEOUT" gs_health cassandra || return 1
  gs_say "${#all[@]} nodes up in $((SECONDS - t0)) s"
}

cluster_stop() {
  local i
  # All at once: each node drains on SIGTERM (60 s of grace); the others note it leaving.
  for ((i = 1; i <= ${#CASS_NODES[@]}; i++)); do (GS_SERVICE="cassandra-$i" gs_stop "cassandra-$i" 60) & done
  wait
}

cluster_status() {
  local i pid states="" state running=0 rc=0 out
  for ((i = 1; i <= ${#CASS_NODES[@]}; i++)); do gs_running "cassandra-$i" && running=$((running + 1)); done
  # The cluster's view of each node (one connection); none to ask when no node runs.
  (( running )) && { states="$(cass_admin nodes 2>&1)" || true; }
  for ((i = 1; i <= ${#CASS_NODES[@]}; i++)); do
    pid="$(gs_pid "cassandra-$i")"
    state="$(awk -v i="$i" '$1 == i { $1 = ""; $2 = ""; sub(/^ +/, ""); print }' <<<"$states")"
    if [[ -z "$pid" ]]; then
      GS_SERVICE="cassandra-$i" gs_say "stopped (${CASS_NODES[i - 1]}:$GS_CASSANDRA_PORT)"; rc=1; continue
    fi
    GS_SERVICE="cassandra-$i" gs_say "running (pid $pid, $(gs_rss_mb "$pid") MiB RSS) ${CASS_NODES[i - 1]}:$GS_CASSANDRA_PORT ${state:-DOWN (no answer)}"
    [[ "$state" == UP* ]] || rc=1
  done
  (( running )) || { gs_say "stopped (all ${#CASS_NODES[@]} nodes)"; return 3; }
  if out="$(gs_health cassandra 2>&1)"; then gs_say "healthy: $out"; else gs_say "NOT healthy: ${out##*$'\n'}"; rc=1; fi
  return "$rc"
}

node_start() {
  node_check "$1"
  cluster_prepare
  nodes_up "$1" || return 1
  local out
  if out="$(cass_admin wait-up "$1" --timeout "$GS_RUNTIME_START_TIMEOUT")"; then
    GS_SERVICE="cassandra-$1" gs_say "up in the cluster: $out"
  else
    GS_SERVICE="cassandra-$1" gs_say "not up in the cluster"; return 1
  fi
}

node_stop() { node_check "$1"; GS_SERVICE="cassandra-$1" gs_stop "cassandra-$1" 60; }

node_kill() {
  node_check "$1"
  local GS_SERVICE="cassandra-$1" pid; pid="$(gs_pid "cassandra-$1")"
  if [[ -z "$pid" ]]; then gs_say "not running"; rm -f "$(gs_pidfile "cassandra-$1")"; return 0; fi
  gs_say "kill -9 (pid $pid, no drain)"
  kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
  rm -f "$(gs_pidfile "cassandra-$1")"
  gs_say "killed"
}

case "${1:-}" in
  start-node) node_start "${2:-}" ;;
  stop-node) node_stop "${2:-}" ;;
  kill-node) node_kill "${2:-}" ;;
  isolate-node|heal-node)  # a network partition of node N's address (python -m gaitstream.partition)
    (cd "$GS_ROOT" && "$GS_PY" -m gaitstream.partition "${1%-node}" cassandra "${2:?$1 N}") ;;
  repair-node)
    (cd "$GS_ROOT" && "$GS_PY" -m gaitstream.cassandra_admin repair "${2:?repair-node N KEYSPACE}" "${3:?repair-node N KEYSPACE}") ;;
  *) gs_main "$@" ;;
esac
