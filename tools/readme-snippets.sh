#!/usr/bin/env bash
# make readme-test: run every README.md code block whose opening fence is
# exactly ```sh runnable, in order, in one bash with `set -euo pipefail`,
# on the local test ground with the CRDs installed, the operator running and
# a fresh namespace as kubectl's current namespace (also in $NS). Snippets
# run from the repository root with the ground's KUBECONFIG and AWS
# emulator environment. A failing snippet is printed with its README line.
#
#   tools/readme-snippets.sh [FILE]     (default README.md)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
readme=${README:-${1:-README.md}}
export README=$readme

if [[ "${SRO_README_INSIDE:-}" != 1 ]]; then
  ${CARGO:-cargo} build
  export SRO_README_INSIDE=1 SRO_OPERATOR_LOG=$root/target/readme-snippets/operator.log
  exec tools/ground.sh run -- tools/with-operator.sh "$0"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/sro-readme.XXXXXX")
trap 'rm -rf "$work"' EXIT

# One file per snippet (snippet-N.sh) and its README line (snippet-N.line).
# A fence may be indented (a block inside a list item); that indent is
# stripped from the snippet's lines.
awk -v dir="$work" '
  in_block && $0 ~ "^" indent "```[[:space:]]*$" { in_block = 0; close(file); next }
  in_block { sub("^" indent, ""); print > file; next }
  /^ *```sh runnable$/ {
    n++; in_block = 1; indent = $0; sub(/```.*/, "", indent)
    file = dir "/snippet-" n ".sh"; printf "" > file
    print NR + 1 > (dir "/snippet-" n ".line"); close(dir "/snippet-" n ".line")
  }
  END { if (in_block) { print "unterminated ```sh runnable block" > "/dev/stderr"; exit 1 } }
' "$readme"
count=$(find "$work" -name 'snippet-*.sh' | wc -l)
((count > 0)) || { echo "readme-snippets: no \`\`\`sh runnable blocks in $readme" >&2; exit 1; }

NS=readme-$(date +%s)-$$
kubectl create namespace "$NS" >/dev/null
kubectl config set-context --current --namespace "$NS" >/dev/null
export NS
# helm as the README uses it (tools/ground.sh exports $HELM).
[[ -n "${HELM:-}" ]] && export PATH="$(dirname "$HELM"):$PATH"

# The script that runs them all, in one bash.
{
  echo 'set -euo pipefail'
  echo "trap 'rc=\$?; if ((rc != 0)); then echo; echo \"readme-snippets: FAILED (exit \$rc): snippet \$snippet ($README line \$(cat $work/snippet-\$snippet.line)):\"; sed \"s/^/    /\" $work/snippet-\$snippet.sh; fi >&2' EXIT"
  for i in $(seq "$count"); do
    echo "snippet=$i"
    echo "echo \">> snippet $i/$count ($README line $(cat "$work/snippet-$i.line"))\" >&2"
    cat "$work/snippet-$i.sh"
  done
} >"$work/all.sh"

echo ">> running $count runnable snippet(s) of $readme in namespace $NS" >&2
bash "$work/all.sh"
echo ">> all $count README snippet(s) passed" >&2
