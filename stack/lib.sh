# shellcheck shell=bash
# Shared helpers for the stack/ service scripts. Source it; do not run it.
#
# Every service keeps its data under $GS_RUNTIME_DIR/<service>/, its log in
# $GS_RUNTIME_DIR/log/<service>.log and its pid in $GS_RUNTIME_DIR/run/<service>.pid.
# Values come from conf/gaitstream.toml (+ GAITSTREAM_* overrides) via gaitstream.config.
set -euo pipefail

STACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
GS_ROOT="$(cd "$STACK_DIR/.." && pwd)"
export JAVA_HOME="${JAVA_HOME:-/usr/lib/jvm/java-17-openjdk-amd64}"

_gs_bootstrap_python() {
  # Any Python 3.11 can read the config (stdlib only); prefer the venv's (runtime.venv_dir's
  # default) once it exists.
  if [[ -x "$GS_ROOT/var/venv/bin/python" ]]; then echo "$GS_ROOT/var/venv/bin/python"; else command -v python3; fi
}
# --profile NAME, accepted by every stack/ script (and taken out of its arguments): "cluster" runs
# conf/templates/cluster-local.toml (3 Cassandra, 3 Kafka, 2 DataNodes, 2 NodeManagers, 2 bridges on
# 127.0.0.1-3), its random secrets generated on first use into its mode-600 runtime.secrets_file.
_gs_args=()
while (( $# )); do
  case "$1" in
    --profile) GS_PROFILE="${2:?--profile needs a name (cluster)}"; shift 2 ;;
    --profile=*) GS_PROFILE="${1#*=}"; shift ;;
    *) _gs_args+=("$1"); shift ;;
  esac
done
set -- "${_gs_args[@]+"${_gs_args[@]}"}"
case "${GS_PROFILE:-}" in
  "") ;;
  cluster)
    export GAITSTREAM_CONFIG="$GS_ROOT/conf/templates/cluster-local.toml"
    (cd "$GS_ROOT" && PYTHONPATH="$GS_ROOT" "$(_gs_bootstrap_python)" -m gaitstream.secrecy generate \
      "$GAITSTREAM_CONFIG" "$GS_ROOT/var/cluster/secrets.toml") >&2 ;;
  *) echo "unknown profile '$GS_PROFILE' (known: cluster)" >&2; exit 2 ;;
esac
export GS_PROFILE="${GS_PROFILE:-}"
eval "$(cd "$GS_ROOT" && PYTHONPATH="$GS_ROOT" "$(_gs_bootstrap_python)" -m gaitstream.config --shell)"

GS_LOG_DIR="$GS_RUNTIME_DIR/log"
GS_RUN_DIR="$GS_RUNTIME_DIR/run"
# One venv for every runtime folder (runtime.venv_dir): the tests' var/test shares the demo's var/venv.
GS_VENV="$GS_RUNTIME_VENV_DIR"
GS_PY="$GS_VENV/bin/python"
mkdir -p "$GS_LOG_DIR" "$GS_RUN_DIR" "$GS_RUNTIME_CACHE_DIR"

gs_say() { printf '[%s] %s\n' "${GS_SERVICE:-stack}" "$*"; }
gs_die() { printf '[%s] ERROR: %s\n' "${GS_SERVICE:-stack}" "$*" >&2; exit 1; }

gs_log() { echo "$GS_LOG_DIR/$1.log"; }
gs_pidfile() { echo "$GS_RUN_DIR/$1.pid"; }

# gs_pid NAME: print the live pid of NAME, or nothing.
gs_pid() {
  local f; f="$(gs_pidfile "$1")"
  [[ -f "$f" ]] || return 0
  local pid; pid="$(cat "$f")"
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then echo "$pid"; fi
}

gs_running() { [[ -n "$(gs_pid "$1")" ]]; }

# gs_spawn NAME CMD...: start CMD in its own session (so stop can signal the whole group),
# stdout+stderr appended to the service log, pid recorded.
gs_spawn() {
  local name="$1"; shift
  local log; log="$(gs_log "$name")"
  printf '\n===== %s start: %s\n' "$(date -Is)" "$*" >>"$log"
  setsid "$@" >>"$log" 2>&1 < /dev/null &
  echo $! >"$(gs_pidfile "$name")"
}

