#!/usr/bin/env bash
# Build the Debian bookworm VM image for the QEMU tests, or reuse the cached one.
#
#   /var/cache/dcaas/vm/<hash>/base.qcow2   root file system (ext4, no partition table)
#   /var/cache/dcaas/vm/<hash>/vmlinuz      kernel  } direct kernel boot: no boot loader,
#   /var/cache/dcaas/vm/<hash>/initrd.img   initrd  } nothing to install in the image
#
# <hash> covers every build input (this script, suite, mirror, package lists),
# so a change to any of them builds a new image and reruns are instant. The
# last line of output is the image directory. VMs never write to base.qcow2:
# hack/vm/cluster.sh gives each VM a qcow2 overlay.
#
# The guests have no route to the outside, so the packages the NFS roles
# install (DCAAS_VM_LOCAL_DEBS) are downloaded at build time into a local
# apt repository inside the image (/var/lib/dcaas-debs); it is the guests'
# only apt source. The roles then really install them, from there.
#
# Usage: hack/vm/build-image.sh [--force]
# Environment: DCAAS_CACHE_DIR (default /var/cache/dcaas), DCAAS_DEBIAN_MIRROR
#              (default: this host's bookworm mirror), DCAAS_VM_LOCAL_DEBS.
set -euo pipefail

cache=${DCAAS_CACHE_DIR:-/var/cache/dcaas}/vm
suite=bookworm
local_debs=${DCAAS_VM_LOCAL_DEBS:-nfs-kernel-server nfs-common}
# What DESIGN.md measured to reach ssh in about 50 s under TCG: the cloud
# kernel, cloud-init (python3-cffi-backend and locales are needed at its first
# boot and are not pulled in by minbase), sshd; ifupdown so cloud-init renders
# the static network to /etc/network/interfaces.d; python3-apt for Ansible's
# apt module; apt-utils to index the local repository.
include=systemd-sysv,dbus,linux-image-cloud-amd64,initramfs-tools,cloud-init,python3-cffi-backend,locales
include+=,openssh-server,ifupdown,iproute2,netbase,python3,python3-apt,apt-utils,procps,less

log() { printf '\033[1m[vm-image]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[vm-image] error:\033[0m %s\n' "$*" >&2; exit 1; }

force=0
case ${1:-} in
  --force) force=1 ;;
  "") ;;
  -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  *) die "unknown argument '$1' (only --force)" ;;
esac

((EUID == 0)) || die "run as root (debootstrap and chroot need it)"
for tool in debootstrap mkfs.ext4 qemu-img sha256sum flock; do
  command -v "$tool" >/dev/null || die "$tool not found; run hack/vm/setup.sh first"
done

# The mirror this host's apt uses (deb822 or one-line format): the build must
# work where only that mirror is reachable.
host_mirror() {
  local uri
  uri=$(awk -v want="$suite" '
      /^URIs:/ { uri = $2 }
      /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == want) { print uri; exit } }
    ' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  if [[ -z $uri && -f /etc/apt/sources.list ]]; then
    uri=$(awk -v want="$suite" '$1 == "deb" { for (i = 2; i < NF; i++) if ($i ~ /^(http|https|ftp):/ && $(i + 1) == want) { print $i; exit } }' /etc/apt/sources.list)
  fi
  printf '%s' "${uri:-http://deb.debian.org/debian}"
}
mirror=${DCAAS_DEBIAN_MIRROR:-$(host_mirror)}

hash=$({ cat "${BASH_SOURCE[0]}"; printf '%s\n' "$suite" "$mirror" "$include" "$local_debs"; } | sha256sum | cut -c1-16)
out=$cache/$hash
mkdir -p "$cache"
exec 9>"$cache/build.lock"
flock -w 1800 9 || die "another build holds $cache/build.lock for more than 30 minutes"

if ((!force)) && [[ -f $out/base.qcow2 && -f $out/vmlinuz && -f $out/initrd.img ]]; then
  log "cached image $out"
  echo "$out"
  exit 0
fi

start=$SECONDS
work=$(mktemp -d "$cache/build.XXXXXX")
root=$work/root
cleanup() {
  # debootstrap leaves /proc and /sys mounted in the chroot when it fails.
  local m
  for m in proc sys dev/pts dev; do mountpoint -q "$root/$m" 2>/dev/null && umount -l "$root/$m"; done
  rm -rf "$work"
}
trap cleanup EXIT

log "debootstrap $suite from $mirror (log: $cache/debootstrap.log)"
mkdir -p "$cache/debs"
debootstrap --variant=minbase --include="$include" --cache-dir="$cache/debs" \
  "$suite" "$root" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
  die "debootstrap failed; see $cache/debootstrap.log"

