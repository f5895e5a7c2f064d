#!/usr/bin/env bash
# Inside the test ground (tools/ground.sh run -- tools/with-operator.sh CMD...):
# install the CRDs, run the operator (debug build) in the background against
# the ground's kube-apiserver and AWS emulator, wait until it is ready, run
# CMD, then stop the operator. Used by `make demo` and `make readme-test`.
#
# CMD sees SRO_OPERATOR_LOG (the operator's log file) and SRO_METRICS_ADDR.
# SRO_OPERATOR_LOG may be set to choose the log file (default
# target/operator.log). The operator watches every namespace.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/target/debug/ses-reputation-operator"
: "${KUBECONFIG:?run me inside tools/ground.sh run -- ...}"
export SRO_OPERATOR_LOG=${SRO_OPERATOR_LOG:-$root/target/operator.log}
mkdir -p "$(dirname "$SRO_OPERATOR_LOG")"

log() { echo ">> $*" >&2; }

log "installing the CRDs"
crds=$("$bin" crds | kubectl apply --server-side -o name -f -)
kubectl wait --for condition=Established --timeout 60s $crds >/dev/null

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export SRO_METRICS_ADDR=127.0.0.1:$port

operator=
stop_operator() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n "$operator" ]] && kill -0 "$operator" 2>/dev/null; then
    kill "$operator" 2>/dev/null || true
    for _ in $(seq 300); do kill -0 "$operator" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$operator" 2>/dev/null || true
    wait "$operator" 2>/dev/null || true
  fi
  if [[ $rc -ne 0 && $rc -ne 130 && -f "$SRO_OPERATOR_LOG" ]]; then
    echo "---- last lines of the operator log $SRO_OPERATOR_LOG" >&2
    tail -n 30 "$SRO_OPERATOR_LOG" >&2
  fi
  exit "$rc"
}
trap stop_operator EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log "starting the operator (log: $SRO_OPERATOR_LOG, metrics: http://$SRO_METRICS_ADDR/metrics)"
"$bin" run --leader-election=false --metrics-addr "$SRO_METRICS_ADDR" \
  --rate-interval-seconds 2 --ses-calls-per-second 5 >"$SRO_OPERATOR_LOG" 2>&1 &
operator=$!
for _ in $(seq 300); do
  curl -sf "http://$SRO_METRICS_ADDR/readyz" >/dev/null 2>&1 && break
  kill -0 "$operator" 2>/dev/null || { log "the operator exited at start"; exit 1; }
  sleep 0.1
done
curl -sf "http://$SRO_METRICS_ADDR/readyz" >/dev/null || { log "the operator was not ready within 30s"; exit 1; }

"$@"
