#!/usr/bin/env bash
# Builds kube-apiserver and etcd from this Go module into a cache directory
# keyed by the hash of go.mod, go.sum, this script and ../lib.sh, and prints
# that directory.
# A second run with the same go.sum finds the binaries and returns at once.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tools/lib.sh
. "$here/../lib.sh"
cache_root=${SRO_CACHE:-$HOME/.cache/ses-reputation-operator}
key=$(cat "$here/go.mod" "$here/go.sum" "$here/build.sh" "$here/../lib.sh" | sha256sum | cut -c1-16)
out="$cache_root/kube/$key"
if [[ -x "$out/kube-apiserver" && -x "$out/etcd" ]]; then
  echo "$out"
  exit 0
fi
# Two grounds starting at once on a fresh machine: one builds, the other
# waits for it and reuses the result.
mkdir -p "$cache_root/kube"
exec 9>"$cache_root/kube/.lock"
flock 9
if [[ -x "$out/kube-apiserver" && -x "$out/etcd" ]]; then
  echo "$out"
  exit 0
fi
rm -rf "$out.tmp"
mkdir -p "$out.tmp"
k8s_version=$(awk '$1=="k8s.io/kubernetes" {print $2}' "$here/go.mod")
ldflags=$(kube_ldflags "$k8s_version")
cd "$here"
echo ">> building etcd (first run only, about 2 minutes)" >&2
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out.tmp/etcd" go.etcd.io/etcd/server/v3
echo ">> building kube-apiserver $k8s_version (first run only, 5-15 minutes on 2 cores)" >&2
CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out.tmp/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
rm -rf "$out" && mv "$out.tmp" "$out"
echo ">> kube binaries cached in $out" >&2
echo "$out"
