#!/usr/bin/env bash
# Builds the kstatus CLI (tools/kstatus: sigs.k8s.io/cli-utils
# pkg/kstatus/status, what Flux and kpt compute) into the cache, keyed by
# the hash of its go.mod + go.sum + main.go, and prints the binary's path.
# A lock keeps concurrent runs (parallel tests) from building twice or
# seeing a half-written binary; later runs return at once.
set -euo pipefail
src=$(cd "$(dirname "$0")/kstatus" && pwd)
cache_root=${SRO_CACHE:-$HOME/.cache/ses-reputation-operator}
key=$(cat "$src/go.mod" "$src/go.sum" "$src/main.go" | sha256sum | cut -c1-16)
out="$cache_root/kstatus/$key"
if [[ -x "$out/kstatus" ]]; then
  echo "$out/kstatus"
  exit 0
fi
mkdir -p "$cache_root/kstatus"
exec 9>"$cache_root/kstatus/.lock"
flock 9
if [[ ! -x "$out/kstatus" ]]; then
  echo ">> building kstatus (first run only)" >&2
  tmp=$(mktemp -d "$cache_root/kstatus/.build.XXXXXX")
  (cd "$src" && CGO_ENABLED=0 go build -mod=readonly -trimpath -ldflags "-s -w" -o "$tmp/kstatus" .) >&2
  rm -rf "$out" && mv "$tmp" "$out"
fi
echo "$out/kstatus"
