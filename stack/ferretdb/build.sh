#!/usr/bin/env bash
# Build the FerretDB binary from its Go module (Go module proxy only) into the shared cache.
# Usage: stack/ferretdb/build.sh VERSION OUT_BINARY
# `go install ...@version` yields a binary that panics at start (the module lacks the generated
# build/version/version.txt), so copy the module out of the read-only module cache, write that
# file, and `go build ./cmd/ferretdb` (no build tags needed for the SQLite handler).
set -euo pipefail
version="$1" out="$2"
[[ "$version" == v* ]] || { echo "FerretDB version must look like vX.Y.Z, got '$version'" >&2; exit 2; }
mkdir -p "$(dirname "$out")"
exec 9>"$out.lock"
flock 9                                     # another clone may be building the same version
[[ -x "$out" ]] && exit 0                   # ... and may just have finished
export GOFLAGS=-buildvcs=false GOTOOLCHAIN=local
work="$(mktemp -d "$(dirname "$out")/build.XXXXXX")"
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
cd "$work"
dir="$(go mod download -json "github.com/FerretDB/FerretDB@$version" \
  | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
[[ -d "$dir" ]] || { echo "go mod download did not yield a module folder" >&2; exit 1; }
cp -r "$dir" src && chmod -R u+w src
cd src
printf '%s\n' "$version" >build/version/version.txt
printf 'gaitstream\n' >build/version/package.txt
go build -trimpath -ldflags='-s -w' -o "$work/ferretdb" ./cmd/ferretdb
"$work/ferretdb" --version >/dev/null     # the version.txt panic shows up here, not later
mv -f "$work/ferretdb" "$out"
