#!/usr/bin/env bash
# The MQTT → Kafka bridge (gaitstream bridge) as managed background processes: bridge.instances of
# them (the cluster profile runs 2 in one MQTT shared subscription, bridge.shared_group).
GS_SERVICE=bridge
GS_HELP="Runs var/venv/bin/gaitstream bridge, bridge.instances times. Config keys: [mqtt], [kafka],
[bridge] (client_id, shared_group, instances, stats_file, stats_interval). Instance 1 is 'bridge'
(client id and stats file as configured); instance i > 1 is 'bridge-i' (client id <client_id>-i,
stats file <stats_file stem>-i.json). Log: \$GS_RUNTIME_DIR/log/bridge[-i].log. Needs mosquitto and
kafka. Supervised: restarted with backoff when it exits abnormally ([supervise]).
Also: kill-node I (kill -9 instance I with its supervisor, for fault tests; start brings it back)."
source "$(dirname "$0")/lib.sh"

# instance_name I / instance_env I: the process name and the GAITSTREAM_* overrides of instance I.
instance_name() { if (( $1 > 1 )); then echo "bridge-$1"; else echo bridge; fi; }
instance_env() {
  if (( $1 > 1 )); then
    export GAITSTREAM_BRIDGE_CLIENT_ID="$GS_BRIDGE_CLIENT_ID-$1"
    export GAITSTREAM_BRIDGE_STATS_FILE="${GS_BRIDGE_STATS_FILE%.json}-$1.json"
  fi
}

start_instance() {
  local i="$1" name; name="$(instance_name "$i")"
  (
    instance_env "$i"
    GS_SERVICE="$name"
    if gs_running "$name"; then gs_say "already running"; exit 0; fi
    rm -f "${GAITSTREAM_BRIDGE_STATS_FILE:-$GS_BRIDGE_STATS_FILE}"  # a stale heartbeat must not pass the health check
    gs_spawn_supervised "$name" "$GS_VENV/bin/gaitstream" bridge
    gs_wait_healthy "$name" "$GS_RUNTIME_START_TIMEOUT" gs_health bridge
  )
}

svc_start() {
  gs_ensure_venv
  if (( GS_BRIDGE_INSTANCES > 1 )) && [[ -z "$GS_BRIDGE_SHARED_GROUP" ]]; then
    gs_die "bridge.instances = $GS_BRIDGE_INSTANCES needs bridge.shared_group (each bridge would get every message)"
  fi
  local i rc=0
  for ((i = 1; i <= GS_BRIDGE_INSTANCES; i++)); do start_instance "$i" || rc=1; done
  return "$rc"
}

svc_stop() {
  # every instance that runs, whatever bridge.instances says now
  local f name stopped=0
  for f in "$GS_RUN_DIR"/bridge.pid "$GS_RUN_DIR"/bridge-*.pid; do
    [[ -e "$f" ]] || continue
    name="$(basename "$f" .pid)"
    GS_SERVICE="$name" gs_stop "$name" 45
    stopped=1
  done
  (( stopped )) || gs_say "not running"
}

svc_status() {
  local i rc=0 code
  for ((i = 1; i <= GS_BRIDGE_INSTANCES; i++)); do
    if (( i == 1 )); then
      code=0; gs_component_status bridge || code=$?
    else
      code=0; (instance_env "$i"; GS_SERVICE="bridge-$i"; gs_status "bridge-$i") || code=$?
    fi
    (( code == 0 )) || rc="$code"
  done
  return "$rc"
}

kill_instance() {
  local i="${1:?kill-node needs an instance number}" name pid
  name="$(instance_name "$i")"; pid="$(gs_pid "$name")"
  [[ -n "$pid" ]] || gs_die "$name is not running"
  # The supervisor leads the session; the bridge runs in its own process group inside it.
  kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid"
  pkill -KILL -s "$pid" 2>/dev/null || true
  rm -f "$(gs_pidfile "$name")"
  GS_SERVICE="$name" gs_say "killed (kill -9, pid $pid and its process group)"
}

case "${1:-}" in
  kill-node) shift; kill_instance "$@" ;;
  *) gs_main "$@" ;;
esac
