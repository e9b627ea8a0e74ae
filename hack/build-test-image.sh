#!/usr/bin/env bash
# Build localhost/dcaas/test-busybox:latest, the tiny image the local cloud
# provider tests boot as "instances". No registry is reachable here, so the
# rootfs is Debian's static busybox plus a fake /sbin/init, imported with
# `podman import`. The fake init behaves like a cloud image just enough for
# the tests: it reads the NoCloud seed podman's archive API put in place,
# records what it saw in /run/dcaas-seed.log, exits 3 without a seed (so a
# broken seed shows up as an instance in error), and otherwise waits forever.
#
# Idempotent: the image carries a label with a hash of its inputs and is only
# rebuilt when they change (or with --force).
set -euo pipefail

IMAGE=${DCAAS_TEST_IMAGE:-localhost/dcaas/test-busybox:latest}
force=0
[[ ${1:-} == --force ]] && force=1

log() { printf '\033[1m[test-image]\033[0m %s\n' "$*"; }

if ! dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q "ok installed"; then
  log "installing busybox-static"
  export DEBIAN_FRONTEND=noninteractive
  # Another engineer's apt run may hold the lock; wait for it rather than fail.
  apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends busybox-static >/dev/null \
    || { apt-get update -qq && apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends busybox-static >/dev/null; }
fi

read -r -d '' INIT <<'SH' || true
#!/bin/sh
# Fake init of the dcaas test image: stands in for cloud-init + systemd.
seed=/var/lib/cloud/seed/nocloud
if [ ! -r "$seed/meta-data" ] || [ ! -r "$seed/user-data" ]; then
  echo "dcaas-test-init: no NoCloud seed in $seed" >&2
  exit 3
fi
{
  echo "hostname=$(hostname)"
  echo "meta-data:"
  cat "$seed/meta-data"
  echo "user-data-mode=$(stat -c %a "$seed/user-data")"
} >/run/dcaas-seed.log
echo "dcaas-test-init: seed read, waiting"
# PID 1 gets no default signal handlers; exit on the signals podman sends
# (37 is SIGRTMIN+3, systemd's "halt", podman's stop signal in systemd mode;
# busybox does not know the name).
trap 'exit 0' TERM INT 37
while :; do sleep 3600 & wait $!; done
SH

busybox_bin=$(command -v busybox)
busybox_ver=$(dpkg-query -W -f='${Version}' busybox-static)
# This script is the recipe: any edit to it rebuilds the image.
inputs_hash=$({ echo "$busybox_ver"; cat "${BASH_SOURCE[0]}"; } | sha256sum | cut -c1-16)

old_id=$(podman image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
if ((!force)) && [[ -n $old_id ]]; then
  have=$(podman image inspect --format '{{ index .Labels "dcaas.test-image.inputs" }}' "$IMAGE" 2>/dev/null || true)
  if [[ $have == "$inputs_hash" ]]; then
    log "$IMAGE is up to date ($inputs_hash)"
    exit 0
  fi
fi

work=$(mktemp -d /tmp/dcaas-b-test-image.XXXXXX)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
# No /var/lib/cloud: the provider must create the seed directory itself.
mkdir -p "$root"/{bin,sbin,etc,root,tmp,run,proc,sys,dev,var/lib,var/log}
chmod 1777 "$root/tmp"
cp "$busybox_bin" "$root/bin/busybox"
for applet in $("$busybox_bin" --list); do
  # init is ours; everything else is busybox.
  [[ $applet == init || $applet == busybox ]] && continue
  ln -s busybox "$root/bin/$applet"
done
printf '%s\n' "$INIT" >"$root/sbin/init"
chmod 0755 "$root/sbin/init"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\n' >"$root/etc/group"
tar -C "$root" --numeric-owner -cf "$work/rootfs.tar" .

log "importing $IMAGE ($inputs_hash)"
podman import --quiet \
  --change 'CMD ["/sbin/init"]' \
  --change 'ENV PATH=/bin:/sbin' \
  --change "LABEL dcaas.test-image.inputs=$inputs_hash" \
  --message "dcaas.cluster test image (busybox $busybox_ver)" \
  "$work/rootfs.tar" "$IMAGE" >/dev/null
# The image this one replaced is left untagged; drop it unless a container
# still uses it.
new_id=$(podman image inspect --format '{{.Id}}' "$IMAGE")
if [[ -n $old_id && $old_id != "$new_id" ]]; then
  podman rmi "$old_id" >/dev/null 2>&1 || true
fi
log "built $IMAGE"
