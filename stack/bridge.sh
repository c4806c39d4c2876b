#!/usr/bin/env bash
# The MQTT → Kafka bridge (gaitstream bridge) as a managed background process.
GS_SERVICE=bridge
GS_HELP="Runs var/venv/bin/gaitstream bridge. Config keys: [mqtt], [kafka], [bridge]
(client_id, stats_file, stats_interval). Log: var/log/bridge.log. Needs mosquitto and kafka.
Supervised: restarted with backoff when it exits abnormally ([supervise])."
source "$(dirname "$0")/lib.sh"

svc_start() {
  gs_ensure_venv
  if gs_running "$GS_SERVICE"; then gs_say "already running"; return 0; fi
  rm -f "$GS_BRIDGE_STATS_FILE"  # a stale heartbeat must not pass the health check
  gs_spawn_supervised "$GS_SERVICE" "$GS_VENV/bin/gaitstream" bridge
  gs_wait_healthy "$GS_SERVICE" "$GS_RUNTIME_START_TIMEOUT" gs_health "$GS_SERVICE"
}
svc_stop() { gs_stop "$GS_SERVICE" 45; }
svc_status() { gs_component_status "$GS_SERVICE"; }
gs_main "$@"