log "local apt repository: $local_debs"
cp /etc/resolv.conf "$root/etc/resolv.conf"
repo=/var/lib/dcaas-debs
mkdir -p "$root$repo/partial"
# shellcheck disable=SC2086 # word splitting of the package list is intended
chroot "$root" /bin/sh -ec "
  apt-get update -qq
  apt-get install -qq --download-only -o Dir::Cache::Archives=$repo $local_debs
  rmdir $repo/partial
  cd $repo && apt-ftparchive packages . > Packages && apt-ftparchive release . > Release
" >>"$cache/debootstrap.log" 2>&1 || die "downloading $local_debs failed; see $cache/debootstrap.log"
ls "$root$repo"/*.deb >/dev/null 2>&1 || die "no packages in the local repository"
# The guests' only apt source: the public mirror is unreachable from them.
echo "deb [trusted=yes] file:$repo ./" >"$root/etc/apt/sources.list"
# Keep the index: Ansible's apt module trusts a recent update stamp and would
# not refresh an empty list.
chroot "$root" /bin/sh -ec 'apt-get update -qq && apt-get clean' \
  >>"$cache/debootstrap.log" 2>&1 || die "local repository does not index; see $cache/debootstrap.log"
: >"$root/etc/resolv.conf"

log "configuring the guest"
echo "LABEL=dcaas-root / ext4 defaults,errors=remount-ro 0 1" >"$root/etc/fstab"
printf 'auto lo\niface lo inet loopback\n\nsource /etc/network/interfaces.d/*\n' >"$root/etc/network/interfaces"
echo localhost >"$root/etc/hostname"
# NoCloud only: skipping the probe for every other datasource saves many
# seconds under software emulation. One host key type: key generation is
# slow under TCG too. No boot loader to configure (direct kernel boot).
cat >"$root/etc/cloud/cloud.cfg.d/90-dcaas-vm.cfg" <<'CFG'
datasource_list: [NoCloud, None]
ssh_genkeytypes: [ed25519]
grub_dpkg:
  enabled: false
CFG
# Timers that would compete for the single emulated CPU during a test.
for unit in apt-daily.timer apt-daily-upgrade.timer man-db.timer e2scrub_all.timer fstrim.timer; do
  ln -sfn /dev/null "$root/etc/systemd/system/$unit"
done
# Generators for hardware and boot setups these VMs do not have. systemd runs
# every generator on each daemon-reload, and package installs reload often:
# at about 0.2 s per generator under TCG, masking them saves seconds per package.
mkdir -p "$root/etc/systemd/system-generators"
for gen in systemd-cryptsetup-generator systemd-debug-generator systemd-gpt-auto-generator \
  systemd-hibernate-resume-generator systemd-integritysetup-generator systemd-rc-local-generator \
  systemd-run-generator systemd-system-update-generator systemd-veritysetup-generator; do
  ln -sfn /dev/null "$root/etc/systemd/system-generators/$gen"
done
# Each VM gets its own machine id and host keys at first boot.
: >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id" "$root"/etc/ssh/ssh_host_*

kernel=$(find "$root/boot" -maxdepth 1 -name 'vmlinuz-*' | sort -V | tail -n 1)
initrd=$(find "$root/boot" -maxdepth 1 -name 'initrd.img-*' | sort -V | tail -n 1)
[[ -n $kernel && -n $initrd ]] || die "no kernel or initrd in $root/boot"

log "writing the ext4 image"
mkdir -p "$work/out"
cp "$kernel" "$work/out/vmlinuz"
cp "$initrd" "$work/out/initrd.img"
# mke2fs -d fills the file system from a directory: no loop device, no mount.
mkfs.ext4 -q -L dcaas-root -d "$root" "$work/root.raw" 4G >&2
qemu-img convert -f raw -O qcow2 "$work/root.raw" "$work/out/base.qcow2"
{
  echo "suite=$suite"
  echo "mirror=$mirror"
  echo "kernel=${kernel##*/}"
  echo "built=$(date -u +%FT%TZ)"
  echo "local_debs=$local_debs"
} >"$work/out/manifest"
rm -rf "$out"
mv "$work/out" "$out"
log "built $out in $((SECONDS - start)) s"

# Images of older build inputs, unless a running VM still boots from one
# (its kernel path is on QEMU's command line).
for old in "$cache"/*/base.qcow2; do
  old=${old%/base.qcow2}
  [[ $old == "$out" ]] && continue
  if grep -qsF -- "$old/" /proc/[0-9]*/cmdline; then
    log "keeping $old: a VM uses it"
  else
    rm -rf "$old"
    log "removed the outdated image $old"
  fi
done
echo "$out"
