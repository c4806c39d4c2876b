#!/usr/bin/env bash
# FerretDB v1 (MongoDB wire protocol on SQLite) for the API's run history; built from Go sources.
GS_SERVICE=ferretdb
GS_HELP="Runs ferretdb --handler=sqlite on mongo.host:mongo.port, built once from the Go module
github.com/FerretDB/FerretDB@mongo.ferretdb_version (stack/ferretdb/build.sh) into
\$GS_RUNTIME_CACHE_DIR/ferretdb-<version>/ferretdb. Config keys: mongo.host, mongo.port,
mongo.ferretdb_version, runtime.cache_dir. Data (SQLite files): var/ferretdb/data,
state: var/ferretdb/state, log: var/log/ferretdb.log."
source "$(dirname "$0")/lib.sh"
DIR="$GS_RUNTIME_DIR/ferretdb"
BIN="$GS_RUNTIME_CACHE_DIR/ferretdb-$GS_MONGO_FERRETDB_VERSION/ferretdb"

svc_install() {
  [[ -x "$BIN" ]] && return 0
  command -v go >/dev/null || gs_die "Go is needed to build FerretDB (go not on PATH)"
  gs_say "building FerretDB $GS_MONGO_FERRETDB_VERSION with $(go version | cut -d' ' -f3) (first run only, a few minutes)"
  local blog="$GS_LOG_DIR/ferretdb-build.log" t0=$SECONDS
  if ! "$STACK_DIR/ferretdb/build.sh" "$GS_MONGO_FERRETDB_VERSION" "$BIN" >"$blog" 2>&1; then
    gs_say "build failed; tail of $blog:"; tail -n 30 "$blog" >&2; gs_die "FerretDB build failed"
  fi
  gs_say "built $BIN in $((SECONDS - t0))s"
}

svc_start() {
  gs_ensure_venv
  if gs_already_up; then return 0; fi
  svc_install
  mkdir -p "$DIR/data" "$DIR/state"
  # A mongo.uri with user:password (the cluster profile): FerretDB's SCRAM authentication, that user
  # set up in mongo.database on first start; the password reaches it through the environment only.
  local -a auth=() creds=()
  mapfile -t creds < <(cd "$GS_ROOT" && "$GS_PY" -m gaitstream.secrecy mongo-user)
  if (( ${#creds[@]} == 2 )); then
    auth=(--test-enable-new-auth --setup-database="$GS_MONGO_DATABASE")
    export FERRETDB_SETUP_USERNAME="${creds[0]}" FERRETDB_SETUP_PASSWORD="${creds[1]}"
  fi
  gs_spawn "$GS_SERVICE" "$BIN" \
    --handler=sqlite --sqlite-url="file:$DIR/data/" \
    --listen-addr="$GS_MONGO_HOST:$GS_MONGO_PORT" --state-dir="$DIR/state" \
    --telemetry=disable --debug-addr=- --log-level=info "${auth[@]+"${auth[@]}"}"
  unset FERRETDB_SETUP_USERNAME FERRETDB_SETUP_PASSWORD
  gs_wait_healthy "$GS_SERVICE" "$GS_RUNTIME_START_TIMEOUT" gs_health "$GS_SERVICE"
}

svc_stop() { gs_stop "$GS_SERVICE" 20; }

gs_main "$@"
