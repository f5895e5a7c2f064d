#!/usr/bin/env bash
# Scale benchmark (not a test): N ConfigurationSets + N EventDestinations
# with operator-owned SNS topics, applied at once on the test ground; measures
# time to Ready, AWS calls against the minimum, idle calls, a spec change and
# the operator's memory. Writes its section of docs/benchmarks.md.
#
#   N=200 SES_RPS=1000 RUNS=1 IDLE=10 SQS=0 tools/bench/scale.sh
#
# Builds the release binary, then runs tools/bench/scale.py inside
# tools/ground.sh (which stops the ground on exit; the script stops the
# operator it starts, and the operator also dies with the script).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
cargo build --release
python=$(tests/aws-emulator/setup.sh)
exec tools/ground.sh run -- "$python" tools/bench/scale.py
