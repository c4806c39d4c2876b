#!/usr/bin/env bash
# Create/refresh the project's interpreter ($GS_RUNTIME_DIR/venv) with gaitstream and its pinned
# dependencies installed (editable, with test extras). Idempotent: a stamp of setup.cfg skips pip.
set -euo pipefail
GS_SERVICE=venv
source "$(dirname "$0")/lib.sh"

stamp="$GS_VENV/.installed"
want="$(sha256sum "$GS_ROOT/setup.cfg" "$GS_ROOT/pyproject.toml" | sha256sum | cut -c1-16)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -x "$GS_PY" ]]; then exit 0; fi
base="$(command -v python3.11 || command -v python3)"
[[ -x "$GS_PY" ]] || { gs_say "creating $GS_VENV with $base"; "$base" -m venv "$GS_VENV"; }
gs_say "installing gaitstream and pinned dependencies (pip cache makes re-runs fast)"
"$GS_PY" -m pip install -q --upgrade pip >/dev/null
"$GS_PY" -m pip install -q -e "$GS_ROOT[test]"
echo "$want" >"$stamp"
gs_say "ready: $GS_PY"
