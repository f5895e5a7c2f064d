#!/usr/bin/env bash
# Creates (once) the Python venv that runs the AWS emulator and prints the
# absolute path of its python on stdout. Progress goes to stderr.
# The venv is keyed by the hash of requirements.txt, so changing a pin makes a
# new venv; a marker written last makes a half-finished install be redone.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
req="$here/requirements.txt"
cache="${SRO_CACHE:-$HOME/.cache/ses-reputation-operator}"
key="$(sha256sum "$req" | cut -c1-16)"
venv="$cache/emulator-venv/$key"
marker="$venv/.sro-installed"

if [[ ! -f "$marker" ]]; then
  echo "aws-emulator: creating venv $venv" >&2
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  python3 -m venv "$venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    --no-input -r "$req" >&2
  touch "$marker"
  echo "aws-emulator: venv ready" >&2
fi

echo "$venv/bin/python"
