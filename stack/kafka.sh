#!/usr/bin/env bash
# Kafka in KRaft mode (broker + controller in one JVM), jars from Maven Central: one node, or one per
# address of kafka.nodes (the cluster profile), all of them voters of the controller quorum.
GS_SERVICE=kafka
GS_HELP="Runs java kafka.Kafka \$GS_RUNTIME_DIR/kafka/server.properties (rendered from stack/kafka/).
Jars: org.apache.kafka:kafka_2.13:\$kafka.version + reload4j, resolved by Maven into
\$GS_RUNTIME_CACHE_DIR/kafka-<hash>/lib. Config keys: kafka.host, kafka.port, kafka.controller_port,
kafka.version, kafka.heap, kafka.partitions, kafka.samples_topic, kafka.dead_letter_topic.
Data: var/kafka/data (cluster id in var/kafka/cluster.id, formatted on first start),
log: var/log/kafka.log. Topics are not auto-created: start creates the samples and dead-letter topics.
With kafka.nodes (e.g. --profile cluster): node i (1..N) is node.id i on the i-th address, same
kafka.port and kafka.controller_port on each, rendered by gaitstream/kafka_nodes.py into
\$GS_RUNTIME_DIR/kafka/node<i>/ (data in node<i>/data, one cluster id in kafka/cluster.id);
pid and log named kafka-<i>; replication from kafka.replication_factor and kafka.min_insync_replicas.
start starts every node, waits for all of them in the cluster metadata and a round trip, then
creates the topics; status prints one line per node. For fault tests:
  $0 stop-node N | start-node N | kill-node N   (kill-node: SIGKILL to node N's process group;
  start-node waits until node N is in the cluster and in sync on every partition it holds).
  $0 isolate-node N | heal-node N   (a network partition of node N's address: every packet to it
  dropped, with whatever else runs there; python -m gaitstream.partition)."
source "$(dirname "$0")/lib.sh"
DIR="$GS_RUNTIME_DIR/kafka"
LIB=""

svc_install() {
  LIB="$(gs_maven_lib "$GS_SERVICE" "$STACK_DIR/kafka/pom.xml" -Dkafka.version="$GS_KAFKA_VERSION")/lib" \
    || gs_die "could not resolve Kafka $GS_KAFKA_VERSION jars"
}

render() {
  mkdir -p "$DIR/data"
  sed -e "s|@HOST@|$GS_KAFKA_HOST|g; s|@PORT@|$GS_KAFKA_PORT|g; s|@CONTROLLER_PORT@|$GS_KAFKA_CONTROLLER_PORT|g" \
      -e "s|@DATA_DIR@|$DIR/data|; s|@PARTITIONS@|$GS_KAFKA_PARTITIONS|" \
      "$STACK_DIR/kafka/server.properties.tmpl" >"$DIR/server.properties"
  cp "$STACK_DIR/kafka/log4j.properties" "$DIR/log4j.properties"
}

# First start only: pick a cluster id, keep it, and format the KRaft storage with it.
format_storage() {
  [[ -f "$DIR/data/meta.properties" ]] && return 0
  if [[ ! -s "$DIR/cluster.id" ]]; then
    python3 -c 'import base64, uuid; print(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))' >"$DIR/cluster.id"
  fi
  gs_say "formatting storage $DIR/data (cluster id $(cat "$DIR/cluster.id"))"
  java -Xmx256m -Dlog4j.configuration="file:$DIR/log4j.properties" -cp "$LIB/*" kafka.tools.StorageTool format \
      -t "$(cat "$DIR/cluster.id")" -c "$DIR/server.properties" --ignore-formatted >>"$(gs_log "$GS_SERVICE")" 2>&1 \
    || { gs_tail_log "$GS_SERVICE"; gs_die "kafka-storage format failed"; }
}

