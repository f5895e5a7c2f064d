#!/usr/bin/env bash
# A node for the test ground: kube-controller-manager, kube-scheduler, a
# containerd of its own, a kubelet registered with the ground's
# kube-apiserver as node "$SRO_NODE_NAME" (default sro-ground-node) and
# kube-proxy.
#
#   SRO_GROUND_NODE=1 tools/ground.sh run -- CMD...   how it is meant to run
#   tools/node.sh                  (from ground.sh) start, wait for Ready,
#                                  touch $SRO_GROUND_DIR/node/ready, run until
#                                  SIGTERM, then stop everything it started
#   tools/node.sh import ARCHIVE   load an OCI/docker archive into the node's
#                                  containerd (namespace k8s.io), for pods
#                                  with imagePullPolicy: Never
#   tools/node.sh clean            kill and unmount what a killed run left
#                                  (SRO_GROUND_DIR=the kept ground dir)
#
# It owns $SRO_GROUND_DIR/node and nothing outside it but: kube-proxy's
# iptables rules (removed with `kube-proxy --cleanup` on exit), a Linux bridge
# (sro-XXXXXX, named after the ground dir) carrying the pods' /24 and the
# node's IP (its gateway address: the kubelet refuses a loopback node IP), the
# shim sockets containerd puts under /run/containerd/s, and the cgroups runc
# makes for the pods (under /k8s.io, removed when empty). On exit it kills
# every container it ran (runc state lives under node/runc, not the system's),
# containerd and its shims, unmounts everything under node/, deletes the
# bridge and the shim sockets, so a second run starts clean. A system
# containerd, if any, is never touched: this one has its own --config, root,
# state and socket.
#
# Pods: pod networking works (CNI bridge + host-local from /usr/lib/cni;
# containerd adds loopback) and kube-proxy (iptables mode) routes ClusterIP
# Services; there is no cluster DNS. The apiserver and the emulator listen on
# 127.0.0.1; the ports in SRO_NODE_FORWARD_PORTS (ground.sh passes both) are
# forwarded from the node IP, port for port: the `kubernetes` Service leads
# there (the apiserver advertises the node IP), and a pod reaches the
# emulator at http://$SRO_NODE_IP:<its port>. kube-proxy's iptables chains
# are the machine's, not the ground's: run one node ground at a time.
#
# Needs (as root): containerd, runc, containernetworking-plugins (CNI in
# /usr/lib/cni) and buildah, installed with apt on first use; the node binaries
# come from tools/kube-node/build.sh (cached by content, like kube-apiserver).
# The sandbox ("pause") image is built here FROM scratch (no registry).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=tools/lib.sh
. "$root/tools/lib.sh"
dir=${SRO_GROUND_DIR:?run from tools/ground.sh (SRO_GROUND_NODE=1)}
n=$dir/node
sock=$n/containerd.sock
cache_root=${SRO_CACHE:-$HOME/.cache/ses-reputation-operator}
node_name=${SRO_NODE_NAME:-sro-ground-node}
pause_image=localhost/sro-ground/pause:1

log() { echo ">> node: $*" >&2; }

