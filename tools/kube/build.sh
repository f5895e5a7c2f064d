#!/usr/bin/env bash
# Builds kube-apiserver and etcd from this Go module into a cache directory
# keyed by the hash of go.mod + go.sum, and prints that directory.
# A second run with the same go.sum finds the binaries and returns at once.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache_root=${SRO_CACHE:-$HOME/.cache/ses-reputation-operator}
key=$(cat "$here/go.mod" "$here/go.sum" "$here/build.sh" | sha256sum | cut -c1-16)
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
major=${k8s_version#v}; major=${major%%.*}
minor=${k8s_version#v*.}; minor=${minor%%.*}
pkg=k8s.io/component-base/version
ldflags="-s -w -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
cd "$here"
echo ">> building etcd (first run only, about 2 minutes)" >&2
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out.tmp/etcd" go.etcd.io/etcd/server/v3
echo ">> building kube-apiserver $k8s_version (first run only, 5-15 minutes on 2 cores)" >&2
CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out.tmp/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
rm -rf "$out" && mv "$out.tmp" "$out"
echo ">> kube binaries cached in $out" >&2
echo "$out"
