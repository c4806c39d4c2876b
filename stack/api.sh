#!/usr/bin/env bash
# The Litestar API and dashboard (gaitstream api, uvicorn) as a managed background process.
GS_SERVICE=api
GS_HELP="Runs var/venv/bin/gaitstream api on api.host:api.port. Config keys: [api], [cassandra],
[mongo], [data]. Log: var/log/api.log. Dashboard: http://api.host:api.port/
Supervised: restarted with backoff when it exits abnormally ([supervise])."
source "$(dirname "$0")/lib.sh"

svc_start() {
  gs_ensure_venv
  if gs_running "$GS_SERVICE"; then gs_say "already running"; return 0; fi
  gs_spawn_supervised "$GS_SERVICE" "$GS_VENV/bin/gaitstream" api
  gs_wait_healthy "$GS_SERVICE" "$GS_RUNTIME_START_TIMEOUT" gs_health "$GS_SERVICE"
}
svc_stop() { gs_stop "$GS_SERVICE" 20; }
svc_status() { gs_component_status "$GS_SERVICE"; }
gs_main "$@"
