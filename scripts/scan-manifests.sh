#!/usr/bin/env bash
# Scan a directory of rendered Kubernetes manifests with checkov; fail on any failed check.
# Every file must hold Kubernetes objects (checkov silently ignores anything else), and a check may be skipped
# only on the object it concerns, by a `checkov.io/skip<N>: CKV_K8S_<id>=<reason>` annotation with a reason.
# Usage: scripts/scan-manifests.sh <manifests-dir>
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 <manifests-dir>   (e.g. build/dev/manifests, written by make preview STACK=dev)" >&2
  exit 2
fi
manifests=$1
if [[ ! -d $manifests ]]; then
  echo "scan-manifests: '$manifests' is not a directory; render the manifests first (make preview STACK=<stack>)." >&2
  exit 2
fi

repo=$(cd "$(dirname "$0")/.." && pwd)
venv=$("$repo/scripts/tool-venv.sh" "$repo/build/tools/checkov-venv" "$repo/requirements-checkov.txt")

# checkov's PyYAML reads the objects first: what checkov would skip without a word, this refuses.
"$venv/bin/python" - "$manifests" <<'PY'
import re
import sys
from pathlib import Path

import yaml

SKIP_KEY = re.compile(r"checkov\.io/skip\d+")
SKIP_VALUE = re.compile(r"CKV2?_K8S_\d+=\S.*")
problems = []
files = sorted(path for path in Path(sys.argv[1]).iterdir() if path.suffix in {".yaml", ".yml"})
if not files:
    problems.append(f"{sys.argv[1]}: no .yaml manifests to scan; render them first (make preview STACK=<stack>)")
for path in files:
    try:
        documents = [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
    except yaml.YAMLError as error:
        problems.append(f"{path}: not valid YAML ({str(error).splitlines()[0]})")
        continue
    for doc in documents:
        metadata = doc.get("metadata") if isinstance(doc, dict) else None
        if not isinstance(metadata, dict) or not doc.get("apiVersion") or not doc.get("kind") or not metadata.get("name"):
            problems.append(f"{path}: a document is not a Kubernetes object (needs apiVersion, kind, metadata.name)")
            continue
        for key, value in (metadata.get("annotations") or {}).items():
            if SKIP_KEY.fullmatch(key) and not SKIP_VALUE.fullmatch(str(value)):
                problems.append(
                    f"{path}: {doc['kind']} {metadata['name']} annotation {key}: {value!r} skips without a reason;"
                    " write it as CKV_K8S_<id>=<why the object needs it>"
                )
for problem in problems:
    print(f"scan-manifests: {problem}", file=sys.stderr)
sys.exit(1 if problems else 0)
PY

report=$(mktemp -d)
trap 'rm -rf "$report"' EXIT
# No update check and no platform calls: the scan must not touch the network.
export CKV_SKIP_PACKAGE_UPDATE_CHECK=true BC_SKIP_MAPPING=TRUE
status=0
"$venv/bin/checkov" --config-file "$repo/.checkov.yaml" --directory "$manifests" \
  --output cli --output json --output-file-path "console,$report/results.json" || status=$?

"$venv/bin/python" - "$report/results.json" "$status" <<'PY'
import json
import sys

summary = json.loads(open(sys.argv[1]).read())["summary"]
print(
    f"scan-manifests: {summary['resource_count']} objects, {summary['passed']} passed, {summary['failed']} failed, "
    f"{summary['skipped']} skipped (each with its reason on the object), {summary['parsing_errors']} parsing errors"
)
sys.exit(1 if summary["failed"] or summary["parsing_errors"] or sys.argv[2] != "0" else 0)
PY
