#!/usr/bin/env bash
# Kafka, single node in KRaft mode (broker + controller in one JVM), jars from Maven Central.
GS_SERVICE=kafka
GS_HELP="Runs java kafka.Kafka \$GS_RUNTIME_DIR/kafka/server.properties (rendered from stack/kafka/).
Jars: org.apache.kafka:kafka_2.13:\$kafka.version + reload4j, resolved by Maven into
\$GS_RUNTIME_CACHE_DIR/kafka-<hash>/lib. Config keys: kafka.host, kafka.port, kafka.controller_port,
kafka.version, kafka.heap, kafka.partitions, kafka.samples_topic, kafka.dead_letter_topic.
Data: var/kafka/data (cluster id in var/kafka/cluster.id, formatted on first start),
log: var/log/kafka.log. Topics are not auto-created: start creates the samples and dead-letter topics."
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

gs_main "$@"
