#!/usr/bin/env bash
# The previous release of the operator, for the upgrade test: built from a
# git worktree of $SRO_PREVIOUS_RELEASE (default: the commit the Faults
# issue started from) once, then cached by commit under
# $SRO_CACHE/previous-release/<commit>/ with the CRDs of that commit.
# Prints that directory (holding `ses-reputation-operator` and `crds.yaml`).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
commit=$(git -C "$root" rev-parse "${SRO_PREVIOUS_RELEASE:-4de1a6db459a24702b1e297ed4d3c2da5bc17dea}^{commit}")
out=${SRO_CACHE:-$HOME/.cache/ses-reputation-operator}/previous-release/$commit
if [[ -x $out/ses-reputation-operator && -f $out/crds.yaml ]]; then
  echo "$out"
  exit 0
fi
mkdir -p "$out"
work=$(mktemp -d "${TMPDIR:-/tmp}/sro-previous.XXXXXX")
cleanup() {
  git -C "$root" worktree remove --force "$work/src" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
echo ">> building the previous release ${commit:0:12} (once; cached in $out)" >&2
git -C "$root" worktree add --detach "$work/src" "$commit" >/dev/null 2>&1
# Its own target dir: the build must not touch this tree's binaries.
CARGO_TARGET_DIR="$out/target" cargo build --quiet --locked --bin ses-reputation-operator \
  --manifest-path "$work/src/Cargo.toml" >&2
cp "$out/target/debug/ses-reputation-operator" "$out/ses-reputation-operator.tmp"
cp "$work/src/deploy/crds/crds.yaml" "$out/crds.yaml"
mv "$out/ses-reputation-operator.tmp" "$out/ses-reputation-operator"
# The build tree is large and not needed again unless the cache is cleared.
rm -rf "$out/target"
echo "$out"
