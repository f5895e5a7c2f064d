#!/usr/bin/env bash
# Installs promtool from the Go module proxy into the cache and prints its
# path (like tools/helm.sh). Used to check the chart's PromQL.
set -euo pipefail
version=${PROMTOOL_VERSION:-v0.316.0}
cache_root=${SRO_CACHE:-$HOME/.cache/ses-reputation-operator}
out="$cache_root/promtool/$version"
if [[ ! -x "$out/promtool" ]]; then
  echo ">> installing promtool $version (first run only)" >&2
  GOBIN="$out" CGO_ENABLED=0 go install "github.com/prometheus/prometheus/cmd/promtool@$version" >&2
fi
echo "$out/promtool"