# gs_spawn_supervised NAME CMD...: gs_spawn under gaitstream.supervise (when supervise.enabled):
# CMD is restarted with backoff when it exits abnormally, never after a stop; restarts are logged
# here and counted in $GS_SUPERVISE_STATUS_DIR/NAME-supervisor.json. The pid file holds the
# supervisor's pid, so gs_stop's SIGTERM reaches it, and it forwards the signal to CMD once.
gs_spawn_supervised() {
  local name="$1"; shift
  if [[ "$GS_SUPERVISE_ENABLED" == 1 ]]; then
    rm -f "$GS_SUPERVISE_STATUS_DIR/$name-supervisor.json"
    gs_spawn "$name" "$GS_PY" -m gaitstream.supervise --name "$name" --log "$(gs_log "$name")" -- "$@"
  else
    gs_spawn "$name" "$@"
  fi
}

# gs_component_status NAME: gs_status plus what the pipeline's own process reports (supervisor
# restarts, the streaming job's queries); non-zero when it is down, unhealthy or stale. Not running:
# 3 (as gs_status), or 1 when it died (its supervisor gave up or was killed).
gs_component_status() {
  local rc=0
  gs_status "$1" || rc=$?
  if (( rc == 3 )); then
    (cd "$GS_ROOT" && "$GS_PY" -m gaitstream.pipeline_status "$1" --not-running) || rc=1
    return "$rc"
  fi
  (cd "$GS_ROOT" && "$GS_PY" -m gaitstream.pipeline_status "$1") || { (( rc )) || rc=1; }
  return "$rc"
}

gs_tail_log() {
  local log; log="$(gs_log "$1")"
  echo "----- last lines of $log -----" >&2
  tail -n "${2:-40}" "$log" >&2 2>/dev/null || true
  echo "-----" >&2
}

# gs_wait_healthy NAME TIMEOUT CMD...: run CMD until it succeeds; fail early if the process
# died, fail after TIMEOUT seconds; on failure print the log tail.
gs_wait_healthy() {
  local name="$1" timeout="$2"; shift 2
  local deadline=$((SECONDS + timeout)) out
  while :; do
    if out="$("$@" 2>&1)"; then gs_say "healthy: $out"; return 0; fi
    if ! gs_running "$name"; then
      gs_say "process exited before it was healthy (last check: ${out##*$'\n'})"
      gs_tail_log "$name"; return 1
    fi
    if (( SECONDS >= deadline )); then
      gs_say "not healthy after ${timeout}s (last check: ${out##*$'\n'})"
      gs_tail_log "$name"; return 1
    fi
    sleep 1
  done
}

# gs_health SERVICE: the Python health check of one service (gaitstream.health.<service>).
gs_health() { (cd "$GS_ROOT" && "$GS_PY" -m gaitstream.health "$1"); }

# gs_already_up: true when this service runs and is healthy; one that runs but is not healthy is
# stopped first, so a start never spawns a second copy over the pid file.
gs_already_up() {
  gs_running "$GS_SERVICE" || return 1
  if gs_health "$GS_SERVICE" >/dev/null 2>&1; then gs_say "already running"; return 0; fi
  gs_say "running but not healthy: restarting it"; svc_stop; return 1
}

# gs_stop NAME [GRACE]: SIGTERM the process group, SIGKILL after GRACE seconds.
gs_stop() {
  local name="$1" grace="${2:-30}" pid
  pid="$(gs_pid "$name")"
  if [[ -z "$pid" ]]; then gs_say "not running"; rm -f "$(gs_pidfile "$name")"; return 0; fi
  gs_say "stopping (pid $pid)"
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + grace))
  while kill -0 "$pid" 2>/dev/null && (( SECONDS < deadline )); do sleep 0.5; done
  if kill -0 "$pid" 2>/dev/null; then
    gs_say "still running after ${grace}s: SIGKILL"
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  fi
  # Children that escaped the group are still in the session: end them too.
  pkill -KILL -s "$pid" 2>/dev/null || true
  rm -f "$(gs_pidfile "$name")"
  gs_say "stopped"
}

