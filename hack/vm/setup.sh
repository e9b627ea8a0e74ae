#!/usr/bin/env bash
# Host packages for the QEMU tests (hack/vm/): kernel NFS cannot run in this
# host's containers, so the NFS roles are proven in real VMs under QEMU.
#
# Idempotent: installs only what is missing; a second run takes well under a
# second. Run as root. Used by `make vm` and by tests/integration/test_nfs_vms.py.
set -euo pipefail

log() { printf '\033[1m[vm-setup]\033[0m %s\n' "$*"; }

# qemu-system-x86: the emulator (TCG; /dev/kvm here is a PVM device that
#   crashes unmodified guests, see DESIGN.md)
# qemu-utils: qemu-img (qcow2 base image and per-VM overlays)
# cloud-image-utils: cloud-localds (NoCloud seed)
# debootstrap, e2fsprogs: build the guest root file system without loop devices
# iproute2: bridge and tap devices
# openssh-client: ssh-keygen per test run, ssh for Ansible
# flock (util-linux): one image build and one VM network at a time
PACKAGES=(
  qemu-system-x86 qemu-utils cloud-image-utils debootstrap e2fsprogs
  iproute2 openssh-client util-linux
)

((EUID == 0)) || { echo "hack/vm/setup.sh: run as root (apt-get, bridges, taps)" >&2; exit 1; }

# shellcheck source=hack/apt-ensure.sh
source "$(dirname "${BASH_SOURCE[0]}")/../apt-ensure.sh"
apt_ensure "${PACKAGES[@]}"

# Taps need the tun device; bridges need the bridge driver (built in or a module).
[[ -c /dev/net/tun ]] || { echo "hack/vm/setup.sh: /dev/net/tun is missing; VMs cannot get a network" >&2; exit 1; }
