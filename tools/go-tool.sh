#!/usr/bin/env bash
# Builds the Go helper tools/NAME (its own module) into the cache, keyed by
# the hash of its go.mod + go.sum + main.go, and prints the binary's path.
# A lock keeps concurrent runs (parallel tests) from building twice or
# seeing a half-written binary; later runs return at once.
# Usage: tools/go-tool.sh NAME
set -euo pipefail
name=${1:?usage: tools/go-tool.sh NAME}
src=$(cd "$(dirname "$0")/$name" && pwd)
cache_root=${SRO_CACHE:-$HOME/.cache/ses-reputation-operator}
key=$(cat "$src/go.mod" "$src/go.sum" "$src/main.go" | sha256sum | cut -c1-16)
out="$cache_root/$name/$key"
if [[ -x "$out/$name" ]]; then
  echo "$out/$name"
  exit 0
fi
mkdir -p "$cache_root/$name"
exec 9>"$cache_root/$name/.lock"
flock 9
if [[ ! -x "$out/$name" ]]; then
  echo ">> building $name (first run only)" >&2
  tmp=$(mktemp -d "$cache_root/$name/.build.XXXXXX")
  (cd "$src" && CGO_ENABLED=0 go build -mod=readonly -trimpath -ldflags "-s -w" -o "$tmp/$name" .) >&2
  rm -rf "$out" && mv "$tmp" "$out"
fi
echo "$out/$name"
