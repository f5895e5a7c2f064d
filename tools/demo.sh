#!/usr/bin/env bash
# make demo: the operator end to end on the local test ground (a real
# kube-apiserver + etcd and the moto-based AWS emulator, see tools/ground.sh).
#
#   tools/demo.sh                  tell the story, then keep everything running until Ctrl-C
#   DEMO_EXIT=1 tools/demo.sh      check every step (non-zero exit if one fails), then stop
#   DEMO_REAL_CLUSTER=1 KUBECONFIG=... tools/demo.sh
#                                  only install the CRDs and apply deploy/examples/ to an
#                                  existing cluster (real AWS; no ground, no fake metrics)
#
# DEMO_NAMESPACE (default mail) and DEMO_TIMEOUT (seconds per step, default 90).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
ns=${DEMO_NAMESPACE:-mail}
timeout=${DEMO_TIMEOUT:-90}

if [[ -t 1 ]]; then bold=$'\e[1m' green=$'\e[32m' red=$'\e[31m' off=$'\e[0m'; else bold= green= red= off=; fi
header() { printf '\n%s== %s%s\n' "$bold" "$*" "$off"; }
say() { printf '%s\n' "$*"; }
fail() { printf '%sdemo: FAILED: %s%s\n' "$red" "$*" "$off" >&2; exit 1; }
# Show a command (quoting the arguments that need it), then run it.
show() {
  local a line='$'
  for a; do
    if [[ $a =~ ^[A-Za-z0-9_./:=@%+,{}-]+$ ]]; then line+=" $a"; else line+=" '$a'"; fi
  done
  printf '%s%s%s\n' "$bold" "$line" "$off"
  "$@"
}
# wait_for DESCRIPTION COMMAND...: poll COMMAND until it succeeds, or fail
# after $timeout seconds.
wait_for() {
  local what=$1 deadline=$((SECONDS + timeout))
  shift
  say "   waiting until $what ..."
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || fail "$what: not reached within ${timeout}s"
    sleep 0.5
  done
  say "   ${green}ok${off}: $what"
}

apply_examples() {
  kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  show kubectl apply -n "$ns" -f deploy/examples/
}

if [[ "${1:-}" != --story ]]; then
  if [[ -n "${DEMO_REAL_CLUSTER:-}" ]]; then
    [[ -n "${KUBECONFIG:-}" ]] || fail "DEMO_REAL_CLUSTER=1 needs KUBECONFIG pointing at the cluster"
    header "Real cluster mode ($(kubectl config current-context))"
    say "Only installing the CRDs and applying deploy/examples/ to namespace $ns:"
    say "no local ground, no AWS emulator, no fake metrics. The operator running in"
    say "that cluster (Helm chart) reconciles them against real AWS. The EventDestination"
    say "example subscribes arn:aws:sqs:us-east-1:123456789012:ses-feedback: edit it to your queue."
    ${CARGO:-cargo} build --quiet
    crds=$(target/debug/ses-reputation-operator crds | kubectl apply --server-side -o name -f -)
    show kubectl wait --for condition=Established --timeout 60s $crds
    apply_examples
    say "Watch them with: kubectl get ses -A"
    exit 0
  fi
  header "Building the operator (first run: several minutes)"
  ${CARGO:-cargo} build
  header "Starting the local control plane and AWS emulator (first run builds them: minutes)"
  export SRO_OPERATOR_LOG=$root/target/demo/operator.log
  exec tools/ground.sh run -- tools/with-operator.sh "$0" --story
fi

# ---- the story: runs inside the ground with the operator up ----
py=$(tests/aws-emulator/setup.sh)
aws_() { "$py" tools/demo_aws.py "$@"; }
sender=demo@example.com
cs_cond() { # NAME TYPE -> status/reason
  kubectl get sescs -n "$ns" "$1" -o jsonpath="{.status.conditions[?(@.type==\"$2\")].status}/{.status.conditions[?(@.type==\"$2\")].reason}"
}
cs_cond_is() { [[ $(cs_cond "$1" "$2") == $3 ]]; } # NAME TYPE STATUS/REASON-pattern
at_level() { # NAME LEVEL STATUS/REASON-of-BounceRateHealthy
  [[ $(kubectl get sescs -n "$ns" "$1" -o jsonpath='{.status.reputation.level}') == "$2" ]] &&
    cs_cond_is "$1" BounceRateHealthy "$3"
}
show_conditions() {
  show kubectl get sescs -n "$ns" "$1" -o jsonpath='{range .status.conditions[*]}{.type}={.status} ({.reason}) {.message}{"\n"}{end}'
}
sends() { aws_ send "$1" "$sender" success@simulator.amazonses.com >/dev/null; }
refuses() { # SET: SendEmail through SET fails with SendingPausedException
  local out
  if out=$(aws_ send "$1" "$sender" success@simulator.amazonses.com 2>&1); then return 1; fi
  [[ $out == *SendingPaused* ]]
}

say "Operator log: $SRO_OPERATOR_LOG"
say "Operator metrics: http://$SRO_METRICS_ADDR/metrics"

