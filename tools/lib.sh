# Shell helpers the ground scripts share; sourced, not run.

# wait_for NAME SECONDS CMD...: runs CMD every 0.1 s until it succeeds; after
# SECONDS, logs (with the caller's log()) and fails.
wait_for() {
  local name=$1 secs=$2; shift 2
  for _ in $(seq $((secs * 10))); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  log "$name did not become ready in ${secs}s"; return 1
}

# kube_ldflags VERSION: the -ldflags that stamp a Kubernetes binary built
# from k8s.io/kubernetes VERSION as a release build would be (`version`
# reports it, kubelet registers it), stripped and reproducible.
kube_ldflags() {
  local version=$1 major minor pkg=k8s.io/component-base/version
  major=${version#v}; major=${major%%.*}
  minor=${version#v*.}; minor=${minor%%.*}
  printf '%s' "-s -w -X $pkg.gitVersion=$version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor" \
    " -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
}

# node_ip_of GROUND_DIR: the node's IP on its own bridge (tools/node.sh), in a
# /24 of 10.244.0.0/16 picked from the ground dir's name, so grounds running
# side by side rarely meet. ground.sh advertises the apiserver on it (its
# self-signed certificate then names it, for pods); node.sh puts it on the
# bridge.
node_ip_of() {
  local octet
  octet=$((16#$(printf '%s' "$1" | sha256sum | cut -c1-2) % 200 + 20))
  printf '10.244.%s.1' "$octet"
}
