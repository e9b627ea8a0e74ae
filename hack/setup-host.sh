#!/usr/bin/env bash
# Prepare this Debian 12 host for dcaas.cluster's local cloud and tests.
# Idempotent and quick on a second run: installs apt packages that are
# missing, writes podman's configuration, starts podman's REST API service.
set -euo pipefail

log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

PACKAGES=(
  podman runc netavark aardvark-dns iptables slirp4netns uidmap fuse-overlayfs
  debootstrap jq make git curl ca-certificates python3-venv
  munge slurm-client
)

# shellcheck source=hack/apt-ensure.sh
source "$(dirname "${BASH_SOURCE[0]}")/apt-ensure.sh"
apt_ensure "${PACKAGES[@]}"

# podman 4.3 on these hosts: crun fails on hybrid cgroups, systemd is not
# PID 1 (cgroupfs manager), and ulimits above these fail with
# "error setting rlimit" (measured; see shared DESIGN.md).
conf=/etc/containers/containers.conf
want=$(cat <<'CONF'
# Managed by dcaas.cluster hack/setup-host.sh
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"

[network]
network_backend = "netavark"
CONF
)
if [[ ! -f $conf ]] || [[ "$(cat "$conf")" != "$want" ]]; then
  log "writing $conf"
  mkdir -p /etc/containers
  printf '%s\n' "$want" >"$conf"
fi

# podman's REST API: the local cloud provider talks to it like to a cloud API.
sock=/run/podman/podman.sock
if ! curl -fsS --unix-socket "$sock" http://d/_ping >/dev/null 2>&1; then
  log "starting podman API service on $sock"
  mkdir -p /run/podman
  # From /: the service outlives this script, and a working directory that
  # is later removed (a CI checkout) makes every container start fail with
  # "write child: broken pipe".
  (cd / && exec nohup podman system service --time=0 "unix://$sock") >/var/log/dcaas-podman-service.log 2>&1 &
  for _ in $(seq 50); do
    curl -fsS --unix-socket "$sock" http://d/_ping >/dev/null 2>&1 && break
    sleep 0.1
  done
  curl -fsS --unix-socket "$sock" http://d/_ping >/dev/null || { log "podman API did not come up"; exit 1; }
else
  log "podman API service running on $sock"
fi
