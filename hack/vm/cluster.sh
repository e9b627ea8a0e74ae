#!/usr/bin/env bash
# A few throw-away Debian VMs under QEMU on a private host bridge, for what
# containers on this host cannot show (kernel NFS server and client).
#
#   hack/vm/cluster.sh up RUN_DIR NAME...   boot one VM per NAME, wait for ssh
#   hack/vm/cluster.sh down RUN_DIR         kill the VMs by PID, remove taps and bridge
#
# up writes into RUN_DIR: id_ed25519 (a key made for this run), hosts
# ("name address" per VM), network (the VMs' subnet in CIDR notation),
# ssh_config, and per VM its overlay disk, NoCloud seed, console log and QEMU
# pid file. `ssh -F RUN_DIR/ssh_config NAME` logs in.
#
# Network: each cluster takes a free slot N (0-7): bridge dcaas-nfs-brN with
# 192.168.(213+N).1/24 on the host, VM i on tap dcaas-nfs-N-i with
# 192.168.(213+N).(11+i). So several test sessions can run at once. The guests
# get no gateway and no DNS: they reach the host and each other, nothing
# else. A slot left behind by a killed run (no live VM) is reclaimed by the
# next `up`.
#
# Emulation: TCG only (/dev/kvm on these hosts is a paravirtual device that
# crashes unmodified guests), multi-threaded, 256 MB translation cache; direct
# kernel boot from the image's kernel and initrd; overlays on the cached base
# image opened with cache=unsafe, since a VM's disk dies with the VM anyway.
#
# Environment: DCAAS_VM_MEMORY (MB, default 768), DCAAS_VM_CPUS (default 2),
# DCAAS_VM_BOOT_TIMEOUT (s, default 600).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
memory=${DCAAS_VM_MEMORY:-768}
cpus=${DCAAS_VM_CPUS:-2}
boot_timeout=${DCAAS_VM_BOOT_TIMEOUT:-600}
slots=8
state=/run/dcaas-nfs-vm # slot-N.owner: the RUN_DIR that holds slot N

# The names and addresses of slot $1.
use_slot() {
  slot=$1
  bridge=dcaas-nfs-br$slot
  tap_prefix=dcaas-nfs-$slot-
  net=192.168.$((213 + slot))
}

log() { printf '\033[1m[vm]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[vm] error:\033[0m %s\n' "$*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

ssh_opts=(-o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
  -o LogLevel=ERROR -o ConnectTimeout=5)

# A pid file's process, if it is still the QEMU this run started.
live_qemu_pid() {
  local pidfile=$1 pid
  [[ -f $pidfile ]] || return 1
  pid=$(<"$pidfile")
  [[ $pid =~ ^[0-9]+$ ]] && [[ -r /proc/$pid/cmdline ]] || return 1
  # No pipe into grep -q here: under pipefail, tr's SIGPIPE would fail the test.
  local cmdline
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ $cmdline == *"-pidfile $pidfile "* ]] || return 1
  echo "$pid"
}

