#!/usr/bin/env bash
# The test ground: a real etcd + kube-apiserver and the moto-based AWS
# emulator on free loopback ports.
#
#   tools/ground.sh run -- CMD...   start, run CMD with the ground's env, stop
#   tools/ground.sh up              start, print the env, wait for Ctrl-C
#
# CMD sees KUBECONFIG, SRO_AWS_ENDPOINT, AWS_ENDPOINT_URL, AWS_REGION,
# AWS credentials for the emulator, HELM (v3), HELM4 and SRO_GROUND_DIR (which
# holds apiserver.pid: kill that PID and the apiserver restarts with the same
# flags and etcd). Everything started here is stopped on exit, failure,
# Ctrl-C or SIGTERM.
#
# SRO_GROUND_NODE=1 also starts a node (tools/node.sh: controller-manager,
# scheduler, containerd, kubelet) and waits for it to be Ready; CMD then also
# sees SRO_NODE_NAME, SRO_NODE_IP, SRO_NODE_CONTAINERD (containerd's socket)
# and SRO_NODE_PAUSE_IMAGE. Load images with `tools/node.sh import ARCHIVE`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=tools/lib.sh
. "$root/tools/lib.sh"
mode=${1:-}
shift || true
[[ "$mode" == run && "${1:-}" == -- ]] && shift
case "$mode" in run|up) ;; *) echo "usage: $0 run -- CMD... | up" >&2; exit 2 ;; esac

log() { echo ">> $*" >&2; }

kube_bin=$("$root/tools/kube/build.sh")
node=
[[ -n "${SRO_GROUND_NODE:-}" && "${SRO_GROUND_NODE}" != 0 ]] && node=1
[[ -z $node ]] || SRO_NODE_BIN=$("$root/tools/kube-node/build.sh")
# Without a node nothing creates ServiceAccounts, so their admission plugin
# is off. With one, the controller-manager does, and pods get their token;
# the node's name does not resolve: reach its kubelet (logs, exec) by IP.
api_node_flags=(--disable-admission-plugins ServiceAccount --advertise-address 127.0.0.1)
python=$("$root/tests/aws-emulator/setup.sh")
HELM=$("$root/tools/helm.sh")
# The chart supports Helm 3 and 4; the chart tests run both.
HELM4=$(HELM_VERSION=v4.3.1 "$root/tools/helm.sh")
export HELM HELM4

dir=$(mktemp -d "${TMPDIR:-/tmp}/sro-ground.XXXXXX")
# With a node, the apiserver still listens on 127.0.0.1 only, but advertises
# the node's bridge address, where tools/node.sh forwards to it: the
# `kubernetes` Endpoints then point where pods can connect, and the
# apiserver's self-signed certificate names that address.
[[ -z $node ]] || api_node_flags=("--kubelet-preferred-address-types=InternalIP,Hostname"
  --advertise-address "$(node_ip_of "$dir")")
