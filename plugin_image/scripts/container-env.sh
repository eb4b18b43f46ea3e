# shellcheck shell=bash
# Sourced by build.sh and smoke.sh: image names, and podman/buildah settings for hosts with no Docker engine
# and no registry (see ../shared/notes/image-build.md). Everything container-related lives in one state
# directory (default build/containers, gitignored), so the smoke test finds the images the build made.
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
plugin_version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$repo_root/plugin_image/pyproject.toml")
export PLUGIN_IMAGE=${PLUGIN_IMAGE:-localhost/rdma-device-plugin:$plugin_version}
export TOOLS_IMAGE=${TOOLS_IMAGE:-localhost/rdma-tools:$plugin_version}
export BASE_IMAGE=docker.io/library/debian:bookworm-slim  # exactly the Dockerfile's FROM

container_state=${CONTAINER_STATE_DIR:-$repo_root/build/containers}
mkdir -p "$container_state"
# runc, not Debian's default crun (fails on hybrid cgroups); ulimits below what root without CAP_SYS_RESOURCE
# may set; file events because there is no systemd journal to log to.
cat >"$container_state/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
cat >"$container_state/storage.conf" <<CONF
[storage]
driver = "overlay"
graphroot = "$container_state/storage"
runroot = "$container_state/run"
[storage.options.overlay]
# No private bind mount of the store over itself, so \`make clean\` can delete it.
skip_mount_home = "true"
CONF
export CONTAINERS_CONF=$container_state/containers.conf
export CONTAINERS_STORAGE_CONF=$container_state/storage.conf