down() {
  local run=$1 pidfile pid i tap
  for pidfile in "$run"/*.pid; do
    [[ -e $pidfile ]] || continue
    if pid=$(live_qemu_pid "$pidfile"); then
      kill "$pid" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do
        [[ -d /proc/$pid ]] || break
        sleep 0.1
      done
      [[ -d /proc/$pid ]] && kill -KILL "$pid" 2>/dev/null
      log "stopped $(basename "$pidfile" .pid) (pid $pid)"
    fi
    rm -f "$pidfile"
  done
  if [[ -f $run/taps ]]; then
    while read -r tap; do
      ip link show "$tap" >/dev/null 2>&1 && ip link del "$tap"
    done <"$run/taps"
    rm -f "$run/taps"
  fi
  # The bridge goes only with the run that holds its slot.
  if [[ -f $run/slot ]]; then
    use_slot "$(<"$run/slot")"
    if [[ "$(cat "$state/slot-$slot.owner" 2>/dev/null)" == "$run" ]]; then
      ip link show "$bridge" >/dev/null 2>&1 && ip link del "$bridge"
      rm -f "$state/slot-$slot.owner"
      log "removed $bridge"
    fi
    rm -f "$run/slot"
  fi
  rm -f "$run"/*.qcow2 "$run"/*.seed.img
}

# Whether the `up` of a run is still at work (RUN_DIR/up.lock: its PID).
up_running() {
  local pid cmdline
  pid=$(cat "$1/up.lock" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ $cmdline == *"cluster.sh up "* ]]
}

# Takes the first slot that is free or held by a run without a live VM (the
# debris of a killed run, removed here). Sets the slot's names (use_slot).
claim_slot() {
  local run=$1 n owner pidfile tap busy
  for ((n = 0; n < slots; n++)); do
    use_slot "$n"
    if ip link show "$bridge" >/dev/null 2>&1; then
      owner=$(cat "$state/slot-$n.owner" 2>/dev/null || true)
      busy=0
      if [[ -n $owner && -d $owner ]]; then
        # Its `up` may still be starting the VMs.
        up_running "$owner" && busy=1
        for pidfile in "$owner"/*.pid; do
          live_qemu_pid "$pidfile" >/dev/null && busy=1
        done
      fi
      ((busy)) && continue
      log "removing stale $bridge${owner:+ of $owner}"
      for tap in $(ip -o link show master "$bridge" | awk -F': ' '{print $2}' | cut -d@ -f1); do
        [[ $tap == "$tap_prefix"* ]] && ip link del "$tap"
      done
      ip link del "$bridge"
    fi
    ip link add "$bridge" type bridge
    echo "$run" >"$state/slot-$n.owner"
    echo "$n" >"$run/slot"
    ip addr add "$net.1/24" dev "$bridge"
    ip link set "$bridge" up
    return 0
  done
  die "all $slots VM network slots are in use (see $state/slot-*.owner)"
}

write_seed() {
  local run=$1 name=$2 addr=$3
  local dir=$run/$name.cloud-init
  mkdir -p "$dir"
  cat >"$dir/meta-data" <<META
instance-id: dcaas-nfs-$name-$(basename "$run")
local-hostname: $name
META
  cat >"$dir/user-data" <<USER
#cloud-config
disable_root: false
users: []
ssh_authorized_keys:
  - $(<"$run/id_ed25519.pub")
manage_etc_hosts: true
locale: C.UTF-8
USER
  # No gateway and no nameservers: the guests talk to the host and each other only.
  cat >"$dir/network-config" <<NETCFG
version: 2
ethernets:
  eth0:
    addresses: [$addr/24]
NETCFG
  cloud-localds --network-config="$dir/network-config" "$run/$name.seed.img" "$dir/user-data" "$dir/meta-data"
}

# Tap device and NoCloud seed: what a VM keeps across a relaunch.
prepare_vm() {
  local run=$1 name=$2 index=$3 tap=$tap_prefix$3
  ip tuntap add dev "$tap" mode tap
  echo "$tap" >>"$run/taps"
  ip link set "$tap" master "$bridge" up
  write_seed "$run" "$name" "$net.$((11 + index))"
}

# A fresh overlay on the cached image, and QEMU.
launch_vm() {
  local run=$1 name=$2 index=$3 image=$4 tap=$tap_prefix$3
  local mac
  mac=$(printf '52:54:00:d5:%02x:%02x' "$slot" $((11 + index)))
  rm -f "$run/$name.qcow2"
  qemu-img create -q -f qcow2 -F qcow2 -b "$image/base.qcow2" "$run/$name.qcow2"
  qemu-system-x86_64 \
    -name "dcaas-nfs-$name" -nodefaults -no-user-config -display none \
    -machine q35 -accel tcg,thread=multi,tb-size=256 -cpu max -smp "$cpus" -m "$memory" \
    -kernel "$image/vmlinuz" -initrd "$image/initrd.img" \
    -append "root=LABEL=dcaas-root ro console=ttyS0 net.ifnames=0" \
    -drive "file=$run/$name.qcow2,format=qcow2,if=virtio,cache=unsafe,discard=unmap" \
    -drive "file=$run/$name.seed.img,format=raw,if=virtio,readonly=on" \
    -netdev "tap,id=net0,ifname=$tap,script=no,downscript=no" \
    -device "virtio-net-pci,netdev=net0,mac=$mac" \
    -device virtio-rng-pci \
    -serial "file:$run/$name.console" \
    -daemonize -pidfile "$run/$name.pid"
  log "started $name ($net.$((11 + index)), pid $(<"$run/$name.pid"), ${memory} MB, $cpus vCPU)"
}

# Waits for ssh and cloud-init. QEMU 7.2's multi-threaded TCG very rarely
# segfaults while a guest boots (about once in 30 boots here, never twice in
# a row); such a VM is relaunched from a fresh overlay, once.
wait_ssh() {
  local run=$1 name=$2 index=$3 image=$4 start=$5 addr=$net.$((11 + $3)) relaunched=0
  until ssh "${ssh_opts[@]}" -i "$run/id_ed25519" "root@$addr" true 2>/dev/null; do
    if ! live_qemu_pid "$run/$name.pid" >/dev/null; then
      tail -n 30 "$run/$name.console" >&2
      ((relaunched)) && die "QEMU of $name exited twice; console above ($run/$name.console)"
      log "warning: QEMU of $name exited during boot (console above); relaunching it once"
      mv "$run/$name.console" "$run/$name.console.1"
      launch_vm "$run" "$name" "$index" "$image"
      relaunched=1
    fi
    ((SECONDS - start < boot_timeout)) || {
      tail -n 30 "$run/$name.console" >&2
      die "$name did not answer ssh on $addr within $boot_timeout s; console above"
    }
    sleep 2
  done
  log "$name answers ssh after $((SECONDS - start)) s"
  # cloud-init may still be writing /etc/hosts or host keys; Ansible must not race it.
  ssh "${ssh_opts[@]}" -i "$run/id_ed25519" "root@$addr" cloud-init status --wait >/dev/null ||
    die "cloud-init failed on $name; see 'cloud-init status --long' there"
  log "$name ready after $((SECONDS - start)) s"
}

up() {
  local run=$1
  shift
  (($#)) || die "name at least one VM"
  ((EUID == 0)) || die "run as root (bridge and tap devices)"
  command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 not found; run hack/vm/setup.sh"
  mkdir -p "$run" "$state"
  run=$(cd "$run" && pwd)
  local image name i start pids=()
  image=$("$here/build-image.sh" | tail -n 1)

  rm -f "$run/id_ed25519" "$run/id_ed25519.pub" "$run/hosts" "$run/taps" "$run/slot"
  echo $$ >"$run/up.lock"
  # Whatever fails from here on leaves nothing running.
  trap 'down "$run"; rm -f "$run/up.lock"' EXIT
  # Only picking a slot is serialized; the VMs of several runs boot at once.
  exec 9>"$state/lock"
  flock -w 60 9 || die "could not lock $state/lock within 60 s"
  claim_slot "$run"
  exec 9>&-
  echo "$net.0/24" >"$run/network"

  ssh-keygen -q -t ed25519 -N '' -C "dcaas-nfs-vm $(basename "$run")" -f "$run/id_ed25519"
  : >"$run/hosts"
  {
    echo "Host *"
    echo "  User root"
    echo "  IdentityFile $run/id_ed25519"
    echo "  StrictHostKeyChecking no"
    echo "  UserKnownHostsFile /dev/null"
    echo "  LogLevel ERROR"
  } >"$run/ssh_config"
  start=$SECONDS
  i=0
  for name in "$@"; do
    prepare_vm "$run" "$name" "$i"
    launch_vm "$run" "$name" "$i" "$image"
    echo "$name $net.$((11 + i))" >>"$run/hosts"
    printf 'Host %s\n  HostName %s\n' "$name" "$net.$((11 + i))" >>"$run/ssh_config"
    i=$((i + 1))
  done
  # The VMs boot in parallel; wait for all of them.
  i=0
  for name in "$@"; do
    wait_ssh "$run" "$name" "$i" "$image" "$start" &
    pids+=($!)
    i=$((i + 1))
  done
  for i in "${pids[@]}"; do wait "$i" || die "a VM did not come up"; done
  trap - EXIT
  rm -f "$run/up.lock"
  log "$# VM(s) ready in $((SECONDS - start)) s; ssh -F $run/ssh_config <name>"
}

case ${1:-} in
  up) shift; [[ $# -ge 2 ]] || { usage >&2; exit 2; }; up "$@" ;;
  down) [[ $# -eq 2 ]] || { usage >&2; exit 2; }; down "$(cd "$2" && pwd)" ;;
  -h | --help) usage ;;
  *) usage >&2; exit 2 ;;
esac
