#!/usr/bin/env bash
# Installs helm from the Go module proxy into the cache and prints its path.
set -euo pipefail
version=${HELM_VERSION:-v3.22.0}
major=${version%%.*}
cache_root=${SRO_CACHE:-$HOME/.cache/ses-reputation-operator}
out="$cache_root/helm/$version"
if [[ ! -x "$out/helm" ]]; then
  echo ">> installing helm $version (first run only)" >&2
  GOBIN="$out" CGO_ENABLED=0 go install "helm.sh/helm/$major/cmd/helm@$version" >&2
fi
echo "$out/helm"