pids=()
stop() {
  local rc=$?
  trap - EXIT INT TERM
  # Stop in reverse start order (apiserver before etcd), each given 10 s.
  local i pid
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    pid=${pids[i]}
    kill "$pid" 2>/dev/null || continue
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  # Log tails explain failures; Ctrl-C (130) is not one.
  if [[ $rc -ne 0 && $rc -ne 130 && -z "${SRO_KEEP_LOGS:-}" ]]; then
    for f in "$dir"/*.log; do [[ -f $f ]] && { echo "---- tail $f" >&2; tail -n 20 "$f" >&2; }; done
  fi
  [[ -n "${SRO_KEEP_LOGS:-}" ]] || rm -rf "$dir"
  exit "$rc"
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

read -r etcd_port peer_port api_port aws_port < <("$python" - <<'PY'
import socket
socks = [socket.socket() for _ in range(4)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
PY
)

log "starting etcd on 127.0.0.1:$etcd_port"
"$kube_bin/etcd" --name ground --data-dir "$dir/etcd" --unsafe-no-fsync \
  --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
  --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
  --initial-cluster "ground=http://127.0.0.1:$peer_port" --log-level warn >"$dir/etcd.log" 2>&1 &
pids+=($!)

log "starting AWS emulator on 127.0.0.1:$aws_port"
"$python" "$root/tests/aws-emulator/emulator.py" --host 127.0.0.1 --port "$aws_port" >"$dir/emulator.log" 2>&1 &
pids+=($!)

wait_for etcd 30 curl -sf "http://127.0.0.1:$etcd_port/health"

openssl genrsa -out "$dir/sa.key" 2048 2>/dev/null
openssl rsa -in "$dir/sa.key" -pubout -out "$dir/sa.pub" 2>/dev/null
token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
echo "$token,ground-admin,ground-admin,\"system:masters\"" >"$dir/tokens.csv"

log "starting kube-apiserver on 127.0.0.1:$api_port"
# Supervised: when the apiserver exits (the soak kills the PID in
# $dir/apiserver.pid to restart it), it comes back with the same flags and
# the same etcd, as a static pod would. SIGTERM to the loop stops both.
(
  child=
  trap '[[ -n $child ]] && kill "$child" 2>/dev/null; wait; exit 0' TERM
  while :; do
    "$kube_bin/kube-apiserver" --etcd-servers "http://127.0.0.1:$etcd_port" \
      --bind-address 127.0.0.1 --secure-port "$api_port" --cert-dir "$dir/certs" \
      --service-account-key-file "$dir/sa.pub" --service-account-signing-key-file "$dir/sa.key" \
      --service-account-issuer https://kubernetes.default.svc.cluster.local \
      --service-cluster-ip-range 10.0.0.0/24 --allow-privileged=true \
      --authorization-mode RBAC --token-auth-file "$dir/tokens.csv" \
      "${api_node_flags[@]}" >>"$dir/apiserver.log" 2>&1 &
    child=$!
    echo "$child" >"$dir/apiserver.pid"
    wait "$child" || true
    echo "---- kube-apiserver exited; restarting it" >>"$dir/apiserver.log"
    sleep 0.2
  done
) &
pids+=($!)

cat >"$dir/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: ground
  cluster:
    server: https://127.0.0.1:$api_port
    certificate-authority: $dir/certs/apiserver.crt
users:
- name: ground-admin
  user:
    token: $token
contexts:
- name: ground
  context: {cluster: ground, user: ground-admin, namespace: default}
current-context: ground
KC

api() { curl -sfk -H "Authorization: Bearer $token" "https://127.0.0.1:$api_port$1"; }
wait_for kube-apiserver 90 api /readyz
wait_for "namespace default" 30 api /api/v1/namespaces/default
wait_for "AWS emulator" 60 curl -sf "http://127.0.0.1:$aws_port/_emulator/faults"

export KUBECONFIG="$dir/kubeconfig"
export SRO_GROUND_DIR="$dir"
export SRO_AWS_ENDPOINT="http://127.0.0.1:$aws_port"
export AWS_ENDPOINT_URL="$SRO_AWS_ENDPOINT"
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
unset AWS_SESSION_TOKEN AWS_PROFILE
if [[ -n $node ]]; then
  log "starting the node (tools/node.sh)"
  SRO_NODE_BIN=$SRO_NODE_BIN SRO_NODE_FORWARD_PORTS="$api_port $aws_port" "$root/tools/node.sh" \
    >"$dir/node.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1800); do
    [[ -f $dir/node/ready ]] && break
    kill -0 "${pids[-1]}" 2>/dev/null || { log "tools/node.sh failed"; exit 1; }
    sleep 0.1
  done
  [[ -f $dir/node/ready ]] || { log "the node did not become Ready in 180s"; exit 1; }
  set -a
  # shellcheck disable=SC1091
  . "$dir/node/env"
  set +a
fi
log "ground ready: $(kubectl version -o json 2>/dev/null | "$python" -c 'import json,sys; print("kube-apiserver", json.load(sys.stdin)["serverVersion"]["gitVersion"])')"

if [[ "$mode" == up ]]; then
  cat <<ENV
export KUBECONFIG=$KUBECONFIG
export AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL SRO_AWS_ENDPOINT=$SRO_AWS_ENDPOINT
export AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
ENV
  log "press Ctrl-C to stop"
  while true; do sleep 3600 & wait $!; done
fi
"$@"