# gs_rss_mb PID: resident memory (MiB) of the whole session PID leads (the service and its children).
gs_rss_mb() { ps -o rss= -s "$1" 2>/dev/null | awk '{kb += $1} END {printf "%d", kb / 1024}'; }

# gs_memory_report: the resident memory of every process this runtime folder started (pid files),
# one line each and the total: what the stack plus the pipeline hold.
gs_memory_report() {
  local f name pid mb total=0 n=0 lines=""
  for f in "$GS_RUN_DIR"/*.pid; do
    [[ -e "$f" ]] || continue
    name="$(basename "$f" .pid)"; pid="$(gs_pid "$name")"
    [[ -n "$pid" ]] || continue
    mb="$(gs_rss_mb "$pid")"; total=$((total + mb)); n=$((n + 1))
    lines+="$(printf '  %-14s %6d MiB' "$name" "$mb")"$'\n'
  done
  (( n )) || return 0
  GS_SERVICE=memory gs_say "resident memory of $n processes under $GS_RUNTIME_DIR:"
  printf '%s' "$lines"
  GS_SERVICE=memory gs_say "total $total MiB ($(awk -v t="$total" 'BEGIN {printf "%.1f", t / 1024}') GiB)"
}

gs_status() {
  local name="$1" pid out; pid="$(gs_pid "$name")"
  if [[ -z "$pid" ]]; then gs_say "stopped"; return 3; fi
  local mem; mem="$(gs_rss_mb "$pid") MiB RSS"
  if out="$(gs_health "$name" 2>&1)"; then gs_say "running (pid $pid, $mem), healthy: $out"; return 0; fi
  gs_say "running (pid $pid, $mem) but NOT healthy: ${out##*$'\n'}"; return 1
}

# gs_ensure_venv: the project's interpreter with the package installed (re-run when setup.cfg changes).
gs_ensure_venv() { "$STACK_DIR/venv.sh"; }

# gs_maven_lib NAME POM [MVN_ARGS...]: resolve POM's dependencies into a cached lib folder keyed
# by the pom's content and the arguments; prints the folder. Maven's own cache is ~/.m2.
gs_maven_lib() {
  local name="$1" pom="$2"; shift 2
  local key; key="$( (cat "$pom"; echo "$*") | sha256sum | cut -c1-12)"
  local dir="$GS_RUNTIME_CACHE_DIR/$name-$key"
  if [[ ! -f "$dir/.complete" ]]; then
    # The cache is shared (every clone, the tests' runtime folder and the demo's): one resolver at
    # a time, and whoever waited finds the folder complete.
    local lock_fd
    exec {lock_fd}>"$dir.lock"
    flock "$lock_fd"
    if [[ ! -f "$dir/.complete" ]]; then
      echo "[$name] resolving jars with Maven into $dir (first run only)" >&2
      rm -rf "$dir"; mkdir -p "$dir/lib"
      local mlog="$GS_LOG_DIR/$name-maven.log"
      if ! mvn -B -q -f "$pom" "$@" dependency:copy-dependencies \
          -DoutputDirectory="$dir/lib" -DincludeScope=runtime >"$mlog" 2>&1; then
        echo "[$name] Maven failed; tail of $mlog:" >&2; tail -n 30 "$mlog" >&2
        exec {lock_fd}>&-; return 1
      fi
      touch "$dir/.complete"
    fi
    exec {lock_fd}>&-
  fi
  echo "$dir"
}

# gs_main VERB: dispatch start/stop/status/restart to the service's functions.
gs_main() {
  local verb="${1:-}"
  case "$verb" in
    start) svc_start ;;
    stop) svc_stop ;;
    status) if declare -F svc_status >/dev/null; then svc_status; else gs_status "$GS_SERVICE"; fi ;;
    restart) svc_stop; svc_start ;;
    -h|--help|help|"") echo "usage: $0 {start|stop|status|restart}"; echo "$GS_HELP"; [[ -n "$verb" ]] ;;
    *) echo "usage: $0 {start|stop|status|restart}" >&2; exit 2 ;;
  esac
}
