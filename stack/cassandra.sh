#!/usr/bin/env bash
# Cassandra 5.0 single node (the pipeline's feature/result store), run from Maven Central jars.
GS_SERVICE=cassandra
GS_HELP="Runs org.apache.cassandra:cassandra-all (CassandraDaemon, foreground JVM) as one local node.
Config keys: [cassandra] host, port (CQL), storage_port, version, heap, heap_initial, max_direct_memory,
cluster_name; [runtime] dir, cache_dir, start_timeout.
Jars: resolved once by Maven into \$GS_RUNTIME_CACHE_DIR/cassandra-<hash>/lib.
Config rendered from stack/cassandra/{cassandra.yaml,logback.xml,jvm.options} into
\$GS_RUNTIME_DIR/cassandra/conf; data, commit log, hints, caches under \$GS_RUNTIME_DIR/cassandra;
log in \$GS_RUNTIME_DIR/log/cassandra.log."
source "$(dirname "$0")/lib.sh"

CASS_HOME="$GS_RUNTIME_DIR/cassandra"
CASS_CONF="$CASS_HOME/conf"
CASS_TEMPLATES="$STACK_DIR/cassandra"

svc_install() {
  CASS_LIB="$(gs_maven_lib cassandra "$CASS_TEMPLATES/pom.xml" -Dcassandra.version="$GS_CASSANDRA_VERSION")/lib"
  [[ -f "$CASS_LIB/cassandra-all-$GS_CASSANDRA_VERSION.jar" ]] \
    || gs_die "cassandra-all-$GS_CASSANDRA_VERSION.jar missing from $CASS_LIB"
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

svc_start() {
  gs_ensure_venv
  if gs_running $GS_SERVICE && gs_health $GS_SERVICE >/dev/null 2>&1; then gs_say "already running"; return 0; fi
  if gs_running $GS_SERVICE; then
    # Alive but not answering yet (e.g. a start still in progress): wait for it, do not start twice.
    gs_say "process running, waiting for it to become healthy"
    gs_wait_healthy $GS_SERVICE "$GS_RUNTIME_START_TIMEOUT" gs_health $GS_SERVICE; return
  fi
  svc_install
  local jamm; jamm="$(ls "$CASS_LIB"/jamm-*.jar | head -1)"
  [[ -f "$jamm" ]] || gs_die "jamm agent jar not found in $CASS_LIB"
  local -a opts
  mapfile -t opts < <(grep -v -e '^[[:space:]]*#' -e '^[[:space:]]*$' "$CASS_TEMPLATES/jvm.options")
  opts+=(
    "-Xms$GS_CASSANDRA_HEAP_INITIAL" "-Xmx$GS_CASSANDRA_HEAP"
    "-XX:MaxDirectMemorySize=$GS_CASSANDRA_MAX_DIRECT_MEMORY"
    "-javaagent:$jamm"
    "-Dcassandra.config=file://$CASS_CONF/cassandra.yaml"
    "-Dcassandra-foreground=true"
    "-Dcassandra.storagedir=$CASS_HOME"
    "-Dcassandra.logdir=$CASS_HOME/logs"
    "-Dcassandra.triggers_dir=$CASS_HOME/triggers"
    "-Dlogback.configurationFile=file://$CASS_CONF/logback.xml"
    "-XX:ErrorFile=$CASS_HOME/logs/hs_err_%p.log"
  )
  gs_say "starting Cassandra $GS_CASSANDRA_VERSION on $GS_CASSANDRA_HOST:$GS_CASSANDRA_PORT (heap $GS_CASSANDRA_HEAP_INITIAL..$GS_CASSANDRA_HEAP)"
  # Working directory = the data folder, so nothing the JVM drops lands in the caller's cwd.
  cd "$CASS_HOME"
  gs_spawn $GS_SERVICE "$JAVA_HOME/bin/java" "${opts[@]}" -cp "$CASS_LIB/*" \
    org.apache.cassandra.service.CassandraDaemon
  gs_wait_healthy $GS_SERVICE "$GS_RUNTIME_START_TIMEOUT" gs_health $GS_SERVICE
}

# SIGTERM runs Cassandra's shutdown hook (drain: flush memtables, close the commit log); a drain
# of a small node takes seconds, 60 s of grace before SIGKILL.
svc_stop() { gs_stop $GS_SERVICE 60; }

gs_main "$@"