ensure_topics() {
  (cd "$GS_ROOT" && "$GS_PY" -c 'import sys
from gaitstream import config
from gaitstream.clients import ensure_topic
cfg = config.load()
for name in sys.argv[1:]:
    ensure_topic(cfg, name, cfg.kafka.partitions)
    print("[kafka] topic ready:", name)' "$GS_KAFKA_SAMPLES_TOPIC" "$GS_KAFKA_DEAD_LETTER_TOPIC")
}

svc_start() {
  gs_ensure_venv
  if gs_already_up; then return 0; fi
  svc_install
  render
  format_storage
  gs_spawn "$GS_SERVICE" java -Xmx"$GS_KAFKA_HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
    -Dlog4j.configuration="file:$DIR/log4j.properties" -cp "$LIB/*" kafka.Kafka "$DIR/server.properties"
  gs_wait_healthy "$GS_SERVICE" "$GS_RUNTIME_START_TIMEOUT" gs_health "$GS_SERVICE"
  ensure_topics
}

# Kafka flushes and closes its logs on SIGTERM (a few seconds); 60s before SIGKILL.
svc_stop() { gs_stop "$GS_SERVICE" 60; }

# --- Several nodes (kafka.nodes): node i is process kafka-<i> -------------------------------------
NODES=()
if [[ -n "${GS_KAFKA_NODES:-}" ]]; then IFS=, read -r -a NODES <<<"$GS_KAFKA_NODES"; fi
NODE_IDS=()
for ((i = 1; i <= ${#NODES[@]}; i++)); do NODE_IDS+=("$i"); done

node_dir() { echo "$DIR/node$1"; }
node_addr() { echo "${NODES[$(($1 - 1))]}:$GS_KAFKA_PORT"; }
kafka_py() { (cd "$GS_ROOT" && "$GS_PY" -m gaitstream.kafka_nodes "$@"); }

# render_nodes [N...]: each node's server.properties (all when none named) and the shared log4j file.
render_nodes() {
  mkdir -p "$DIR"
  kafka_py render "$@" >/dev/null || gs_die "could not render the nodes' server.properties"
  cp "$STACK_DIR/kafka/log4j.properties" "$DIR/log4j.properties"
}

# format_nodes N...: first start of a node only: format its storage with the cluster's one id
# (picked and kept in $DIR/cluster.id by the first start); the nodes in parallel.
format_nodes() {
  local n d pids=() rc=0
  if [[ ! -s "$DIR/cluster.id" ]]; then
    python3 -c 'import base64, uuid; print(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))' >"$DIR/cluster.id"
  fi
  for n in "$@"; do
    d="$(node_dir "$n")"
    [[ -f "$d/data/meta.properties" ]] && continue
    GS_SERVICE="kafka-$n" gs_say "formatting storage $d/data (cluster id $(cat "$DIR/cluster.id"))"
    java -Xmx256m -Dlog4j.configuration="file:$DIR/log4j.properties" -cp "$LIB/*" kafka.tools.StorageTool format \
        -t "$(cat "$DIR/cluster.id")" -c "$d/server.properties" --ignore-formatted >>"$(gs_log "kafka-$n")" 2>&1 &
    pids+=("$n:$!")
  done
  for d in "${pids[@]+"${pids[@]}"}"; do
    wait "${d#*:}" || { rc=1; gs_tail_log "kafka-${d%%:*}"; gs_say "kafka-storage format of node ${d%%:*} failed"; }
  done
  (( rc == 0 )) || gs_die "could not format the nodes' storage"
}

spawn_node() {
  local d; d="$(node_dir "$1")"
  GS_SERVICE="kafka-$1" gs_say "starting node $1 on $(node_addr "$1")"
  gs_spawn "kafka-$1" java -Xmx"$GS_KAFKA_HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
    -Dlog4j.configuration="file:$DIR/log4j.properties" -cp "$LIB/*" kafka.Kafka "$d/server.properties"
}

# wait_nodes TIMEOUT "N..." CMD...: run CMD until it succeeds; fail early when one of the nodes
# exited, after TIMEOUT seconds otherwise; on failure print the log tail of the node(s) concerned.
wait_nodes() {
  local timeout="$1" ids="$2"; shift 2
  local deadline=$((SECONDS + timeout)) out n
  while :; do
    if out="$("$@" 2>&1)"; then gs_say "healthy: $out"; return 0; fi
    for n in $ids; do
      if ! gs_running "kafka-$n"; then
        gs_say "node $n exited before the cluster was healthy (last check: ${out##*$'\n'})"
        gs_tail_log "kafka-$n"; return 1
      fi
    done
    if (( SECONDS >= deadline )); then
      gs_say "not healthy after ${timeout}s (last check: ${out##*$'\n'})"
      for n in $ids; do gs_tail_log "kafka-$n" 15; done
      return 1
    fi
    sleep 1
  done
}

cluster_start() {
  gs_ensure_venv
  local n down=()
  for n in "${NODE_IDS[@]}"; do if ! gs_running "kafka-$n"; then down+=("$n"); fi; done
  if (( ${#down[@]} == 0 )); then
    if gs_health "$GS_SERVICE" >/dev/null 2>&1; then gs_say "already running (${#NODES[@]} nodes)"; return 0; fi
    gs_say "running but not healthy: restarting every node"; cluster_stop
    down=("${NODE_IDS[@]}")
  fi
  svc_install
  render_nodes
  format_nodes "${down[@]}"
  # The controller quorum needs a majority of the voters: start every node, then wait for all.
  for n in "${down[@]}"; do spawn_node "$n"; done
  wait_nodes "$GS_RUNTIME_START_TIMEOUT" "${NODE_IDS[*]}" gs_health "$GS_SERVICE" || return 1
  ensure_topics
}

# Every node at once: stopped one after another, the last would wait for a controller quorum that
# is gone already.
cluster_stop() {
  local n pids=() rc=0
  for n in "${NODE_IDS[@]}"; do
    (GS_SERVICE="kafka-$n" gs_stop "kafka-$n" 60) & pids+=("$!")
  done
  for n in "${pids[@]}"; do wait "$n" || rc=1; done
  return "$rc"
}

# One line per node (pid, RSS, in the cluster metadata or not), then the round trip. Exit 0 when
# every node runs, is in the cluster and the round trip works; 3 when none runs; 1 otherwise.
cluster_status() {
  local n pid members="" running=0 rc=0 line out
  for n in "${NODE_IDS[@]}"; do if gs_running "kafka-$n"; then running=$((running + 1)); fi; done
  if (( running == 0 )); then gs_say "stopped (${#NODES[@]} nodes)"; return 3; fi
  if ! members="$(kafka_py members 2>&1)"; then members="?${members##*$'\n'}"; fi
  for n in "${NODE_IDS[@]}"; do
    pid="$(gs_pid "kafka-$n")"; line="node $n $(node_addr "$n"): "
    if [[ -z "$pid" ]]; then
      line+="stopped"; rc=1
    else
      line+="running (pid $pid, $(gs_rss_mb "$pid") MiB RSS), "
      if [[ "$members" == \?* ]]; then line+="cluster metadata unreadable (${members#\?})"; rc=1
      elif grep -qx "$n" <<<"$members"; then line+="in the cluster"
      else line+="NOT in the cluster"; rc=1
      fi
    fi
    gs_say "$line"
  done
  if out="$(gs_health "$GS_SERVICE" 2>&1)"; then gs_say "healthy: $out"
  else gs_say "NOT healthy: ${out##*$'\n'}"; rc=1
  fi
  return "$rc"
}

# node_arg VERB N: N must name a configured node.
node_arg() {
  (( ${#NODES[@]} )) || gs_die "$1: kafka.nodes is empty (one broker; use --profile cluster)"
  [[ "${2:-}" =~ ^[0-9]+$ ]] && (( $2 >= 1 && $2 <= ${#NODES[@]} )) \
    || gs_die "$1 needs a node number 1..${#NODES[@]} (got '${2:-}')"
}

node_start() {
  gs_ensure_venv
  if gs_running "kafka-$1"; then GS_SERVICE="kafka-$1" gs_say "already running"
  else
    svc_install; render_nodes "$1"; format_nodes "$1"; spawn_node "$1"
  fi
  wait_nodes "$GS_RUNTIME_START_TIMEOUT" "$1" kafka_py check-node "$1"
}

node_kill() {
  local pid; pid="$(gs_pid "kafka-$1")"
  GS_SERVICE="kafka-$1"
  if [[ -z "$pid" ]]; then gs_say "not running"; rm -f "$(gs_pidfile "kafka-$1")"; return 0; fi
  kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 10))
  while kill -0 "$pid" 2>/dev/null && (( SECONDS < deadline )); do sleep 0.2; done
  rm -f "$(gs_pidfile "kafka-$1")"
  gs_say "killed (SIGKILL to process group $pid)"
}

case "${1:-}" in
  stop-node) node_arg "$@"; GS_SERVICE="kafka-$2" gs_stop "kafka-$2" 60; exit ;;
  start-node) node_arg "$@"; node_start "$2"; exit ;;
  kill-node) node_arg "$@"; node_kill "$2"; exit ;;
  isolate-node|heal-node)  # a network partition of node N's address (python -m gaitstream.partition)
    node_arg "$@"; cd "$GS_ROOT" && exec "$GS_PY" -m gaitstream.partition "${1%-node}" kafka "$2" ;;
esac
if (( ${#NODES[@]} )); then
  svc_start() { cluster_start; }
  svc_stop() { cluster_stop; }
  svc_status() { cluster_status; }
fi

gs_main "$@"
