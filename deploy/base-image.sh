#!/usr/bin/env bash
# Make a Debian base image without a registry: debootstrap (minbase) from the Debian mirror apt
# uses, then `docker import`. The rootfs tarball is cached (default .cache/docker/, gitignored),
# so a second run only imports it (or does nothing when the image exists).
#   deploy/base-image.sh [IMAGE] [SUITE]      default: nmtune-base:bookworm bookworm
# Env: NMTUNE_BASE_CACHE (tarball folder), NMTUNE_DEBIAN_MIRROR (default: apt's first URI).
set -euo pipefail
cd "$(dirname "$0")/.."
image="${1:-nmtune-base:bookworm}"
suite="${2:-bookworm}"
cache="${NMTUNE_BASE_CACHE:-.cache/docker}"
tarball="$cache/debian-$suite-minbase.tar"

if docker image inspect "$image" >/dev/null 2>&1; then
  echo "base image $image exists"
  exit 0
fi
if [ ! -s "$tarball" ]; then
  mirror="${NMTUNE_DEBIAN_MIRROR:-}"
  if [ -z "$mirror" ]; then
    mirror="$(grep -hoE '^(URIs:|deb) +[^ ]+' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources \
      /etc/apt/sources.list.d/*.list 2>/dev/null | grep -m1 -E 'debian/?$' | awk '{print $2}' || true)"
  fi
  mirror="${mirror:-http://deb.debian.org/debian}"
  command -v debootstrap >/dev/null || { echo "debootstrap is not installed" >&2; exit 1; }
  root="$(mktemp -d)"
  trap 'rm -rf "$root"' EXIT
  echo "debootstrap --variant=minbase $suite from $mirror"
  debootstrap --variant=minbase "$suite" "$root" "$mirror" >&2
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  mkdir -p "$cache"
  tar -C "$root" --numeric-owner -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
fi
docker import --change 'CMD ["/bin/bash"]' "$tarball" "$image" >/dev/null
echo "imported $image from $tarball"
