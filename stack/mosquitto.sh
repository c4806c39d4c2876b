#!/usr/bin/env bash
# Mosquitto (Debian package) on loopback with users, ACL and persistence, for the sensor replay.
GS_SERVICE=mosquitto
GS_HELP="Runs mosquitto -c \$GS_RUNTIME_DIR/mosquitto/mosquitto.conf (rendered from stack/mosquitto/):
a TLS listener (mqtt.tls_port, client certificates from the local CA in mqtt.tls_dir, created on
first start) and a plain loopback listener (mqtt.port, 0 = none). Config keys: mqtt.*.
Data: \$GS_RUNTIME_DIR/mosquitto/data, log: \$GS_RUNTIME_DIR/log/mosquitto.log."
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
  local plain="# no plain listener (mqtt.port = 0)"
  if [[ "$GS_MQTT_PORT" != 0 ]]; then
    # user name + password, loopback only whatever mqtt.host says
    plain="listener $GS_MQTT_PORT 127.0.0.1"
  fi
  sed -e "s|@HOST@|$GS_MQTT_HOST|; s|@TLS_PORT@|$GS_MQTT_TLS_PORT|; s|@TLS_DIR@|$GS_MQTT_TLS_DIR|g" \
      -e "s|@PLAIN_LISTENER@|$plain|; s|@DIR@|$DIR|g; s|@LOG@|$(gs_log "$GS_SERVICE")|" \
      -e "s|@AUTOSAVE@|$GS_MQTT_AUTOSAVE_INTERVAL_SECONDS|" \
      -e "s|@MAX_QUEUED@|$GS_MQTT_MAX_QUEUED_MESSAGES|; s|@MAX_INFLIGHT@|$GS_MQTT_MAX_INFLIGHT_MESSAGES|" \
      "$STACK_DIR/mosquitto/mosquitto.conf.tmpl" >"$DIR/mosquitto.conf"
  # The replayer account may write every subject's topics: dev profile only (tests, benches).
  local replay_acl="# no all-subjects publisher outside the dev profile"
  if [[ "$GS_RUNTIME_PROFILE" == dev ]]; then
    replay_acl="user $GS_MQTT_REPLAY_USER\ntopic write $GS_MQTT_TOPIC_PREFIX/#"
  fi
  local device_topic="$GS_MQTT_TOPIC_PREFIX" i
  for ((i = 0; i < GS_MQTT_ACL_NAMESPACE_LEVELS; i++)); do device_topic+="/+"; done
  device_topic+="/+/%u/#"
  sed -e "s|@DEVICE_TOPIC@|$device_topic|; s|@REPLAY_ACL@|$replay_acl|; s|@BRIDGE_USER@|$GS_MQTT_BRIDGE_USER|; s|@PREFIX@|$GS_MQTT_TOPIC_PREFIX|g" \
      "$STACK_DIR/mosquitto/acl.tmpl" >"$DIR/acl"
  # Passwords never on a command line (ps shows it to every user): printf (a shell builtin) writes
  # user:password lines into the mode-600 file, then mosquitto_passwd -U hashes them in place.
  local pw
  for pw in "$GS_MQTT_BRIDGE_PASSWORD" "$GS_MQTT_REPLAY_PASSWORD"; do
    [[ "$pw" != *$'\n'* ]] || gs_die "an MQTT password contains a newline"
  done
  : >"$DIR/passwd"; chmod 600 "$DIR/passwd" "$DIR/acl"
  printf '%s:%s\n' "$GS_MQTT_BRIDGE_USER" "$GS_MQTT_BRIDGE_PASSWORD" >"$DIR/passwd"
  if [[ "$GS_RUNTIME_PROFILE" == dev ]]; then
    printf '%s:%s\n' "$GS_MQTT_REPLAY_USER" "$GS_MQTT_REPLAY_PASSWORD" >>"$DIR/passwd"
  fi
  mosquitto_passwd -U "$DIR/passwd" || gs_die "mosquitto_passwd -U $DIR/passwd failed"
}

svc_start() {
  gs_ensure_venv
  if gs_running "$GS_SERVICE" && gs_health "$GS_SERVICE" >/dev/null 2>&1; then gs_say "already running"; return 0; fi
  # Outside the dev profile (runtime.profile) no placeholder MQTT password is accepted.
  (cd "$GS_ROOT" && "$GS_PY" -m gaitstream.secrecy mosquitto) || gs_die "refusing to start (see above)"
  svc_install
  # The local CA, the broker's certificate and the services' client certificates (created once).
  (cd "$GS_ROOT" && "$GS_PY" -m gaitstream.pki broker) || gs_die "could not create the MQTT certificates"
  render
  gs_spawn "$GS_SERVICE" mosquitto -c "$DIR/mosquitto.conf"
  gs_wait_healthy "$GS_SERVICE" "$GS_RUNTIME_START_TIMEOUT" gs_health "$GS_SERVICE"
}

svc_stop() { gs_stop "$GS_SERVICE" 15; }

gs_main "$@"
