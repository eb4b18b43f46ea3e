#!/usr/bin/env bash
# Make sure the Debian/Ubuntu packages of the given groups (scripts/system-packages.txt) are installed.
# All present: returns at once (one dpkg-query). Some missing: as root, installs them with apt-get; otherwise
# prints the exact command to run and exits 2, since a test run without them would fail on a missing tool.
# Usage: scripts/system-packages.sh <group>...   (groups: make setup test image)
set -euo pipefail

list=$(dirname "$0")/system-packages.txt
if [[ $# -eq 0 ]]; then
  echo "usage: $0 <group>...  (the groups of $list: make setup test image)" >&2
  exit 2
fi

wanted=()
for group in "$@"; do
  found=$(sed -e 's/#.*//' "$list" | awk -v group="$group" 'NF == 2 && $2 == group { print $1 }')
  if [[ -z $found ]]; then
    echo "system-packages: no packages in group '$group' of $list; the groups are: make setup test image." >&2
    exit 2
  fi
  mapfile -t -O "${#wanted[@]}" wanted <<<"$found"
done

if ! command -v dpkg-query >/dev/null || ! command -v apt-get >/dev/null; then
  echo "system-packages: this is not a Debian/Ubuntu machine (no dpkg-query/apt-get). Install the" \
    "equivalents of these Debian packages yourself, then run make again: ${wanted[*]}" >&2
  exit 2
fi

installed=" $(dpkg-query -W -f='${Package}:${db:Status-Abbrev}\n' "${wanted[@]}" 2>/dev/null |
  awk -F: '$2 ~ /^ii/ { printf "%s ", $1 }' || true)"
missing=()
for package in "${wanted[@]}"; do
  [[ $installed == *" $package "* ]] || missing+=("$package")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -ne 0 ]]; then
  echo "system-packages: make $* needs Debian packages that are not installed: ${missing[*]}." >&2
  echo "Install them (as root, or with sudo), then run make again:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 2
fi

started=$(date +%s)
echo "system-packages: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "system-packages: installed in $(($(date +%s) - started)) s" >&2
