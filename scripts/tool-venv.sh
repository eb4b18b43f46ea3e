#!/usr/bin/env bash
# Create, or reuse when its pins are unchanged, a virtualenv for a tool whose dependencies clash with the
# program's own pins (checkov; the policy pack's pulumi-policy). The requirements file must pin the whole
# closure exactly: it is installed with --no-deps and then checked with `pip check`.
# Usage: scripts/tool-venv.sh <venv-dir> <requirements-file>   - prints the venv dir on stdout.
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 <venv-dir> <requirements-file>" >&2
  exit 2
fi
venv=$1
requirements=$2
if [[ ! -f $requirements ]]; then
  echo "tool-venv: requirements file '$requirements' does not exist; pass a file of exact name==version pins." >&2
  exit 2
fi

stamp=$venv/.requirements.sha256
wanted=$(sha256sum "$requirements" | cut -d' ' -f1)
if [[ -x $venv/bin/python && -f $stamp && $(<"$stamp") == "$wanted" ]]; then
  echo "$venv"
  exit 0
fi

started=$(date +%s)
rm -rf "$venv"
"${BOOTSTRAP_PYTHON:-python3}" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r "$requirements" >&2
if ! "$venv/bin/python" -m pip check --disable-pip-version-check >&2; then
  echo "tool-venv: '$requirements' does not pin a consistent closure (see pip check above); add or fix the pins." >&2
  exit 1
fi
echo "$wanted" >"$stamp"
echo "tool-venv: $venv ready from $requirements in $(($(date +%s) - started)) s" >&2
echo "$venv"
