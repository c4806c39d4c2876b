#!/usr/bin/env bash
# The Structured Streaming job (spark-submit.sh, local master by default) as a managed process.
GS_SERVICE=streaming
GS_HELP="Runs ./spark-submit.sh (options after 'start' go to it, e.g. start --master yarn).
Config keys: [spark], [streaming], [kafka], [hdfs], [cassandra]. Log: var/log/streaming.log.
Stop sends SIGTERM: the driver stops its queries cleanly (checkpoints kept).
Supervised: restarted from its checkpoint with backoff when it exits abnormally ([supervise])."
source "$(dirname "$0")/lib.sh"

svc_start() {
  gs_ensure_venv
  if gs_running "$GS_SERVICE"; then gs_say "already running"; return 0; fi
  gs_spawn_supervised "$GS_SERVICE" "$GS_ROOT/spark-submit.sh" "$@"
  gs_say "Spark UI: http://127.0.0.1:$GS_SPARK_UI_PORT"
  gs_wait_healthy "$GS_SERVICE" "$GS_RUNTIME_START_TIMEOUT" gs_health "$GS_SERVICE"
}
svc_stop() { gs_stop "$GS_SERVICE" 90; }
svc_status() { gs_component_status "$GS_SERVICE"; }
if [[ "${1:-}" == start ]]; then shift; svc_start "$@"; else gs_main "$@"; fi