header "Step 1: apply deploy/examples/ and wait until everything is Ready"
say "The EventDestination subscribes the SQS queue ses-feedback to its topic; create the queue first:"
queue_url=$(aws_ queue ses-feedback)
say "   SQS CreateQueue ses-feedback -> $queue_url"
apply_examples
show kubectl wait --for=condition=Ready --timeout="${timeout}s" sesacct/default ||
  fail "SesAccount default is not Ready"
for kind in sescs sesed sesrp; do
  show kubectl wait -n "$ns" --for=condition=Ready --timeout="${timeout}s" "$kind" --all ||
    fail "not every $kind in $ns is Ready"
done
show kubectl get ses -A

header "Step 2: send mail through the 'transactional' set (SES v2 SendEmail on the emulator)"
aws_ identity "$sender"
say "SES v2 CreateEmailIdentity $sender (the sender must be verified), then SendEmail:"
for to in success@simulator.amazonses.com bounce@simulator.amazonses.com; do
  id=$(aws_ send transactional "$sender" "$to") || fail "SendEmail to $to failed"
  say "   SendEmail ConfigurationSetName=transactional To=$to -> MessageId $id"
done
say "SES publishes the Bounce to the operator-created SNS topic, which delivers it to the queue:"
aws_ bounces "$queue_url" "$timeout" || fail "the Bounce event did not reach the ses-feedback queue"

header "Step 3: raise Reputation.BounceRate of 'transactional' (policy: warning 2.5%, critical 5%)"
minutes_ago=30
for step in 0.01:Healthy:True/BelowWarning 0.03:Warning:False/AboveWarning 0.06:Critical:False/AboveCritical; do
  IFS=: read -r rate level cond <<<"$step"
  say ""
  say "CloudWatch PutMetricData AWS/SES Reputation.BounceRate=$rate (ses:configuration-set=transactional, ${minutes_ago} min ago)"
  aws_ bounce-rate transactional "$rate" "$minutes_ago"
  minutes_ago=$((minutes_ago - 10))
  wait_for "transactional is $level (BounceRateHealthy $cond)" at_level transactional "$level" "$cond"
  show kubectl get sescs -n "$ns"
done
wait_for "the policy paused sending (SendingEnabled False/PausedByPolicy)" \
  cs_cond_is transactional SendingEnabled False/PausedByPolicy
show_conditions transactional
wait_for "SES refuses mail through 'transactional' (SendingPausedException)" refuses transactional
wait_for "'marketing' keeps sending" sends marketing
show kubectl get sescs -n "$ns"

header "Step 4: resume 'transactional' once the cause is fixed (the documented command)"
show kubectl annotate sescs -n "$ns" transactional "ses.reputation.io/resume-at=$(date -u +%Y-%m-%dT%H:%M:%SZ)" --overwrite
wait_for "SendingEnabled is True again" cs_cond_is transactional SendingEnabled 'True/*'
wait_for "SES accepts mail through 'transactional' again" sends transactional
show_conditions transactional
show kubectl get sescs -n "$ns"

header "Step 5: a campaign with 10% bounces, paused within seconds by the live breaker"
say "The SesAccount streams SES events (spec.eventStream) to an operator-owned SNS topic and"
say "SQS queue; policy 'campaigns' (deploy/examples/campaign.yaml) has breaker {window: 15m,"
say "minimumSends: 100}. 300 mails through 'campaign', every 10th to bounce@simulator:"
show kubectl get sesacct default -o jsonpath='{.status.eventStream}{"\n"}'
aws_ spike campaign "$sender" 300 10
wait_for "the breaker paused 'campaign' (SendingEnabled False/PausedByPolicy)" \
  cs_cond_is campaign SendingEnabled False/PausedByPolicy
wait_for "SES refuses mail through 'campaign'" refuses campaign
show kubectl get sescs -n "$ns" campaign -o jsonpath='{.status.pause.reason}{"\n"}source: {.status.reputation.source}{"\n"}live: {.status.reputation.live}{"\n"}'
wait_for "'marketing' keeps sending" sends marketing
say "The Live bounce column comes from the event stream; Bounce/Complaint stay CloudWatch's:"
show kubectl get sescs -n "$ns"

if [[ -n "${DEMO_EXIT:-}" ]]; then
  header "${green}All steps passed${off}"
  exit 0
fi

header "Step 6: everything keeps running; try it yourself (Ctrl-C stops it all)"
cat <<EOF
  export KUBECONFIG=$KUBECONFIG
  kubectl get ses -A
  kubectl describe sescs -n $ns transactional

  AWS emulator: $AWS_ENDPOINT_URL (region us-east-1, access key testing / secret testing)
  export AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
  aws sesv2 get-configuration-set --configuration-set-name transactional
  $py -c 'import boto3; print(boto3.client("sesv2").list_configuration_sets())'
  $py tools/demo_aws.py bounce-rate transactional 0.08 1

  Operator log: $SRO_OPERATOR_LOG
EOF
sleep infinity &
sleeper=$!
trap 'kill "$sleeper" 2>/dev/null || true' EXIT
trap 'say ""; say "Stopping the operator, kube-apiserver, etcd and the AWS emulator ..."; exit 130' INT
trap 'exit 143' TERM
wait "$sleeper"
