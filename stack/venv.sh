#!/usr/bin/env bash
# Create/refresh the project's interpreter (runtime.venv_dir, var/venv, shared by every runtime
# folder) with gaitstream and its pinned dependencies installed (editable, with test extras).
# Idempotent: a stamp of setup.cfg skips pip; a lock keeps two stacks starting at once from
# installing into it together.
set -euo pipefail
GS_SERVICE=venv
source "$(dirname "$0")/lib.sh"

stamp="$GS_VENV/.installed"
want="$(sha256sum "$GS_ROOT/setup.cfg" "$GS_ROOT/pyproject.toml" | sha256sum | cut -c1-16)"
current() { [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -x "$GS_PY" ]]; }
if current; then exit 0; fi
mkdir -p "$(dirname "$GS_VENV")"
exec 9>"$GS_VENV.lock"
flock 9
if current; then exit 0; fi  # another start just installed it
base="$(command -v python3.11 || command -v python3)"
[[ -x "$GS_PY" ]] || { gs_say "creating $GS_VENV with $base"; "$base" -m venv "$GS_VENV"; }
gs_say "installing gaitstream and pinned dependencies (pip cache makes re-runs fast)"
"$GS_PY" -m pip install -q --upgrade pip >/dev/null
"$GS_PY" -m pip install -q -e "$GS_ROOT[test]"
echo "$want" >"$stamp"
gs_say "ready: $GS_PY"
