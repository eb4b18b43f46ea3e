#!/usr/bin/env bash
# Builds debian:bookworm-slim locally with mmdebstrap and imports it under the exact name the Dockerfile's FROM
# uses, for machines that reach Debian's mirror but no container registry. It mirrors what the official slim
# image carries (merged /usr, no docs/man/locales but copyright files, no apt lists or caches) so that the
# image sizes measured on top of it are the sizes users get from the registry's image.
#
# Usage: base-image.sh IMAGE_NAME   (podman's CONTAINERS_CONF / CONTAINERS_STORAGE_CONF select the store)
# Env:   DEBIAN_MIRROR, DEBIAN_SECURITY_MIRROR (default: deb.debian.org, the mirror apt uses here)
set -euo pipefail

image=${1:?usage: base-image.sh IMAGE_NAME (e.g. docker.io/library/debian:bookworm-slim)}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
security_mirror=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}

# The official slim image's trimming: no docs (but copyright files), man pages, info or locales, and the same
# rules kept in /etc/dpkg/dpkg.cfg.d/docker so that the Dockerfile's `apt-get install`s skip them too.
# Applied after the install rather than through --dpkgopt: mmdebstrap's excluding extraction is 10 s slower.
trim_hook=$(
  cat <<'HOOK'
set -e
cat >"$1/etc/dpkg/dpkg.cfg.d/docker" <<RULES
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/groff/*
path-exclude=/usr/share/lintian/*
path-exclude=/usr/share/linda/*
path-exclude=/usr/share/locale/*
RULES
find "$1/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
find "$1/usr/share/doc" -mindepth 1 -type d -empty -delete
sed -n 's/^path-exclude=//p' "$1/etc/dpkg/dpkg.cfg.d/docker" | grep -v '^/usr/share/doc/' |
  while read -r pattern; do rm -rf "$1"$pattern; done
# What the build leaves behind: apt's lists and logs, dpkg's and debconf's backups, the host's name and DNS.
rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/* "$1"/var/log/*.log "$1"/var/log/apt/*
rm -f "$1"/var/cache/debconf/*-old "$1"/var/lib/dpkg/*-old "$1"/etc/hostname
: >"$1"/etc/resolv.conf
HOOK
)

# apt keeps no binary caches and fetches no translations, and dpkg does not fsync each file (a container build
# is redone, not recovered), as in the official image; both settings stay in the image.
aptopts=(
  '--aptopt=Acquire::Languages "none"'
  '--aptopt=Dir::Cache::pkgcache ""'
  '--aptopt=Dir::Cache::srcpkgcache ""'
)

# A file, not a pipe: a failed mmdebstrap must not leave a truncated image under the base image's name.
rootfs=$(mktemp --suffix=.tar)
log=$(mktemp --suffix=.log)
trap 'rm -f "$rootfs" "$log"' EXIT

mmdebstrap --quiet --variant=minbase --format=tar \
  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
  "${aptopts[@]}" --dpkgopt=force-unsafe-io --customize-hook="$trim_hook" \
  bookworm "$rootfs" \
  "deb $mirror bookworm main" \
  "deb $mirror bookworm-updates main" \
  "deb $security_mirror bookworm-security main" >"$log" 2>&1 ||
  { cat "$log" >&2; echo "base-image.sh: mmdebstrap failed (log above); is $mirror reachable?" >&2; exit 1; }
podman import --quiet \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["bash"]' \
  "$rootfs" "$image" >/dev/null
