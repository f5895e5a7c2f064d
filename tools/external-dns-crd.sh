#!/usr/bin/env bash
# Fetches external-dns's own DNSEndpoint CRD from its Go module (through the
# Go module proxy) into the cache and prints the YAML file's path. Only the
# module zip is needed: the CRD is a file in it, nothing is built (the
# module may require a newer Go than the one installed).
set -euo pipefail
version=${EXTERNAL_DNS_VERSION:-v0.23.0}
cache_root=${SRO_CACHE:-$HOME/.cache/ses-reputation-operator}
out="$cache_root/external-dns/$version/dnsendpoints.externaldns.k8s.io.yaml"
file="config/crd/standard/dnsendpoints.externaldns.k8s.io.yaml"
if [[ ! -s "$out" ]]; then
  echo ">> fetching the DNSEndpoint CRD of external-dns $version (first run only)" >&2
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && go mod init sro-external-dns >/dev/null 2>&1)
  # `go mod download` exits non-zero when the module needs a newer Go, but
  # it has fetched and verified the zip by then; -json names it.
  json=$(cd "$work" && GOFLAGS=-mod=mod go mod download -json "sigs.k8s.io/external-dns@$version" || true)
  zip=$(printf '%s' "$json" | sed -n 's/^[[:space:]]*"Zip": "\(.*\)",$/\1/p')
  if [[ -z "$zip" || ! -s "$zip" ]]; then
    echo "external-dns-crd: could not download sigs.k8s.io/external-dns@$version: $json" >&2
    exit 1
  fi
  mkdir -p "$(dirname "$out")"
  unzip -p "$zip" "sigs.k8s.io/external-dns@$version/$file" > "$out.tmp"
  grep -q "kind: DNSEndpoint" "$out.tmp" || { echo "external-dns-crd: $file is not the DNSEndpoint CRD" >&2; exit 1; }
  mv "$out.tmp" "$out"
fi
echo "$out"
