#!/usr/bin/env bash
# Builds tools/argocd-health (Argo CD's health-script runtime: gopher-lua,
# the object as `obj`) into the cache, keyed by the hash of its go.mod +
# go.sum + main.go, and prints the binary's path.
# A lock keeps concurrent runs (parallel tests) from building twice or
# seeing a half-written binary; later runs return at once.
set -euo pipefail
src=$(cd "$(dirname "$0")/argocd-health" && pwd)
cache_root=${SRO_CACHE:-$HOME/.cache/ses-reputation-operator}
key=$(cat "$src/go.mod" "$src/go.sum" "$src/main.go" | sha256sum | cut -c1-16)
out="$cache_root/argocd-health/$key"
if [[ -x "$out/argocd-health" ]]; then
  echo "$out/argocd-health"
  exit 0
fi
mkdir -p "$cache_root/argocd-health"
exec 9>"$cache_root/argocd-health/.lock"
flock 9
if [[ ! -x "$out/argocd-health" ]]; then
  echo ">> building argocd-health (first run only)" >&2
  tmp=$(mktemp -d "$cache_root/argocd-health/.build.XXXXXX")
  (cd "$src" && CGO_ENABLED=0 go build -mod=readonly -trimpath -ldflags "-s -w" -o "$tmp/argocd-health" .) >&2
  rm -rf "$out" && mv "$tmp" "$out"
fi
echo "$out/argocd-health"
