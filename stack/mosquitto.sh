#!/usr/bin/env bash
# Mosquitto (Debian package) on loopback with users, ACL and persistence, for the sensor replay.
GS_SERVICE=mosquitto
GS_HELP="Runs mosquitto -c \$GS_RUNTIME_DIR/mosquitto/mosquitto.conf (rendered from stack/mosquitto/).
Config keys: mqtt.host, mqtt.port, mqtt.topic_prefix, mqtt.{bridge,replay}_{user,password},
mqtt.max_queued_messages, mqtt.max_inflight_messages. Data: var/mosquitto/data, log: var/log/mosquitto.log."
source "$(dirname "$0")/lib.sh"
DIR="$GS_RUNTIME_DIR/mosquitto"

svc_install() {
  if ! command -v mosquitto >/dev/null || ! command -v mosquitto_passwd >/dev/null; then
    gs_say "installing the Debian package mosquitto (first run only)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q mosquitto >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q mosquitto >/dev/null; } \
      || gs_die "apt-get install mosquitto failed"
  fi
  # The package may have started its own system broker on 1883: ours owns that port.
  if command -v service >/dev/null && service mosquitto status >/dev/null 2>&1; then service mosquitto stop >/dev/null 2>&1 || true; fi
}

render() {
  mkdir -p "$DIR/data"
  sed -e "s|@HOST@|$GS_MQTT_HOST|; s|@PORT@|$GS_MQTT_PORT|; s|@DIR@|$DIR|g; s|@LOG@|$(gs_log "$GS_SERVICE")|" \
      -e "s|@MAX_QUEUED@|$GS_MQTT_MAX_QUEUED_MESSAGES|; s|@MAX_INFLIGHT@|$GS_MQTT_MAX_INFLIGHT_MESSAGES|" \
      "$STACK_DIR/mosquitto/mosquitto.conf.tmpl" >"$DIR/mosquitto.conf"
  sed -e "s|@REPLAY_USER@|$GS_MQTT_REPLAY_USER|; s|@BRIDGE_USER@|$GS_MQTT_BRIDGE_USER|; s|@PREFIX@|$GS_MQTT_TOPIC_PREFIX|g" \
      "$STACK_DIR/mosquitto/acl.tmpl" >"$DIR/acl"
  # Passwords never on a command line (ps shows it to every user): printf (a shell builtin) writes
  # user:password lines into the mode-600 file, then mosquitto_passwd -U hashes them in place.
  local pw
  for pw in "$GS_MQTT_BRIDGE_PASSWORD" "$GS_MQTT_REPLAY_PASSWORD"; do
    [[ "$pw" != *$'\n'* ]] || gs_die "an MQTT password contains a newline"
  done
  : >"$DIR/passwd"; chmod 600 "$DIR/passwd" "$DIR/acl"
  printf '%s:%s\n' "$GS_MQTT_BRIDGE_USER" "$GS_MQTT_BRIDGE_PASSWORD" \
    "$GS_MQTT_REPLAY_USER" "$GS_MQTT_REPLAY_PASSWORD" >"$DIR/passwd"
  mosquitto_passwd -U "$DIR/passwd" || gs_die "mosquitto_passwd -U $DIR/passwd failed"
}

svc_start() {
  gs_ensure_venv
  if gs_running "$GS_SERVICE" && gs_health "$GS_SERVICE" >/dev/null 2>&1; then gs_say "already running"; return 0; fi
  # Outside the dev profile (runtime.profile) no placeholder MQTT password is accepted.
  (cd "$GS_ROOT" && "$GS_PY" -m gaitstream.secrecy mosquitto) || gs_die "refusing to start (see above)"
  svc_install
  render
  gs_spawn "$GS_SERVICE" mosquitto -c "$DIR/mosquitto.conf"
  gs_wait_healthy "$GS_SERVICE" "$GS_RUNTIME_START_TIMEOUT" gs_health "$GS_SERVICE"
}

svc_stop() { gs_stop "$GS_SERVICE" 15; }

gs_main "$@"
