#!/usr/bin/env bash
# Builds kubelet, kube-controller-manager, kube-scheduler, kube-proxy and
# the pause binary (./pause) from this Go module into a cache directory keyed by the
# hash of go.mod + go.sum + tools.go + pause/main.go + this script and
# ../lib.sh, and prints
# that directory. Same k8s.io/kubernetes version and ldflags as
# ../kube/build.sh (kube-apiserver); a second run returns at once.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tools/lib.sh
. "$here/../lib.sh"
cache_root=${SRO_CACHE:-$HOME/.cache/ses-reputation-operator}
key=$(cat "$here/go.mod" "$here/go.sum" "$here/tools.go" "$here/pause/main.go" "$here/build.sh" "$here/../lib.sh" | sha256sum | cut -c1-16)
out="$cache_root/kube-node/$key"
bins=(kubelet kube-controller-manager kube-scheduler kube-proxy pause)
built() { local b; for b in "${bins[@]}"; do [[ -x "$out/$b" ]] || return 1; done; }
if built; then
  echo "$out"
  exit 0
fi
mkdir -p "$cache_root/kube-node"
exec 9>"$cache_root/kube-node/.lock"
flock 9
if built; then
  echo "$out"
  exit 0
fi
# The version k8s.io/kubernetes is required at, in `require X v` or a block.
kube_version() { awk '$1 != "//" { for (i = 1; i < NF; i++) if ($i == "k8s.io/kubernetes") { print $(i + 1); exit } }' "$1"; }
api_version=$(kube_version "$here/../kube/go.mod")
k8s_version=$(kube_version "$here/go.mod")
if [[ "$api_version" != "$k8s_version" ]]; then
  echo "tools/kube-node/go.mod has k8s.io/kubernetes $k8s_version, tools/kube (kube-apiserver) $api_version: keep them equal" >&2
  exit 1
fi
rm -rf "$out.tmp"
mkdir -p "$out.tmp"
ldflags=$(kube_ldflags "$k8s_version")
cd "$here"
CGO_ENABLED=0 go build -mod=readonly -trimpath -ldflags "-s -w" -o "$out.tmp/pause" ./pause
for cmd in kube-scheduler kube-controller-manager kubelet kube-proxy; do
  echo ">> building $cmd $k8s_version (first run only, several minutes on 2 cores)" >&2
  s=$SECONDS
  CGO_ENABLED=0 go build -mod=readonly -trimpath -ldflags "$ldflags" -o "$out.tmp/$cmd" "k8s.io/kubernetes/cmd/$cmd"
  echo ">> built $cmd in $((SECONDS - s))s" >&2
done
rm -rf "$out" && mv "$out.tmp" "$out"
echo ">> node binaries cached in $out" >&2
echo "$out"
