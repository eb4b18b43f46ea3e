#!/usr/bin/env bash
# `make image-smoke`: runs smoke.py against the images `make image` built, with the same podman settings.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=container-env.sh
source "$here/container-env.sh"
python=${PYTHON:-$repo_root/venv/bin/python}
[[ -x $python ]] || { echo "make image-smoke: no Python at $python: run \`make setup\` first." >&2; exit 1; }
for image in "$PLUGIN_IMAGE" "$TOOLS_IMAGE"; do
  podman image exists "$image" || { echo "make image-smoke: no image $image: run \`make image\` first." >&2; exit 1; }
done
started=$(date +%s)
PYTHONPATH=$repo_root/plugin_image/tests "$python" "$here/smoke.py"
echo "make image-smoke: done in $(($(date +%s) - started)) s"
