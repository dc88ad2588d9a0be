#!/usr/bin/env bash
# CI helper: get a Docker engine and the base image for tests/deploy, if this machine allows.
# Idempotent and time-bounded; it never fails. It prints the lines to source:
#   export NMTUNE_DOCKER_TESTS=1                  (engine and base image ready)
#   export NMTUNE_DOCKER_UNAVAILABLE='<reason>'   (the docker tests skip with this reason)
# Steps: apt-get install docker.io debootstrap docker-compose (when missing); start
# `dockerd --bridge=none --iptables=false --ip-forward=false` (no container network: host
# networking only) when nothing answers; deploy/base-image.sh (debootstrap, cached tarball).
set -uo pipefail
cd "$(dirname "$0")/.."
cache=.cache/docker
mkdir -p "$cache"
log="$cache/ci-docker.log"
: >"$log"

unavailable() {
  echo "ci-docker: $1" >&2
  printf "export NMTUNE_DOCKER_UNAVAILABLE=%q\n" "$1"
  exit 0
}
t0=$(date +%s)

if [ "${NMTUNE_CI_DOCKER:-1}" = "0" ]; then
  unavailable "NMTUNE_CI_DOCKER=0"
fi

need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v docker-compose >/dev/null || need+=(docker-compose)
if [ ${#need[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || unavailable "not root: cannot apt-get install ${need[*]}"
  lock=(); command -v flock >/dev/null && lock=(flock -w 600 /tmp/nmtune-apt.lock)
  if ! timeout 900 "${lock[@]}" sh -c "apt-get update -q && DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -q --no-install-recommends ${need[*]}" >>"$log" 2>&1; then
    unavailable "apt-get install ${need[*]} failed (see $log)"
  fi
fi
command -v docker >/dev/null || unavailable "no docker client after installing docker.io"

if ! timeout 20 docker info >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || unavailable "dockerd is not running and this user cannot start it"
  nohup dockerd --bridge=none --iptables=false --ip-forward=false \
    >"$cache/dockerd.log" 2>&1 </dev/null &
  for _ in $(seq 60); do
    timeout 5 docker info >/dev/null 2>&1 && break
    sleep 1
  done
  timeout 20 docker info >/dev/null 2>&1 || \
    unavailable "dockerd did not start within 60 s: $(tail -n 3 "$cache/dockerd.log" | tr '\n' ' ')"
fi

if ! timeout 900 deploy/base-image.sh >>"$log" 2>&1; then
  unavailable "no base image: deploy/base-image.sh failed (see $log)"
fi
echo "ci-docker: engine $(docker info --format '{{.ServerVersion}}') and base image ready in" \
  "$(( $(date +%s) - t0 )) s" >&2
echo "export NMTUNE_DOCKER_TESTS=1"