suffix=${dir##*.}
bridge=sro-${suffix:0:11}

# Every container this node ran (runc state under node/runc, not the
# system's), the shims (each names our socket on its command line), mounts
# under node/ (rootfs overlays, pod volumes, netns; deepest first), the bridge.
clean() {
  local ns id m pid i shim_ns='' shim_id=''
  local -a shims argv
  for ns in "$n"/runc/*/; do
    [[ -d $ns ]] || continue
    for id in $(runc --root "$ns" list -q 2>/dev/null); do
      runc --root "$ns" kill -a "$id" KILL 2>/dev/null || true
      runc --root "$ns" delete -f "$id" 2>/dev/null || true
    done
  done
  mapfile -t shims < <(pgrep -f -- "containerd-shim-runc-v2 .*-address $sock( |$)" || true)
  for pid in "${shims[@]}"; do
    # Its socket, /run/containerd/s/sha256(address/namespace/id), would stay.
    mapfile -t -d '' argv <"/proc/$pid/cmdline" || continue
    for ((i = 0; i < ${#argv[@]} - 1; i++)); do
      case ${argv[i]} in -namespace) shim_ns=${argv[i + 1]} ;; -id) shim_id=${argv[i + 1]} ;; esac
    done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "/run/containerd/s/$(printf '%s' "$sock/$shim_ns/$shim_id" | sha256sum | cut -c1-64)"
  done
  awk -v p="$n/" 'index($2, p) == 1 { print $2 }' /proc/self/mounts | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done
  ip link del "$bridge" 2>/dev/null || true
  # kube-proxy's iptables chains (machine-wide: one node ground at a time).
  local proxy=${bin:-${SRO_NODE_BIN:-}}/kube-proxy
  [[ ! -x $proxy ]] || "$proxy" --cleanup >/dev/null 2>&1 || true
  # containerd's cgroup parent (/k8s.io), once its children are gone.
  rmdir /sys/fs/cgroup/*/k8s.io 2>/dev/null || true
}

if [[ ${1:-} == clean ]]; then
  clean
  exit 0
fi
if [[ ${1:-} == import ]]; then
  archive=${2:?usage: tools/node.sh import ARCHIVE}
  exec ctr --address "$sock" -n k8s.io images import "$archive"
fi

apt_install() {
  log "installing $* with apt (first run only)"
  if ! env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1; then
    apt-get update -qq >/dev/null
    env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  fi
}
[[ $EUID -eq 0 ]] || { echo "tools/node.sh: needs root (containerd, runc, bridge)" >&2; exit 1; }
if ! command -v containerd >/dev/null || ! command -v runc >/dev/null; then apt_install containerd runc; fi
[[ -x /usr/lib/cni/bridge ]] || apt_install containernetworking-plugins
command -v buildah >/dev/null || apt_install buildah

bin=${SRO_NODE_BIN:-$("$root/tools/kube-node/build.sh")}

# The pause image, built FROM scratch once per pause binary and cached next
# to it. buildah uses the same private storage and lock as tools/image.sh.
pause_archive=$bin/pause.oci.tar
if [[ ! -s $pause_archive ]]; then
  store=$cache_root/buildah
  mkdir -p "$store"
  (
    flock 9
    [[ -s $pause_archive ]] && exit 0
    printf '[storage]\ndriver = "vfs"\ngraphroot = "%s/root"\nrunroot = "%s/run"\n' "$store" "$store" >"$store/storage.conf"
    echo '{"default": [{"type": "insecureAcceptAnything"}]}' >"$store/policy.json"
    export CONTAINERS_STORAGE_CONF=$store/storage.conf
    bah() { buildah --storage-driver vfs --root "$store/root" --runroot "$store/run" "$@"; }
    c=$(bah from --quiet --name "sro-pause-$$" scratch)
    trap 'bah rm "$c" >/dev/null 2>&1 || true; bah rmi --force "$pause_image" >/dev/null 2>&1 || true' EXIT
    bah copy --quiet --chown 0:0 "$c" "$bin/pause" /pause
    bah config --user 65535:65535 --entrypoint '["/pause"]' "$c"
    bah commit --quiet --format oci --timestamp 0 --signature-policy "$store/policy.json" "$c" "$pause_image" >/dev/null
    rm -f "$pause_archive.tmp"
    bah push --quiet --signature-policy "$store/policy.json" "$pause_image" "oci-archive:$pause_archive.tmp:$pause_image"
    mv "$pause_archive.tmp" "$pause_archive"
  ) 9>"$store/.lock"
fi

mkdir -p "$n"/{cni,ipam,containerd,kubelet,pod-logs,cm,scheduler}
read -r cm_port sched_port kubelet_port healthz_port proxy_healthz_port proxy_metrics_port < <(python3 - <<'PY'
import socket
socks = [socket.socket() for _ in range(6)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
PY
)

# Pod network: a bridge of this ground's own, made here so that its gateway
# address exists before the kubelet starts and can be the node's IP (the
# kubelet refuses 127.0.0.1). Pods get a /24 from host-local, no masquerade
# by the bridge: pods reach each other and the node IP, not 127.0.0.1, so
# the apiserver's and the emulator's ports are forwarded from the node IP
# (tools/forward.py), where the `kubernetes` Service leads.
node_ip=$(node_ip_of "$dir")
subnet=${node_ip%.1}.0/24

pids=()
stop() {
  local rc=$?
  # Ignored, not reset: Ctrl-C or timeout(1) signal the whole process group,
  # then ground.sh's stop sends TERM again; neither may cut this short.
  trap '' INT TERM
  trap - EXIT
  local i pid
  # Kubelet, scheduler, controller-manager, then the containers, containerd.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    pid=${pids[i]}
    if [[ $pid == containerd ]]; then
      clean
      pid=$containerd_pid
    fi
    kill "$pid" 2>/dev/null || continue
    for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  clean
  exit "$rc"
}
trap stop EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

ip link add "$bridge" type bridge
ip addr add "$node_ip/24" dev "$bridge"
ip link set "$bridge" up
forwards=()
for port in ${SRO_NODE_FORWARD_PORTS:-}; do forwards+=("$node_ip:$port=127.0.0.1:$port"); done
if [[ ${#forwards[@]} -gt 0 ]]; then
  log "forwarding ${forwards[*]}"
  python3 "$root/tools/forward.py" "${forwards[@]}" >"$dir/forward.log" 2>&1 &
  pids+=($!)
fi
cat >"$n/cni/10-sro-ground.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "sro-ground",
  "plugins": [
    {
      "type": "bridge", "bridge": "$bridge", "isGateway": true, "ipMasq": false, "hairpinMode": true,
      "ipam": {"type": "host-local", "dataDir": "$n/ipam", "ranges": [[{"subnet": "$subnet", "gateway": "$node_ip"}]],
               "routes": [{"dst": "0.0.0.0/0"}]}
    }
  ]
}
EOF

cat >"$n/containerd.toml" <<EOF
version = 2
root = "$n/containerd/root"
state = "$n/containerd/state"
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "$sock"
[ttrpc]
  address = "$sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$pause_image"
  # This sandbox may not lower oom_score_adj: without it runc fails with
  # "can't get final child's PID from pipe: EOF".
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_cdi = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        # runc (not crun: crun refuses this host's hybrid cgroups), with its
        # state here so that stop() finds every container.
        BinaryName = "$(command -v runc)"
        Root = "$n/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$n/cni"
EOF

log "starting containerd on $sock"
containerd --config "$n/containerd.toml" --root "$n/containerd/root" --state "$n/containerd/state" \
  --address "$sock" >"$dir/containerd.log" 2>&1 &
containerd_pid=$!
pids+=(containerd)

wait_for containerd 30 ctr --address "$sock" version
ctr --address "$sock" -n k8s.io images import "$pause_archive" >/dev/null

# The ground's admin token (system:masters) for every component: this is a
# throwaway test ground on loopback, not a cluster to copy.
kc=$dir/kubeconfig
log "starting kube-controller-manager on 127.0.0.1:$cm_port"
"$bin/kube-controller-manager" --kubeconfig "$kc" \
  --authentication-kubeconfig "$kc" --authorization-kubeconfig "$kc" \
  --bind-address 127.0.0.1 --secure-port "$cm_port" --cert-dir "$n/cm" \
  --service-account-private-key-file "$dir/sa.key" --root-ca-file "$dir/certs/apiserver.crt" \
  --use-service-account-credentials --leader-elect=false \
  --service-cluster-ip-range 10.0.0.0/24 >"$dir/controller-manager.log" 2>&1 &
pids+=($!)

log "starting kube-scheduler on 127.0.0.1:$sched_port"
"$bin/kube-scheduler" --kubeconfig "$kc" \
  --authentication-kubeconfig "$kc" --authorization-kubeconfig "$kc" \
  --bind-address 127.0.0.1 --secure-port "$sched_port" --cert-dir "$n/scheduler" \
  --leader-elect=false >"$dir/scheduler.log" 2>&1 &
pids+=($!)

cat >"$n/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $node_ip
port: $kubelet_port
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $healthz_port
# Anyone who reaches this throwaway node may use its API (logs, exec).
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
containerRuntimeEndpoint: unix://$sock
# What this sandbox (cgroup v1, no systemd, may not lower oom_score_adj) allows.
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupsPerQOS: false
enforceNodeAllocatable: []
failSwapOn: false
localStorageCapacityIsolation: false
# The host's disk and memory are not this node's to guard.
evictionHard: {memory.available: "1Mi", nodefs.available: "1%", imagefs.available: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
podLogsDir: $n/pod-logs
resolvConf: /etc/resolv.conf
clusterDomain: cluster.local
serializeImagePulls: false
nodeStatusUpdateFrequency: 4s
EOF
log "starting kubelet $node_name on $node_ip:$kubelet_port"
"$bin/kubelet" --config "$n/kubelet.yaml" --kubeconfig "$kc" --root-dir "$n/kubelet" \
  --cert-dir "$n/kubelet/pki" --hostname-override "$node_name" --node-ip "$node_ip" \
  >"$dir/kubelet.log" 2>&1 &
pids+=($!)

node_ready() {
  [[ $(kubectl --kubeconfig "$kc" get node "$node_name" \
    -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null) == True ]]
}
wait_for "node $node_name" 120 node_ready
log "node $node_name Ready after ${SECONDS}s"

# kube-proxy (iptables), so that ClusterIP Services route, the `kubernetes`
# one included (to the advertised node IP, where the apiserver's port is
# forwarded). Every Service is masqueraded: the pods share one bridge with
# no br_netfilter, so a reply from a backend pod on it would otherwise skip
# the host and miss the DNAT's reverse. NodePorts only on the pod network,
# which keeps route_localnet and the host's own addresses untouched; no
# conntrack sysctls (the host's are not ours).
cat >"$n/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $kc}
hostnameOverride: $node_name
bindAddress: $node_ip
healthzBindAddress: 127.0.0.1:$proxy_healthz_port
metricsBindAddress: 127.0.0.1:$proxy_metrics_port
mode: iptables
clusterCIDR: 10.244.0.0/16
nodePortAddresses: ["${node_ip}/32"]
iptables: {masqueradeAll: true}
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
EOF
log "starting kube-proxy (iptables) on $node_name"
"$bin/kube-proxy" --config "$n/kube-proxy.yaml" >"$dir/kube-proxy.log" 2>&1 &
pids+=($!)
proxy_synced() {
  # The kubernetes Service's rules are in: a ClusterIP routes.
  iptables -t nat -S KUBE-SERVICES 2>/dev/null | grep -q 'default/kubernetes:https'
}
wait_for kube-proxy 60 proxy_synced
cat >"$n/env" <<EOF
SRO_NODE_NAME=$node_name
SRO_NODE_IP=$node_ip
SRO_NODE_CONTAINERD=$sock
SRO_NODE_PAUSE_IMAGE=$pause_image
EOF
touch "$n/ready"
while :; do sleep 3600 & wait $!; done
