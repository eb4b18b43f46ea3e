#!/usr/bin/env bash
# `make image`: builds the plugin image (target plugin) and the RDMA test-pod image (target tools) from
# plugin_image/Dockerfile, checks the plugin image against its size budget and prints both sizes.
#
# With buildah (the default where it is installed; needs root): no Docker engine and no registry are needed;
# the debian:bookworm-slim base is made locally by base-image.sh the first time. With IMAGE_BUILDER=docker
# (the default where only docker is installed): a plain BuildKit build that pulls the base from Docker Hub.
#
# Env: PLUGIN_IMAGE, TOOLS_IMAGE (default localhost/rdma-device-plugin:<version>, localhost/rdma-tools:<version>),
#      IMAGE_BUILDER=buildah|docker, IMAGE_SOURCE (OCI source label; default: the URL of git remote "origin"),
#      CA_BUNDLE (CA certificates pip trusts in the build; default: the host's), REBUILD_BASE=1,
#      IMAGE_GZIP_SIZE=1 (also print the gzip'd size of each saved image).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=container-env.sh
source "$here/container-env.sh"
context=$repo_root/plugin_image
plugin_budget_bytes=150000000 # 150 MB uncompressed, as podman and docker count (10^6)
started=$(date +%s)

fail() {
  echo "make image: $*" >&2
  exit 1
}

python=${PYTHON:-$repo_root/venv/bin/python}
[[ -x $python ]] || fail "no Python with the dev tools at $python: run \`make setup\` first (or set PYTHON)."
"$python" "$here/lock_requirements.py" --check

builder=${IMAGE_BUILDER:-$(command -v buildah >/dev/null && echo buildah || echo docker)}
# The last commit that changed plugin_image/, as the Pulumi program labels it (components/images.py): the
# same image content gets the same label whichever way it is built.
revision=$(git -C "$repo_root" log -1 --format=%H -- plugin_image 2>/dev/null || true)
source_url=${IMAGE_SOURCE:-$(git -C "$repo_root" remote get-url origin 2>/dev/null || true)}
# A clone of a local directory has a path for its origin: no use to someone reading the label elsewhere.
if [[ ! $source_url =~ ^(https?://|ssh://|git@) ]]; then
  echo "make image: no URL for git remote 'origin': the OCI source label stays empty (set IMAGE_SOURCE)." >&2
  source_url=""
fi
ca_bundle=${CA_BUNDLE:-${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}}
build_args=(--build-arg "VERSION=$plugin_version" --build-arg "REVISION=$revision" --build-arg "SOURCE=$source_url")
[[ -s $ca_bundle ]] && build_args+=(--secret "id=ca-bundle,src=$ca_bundle")

case $builder in
buildah)
  [[ $(id -u) == 0 ]] || fail "the buildah build needs root (mmdebstrap, overlay storage); or IMAGE_BUILDER=docker."
  for tool in buildah podman runc mmdebstrap; do
    command -v "$tool" >/dev/null || fail "$tool is missing: apt-get install -y buildah podman runc mmdebstrap."
  done
  if [[ ${REBUILD_BASE:-0} == 1 ]] || ! podman image exists "$BASE_IMAGE"; then
    echo "== base image $BASE_IMAGE (mmdebstrap)"
    bash "$here/base-image.sh" "$BASE_IMAGE"
  fi
  build() { buildah build --pull-never --isolation chroot --layers --force-rm "${build_args[@]}" "$@"; }
  size_of() { podman image inspect --format '{{.Size}}' "$1"; }
  save() { podman save --quiet --format oci-archive -o "$2" "$1"; }
  ;;
docker)
  export DOCKER_BUILDKIT=1
  build() { docker build "${build_args[@]}" "$@"; }
  size_of() { docker image inspect --format '{{.Size}}' "$1"; }
  save() { docker save -o "$2" "$1"; }
  ;;
*) fail "IMAGE_BUILDER=$builder is not one of buildah, docker." ;;
esac

build_log=$(mktemp --suffix=.log)
trap 'rm -f "$build_log"' EXIT
for target in tools plugin; do
  tag=$([[ $target == plugin ]] && echo "$PLUGIN_IMAGE" || echo "$TOOLS_IMAGE")
  echo "== $builder build --target $target -t $tag"
  build --target "$target" -t "$tag" -f "$context/Dockerfile" "$context" >"$build_log" 2>&1 ||
    { tail -n 80 "$build_log" >&2; fail "building target $target failed (the end of its log is above)."; }
done

mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1e6 }'; }
for tag in "$PLUGIN_IMAGE" "$TOOLS_IMAGE"; do
  line="image $tag: $(mb "$(size_of "$tag")") uncompressed"
  if [[ ${IMAGE_GZIP_SIZE:-0} == 1 ]]; then
    archive=$(mktemp)
    save "$tag" "$archive"
    line+=", $(mb "$(gzip -c "$archive" | wc -c)") as a gzip'd archive"
    rm -f "$archive"
  fi
  echo "$line"
done
plugin_size=$(size_of "$PLUGIN_IMAGE")
((plugin_size <= plugin_budget_bytes)) ||
  fail "$PLUGIN_IMAGE is $(mb "$plugin_size"), over its budget of $(mb $plugin_budget_bytes) uncompressed."
echo "make image: done in $(($(date +%s) - started)) s"
