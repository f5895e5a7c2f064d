#!/usr/bin/env bash
# Scale benchmark (not a test) on the test ground: selectable scenarios,
# each printing a Markdown section and replacing its own section of
# docs/benchmarks.md (parameters: the docstring of tools/bench/scale/__init__.py).
#
#   SCENARIO=steady N=1000 tools/bench/scale.sh     # or: make bench-scale SCENARIO=steady N=1000
#   SCENARIO=throttled|shared|spec-latency|recovery|all (comma-separated lists too), RUNS=3
#   BENCH_DOC=/tmp/x.md writes the sections elsewhere (smoke tests);
#   SKIP_BUILD=1 uses target/release as it is (BENCH_BIN=path: another binary)
#
# Builds the release binary, then runs tools/bench/scale.py (a shim for the
# package tools/bench/scale/) inside tools/ground.sh (which stops the ground
# on exit; the script stops the operator it starts, and the operator also
# dies with the script).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
[[ -n "${SKIP_BUILD:-}" ]] || cargo build --release
python=$(tests/aws-emulator/setup.sh)
exec tools/ground.sh run -- "$python" tools/bench/scale.py
