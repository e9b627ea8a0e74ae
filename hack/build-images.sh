#!/usr/bin/env bash
# Build dcaas.cluster's container images locally, without any registry:
#
#   localhost/dcaas/rootfs:bookworm        debootstrap minbase, podman import
#   localhost/dcaas/base:bookworm          systemd as PID 1 (images/base)
#   localhost/dcaas/slurm-head:bookworm    slurmctld + munge    (images/slurm-head)
#   localhost/dcaas/slurm-worker:bookworm  slurmd + cloud-init  (images/slurm-worker)
#   localhost/dcaas/head-packages:bookworm    } base + the packages the roles install,
#   localhost/dcaas/worker-packages:bookworm  } unconfigured (images/packages)
#   localhost/dcaas/head-packages-gridengine:bookworm    } the same for Grid Engine;
#   localhost/dcaas/worker-packages-gridengine:bookworm  } only when named
#
# Idempotent: every image carries the label dcaas.build-hash, a hash of its
# build inputs and of its parent's hash, and is skipped when an image with
# that label already exists. The debootstrap rootfs tarball is cached under
# /var/cache/dcaas, so rebuilding after a Containerfile change does not
# bootstrap Debian again.
#
# Usage: hack/build-images.sh [--force] [image ...]
#        (image: base, slurm-head, slurm-worker, head-packages, worker-packages,
#        head-packages-gridengine, worker-packages-gridengine; without a name,
#        the first five: the Grid Engine images are built for what names them)
# Environment: DCAAS_DEBIAN_MIRROR, DCAAS_DEBIAN_SECURITY_MIRROR (default: this host's apt
#              sources), DCAAS_CACHE_DIR (default /var/cache/dcaas).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
images_dir=$repo/images
cache=${DCAAS_CACHE_DIR:-/var/cache/dcaas}
suite=bookworm
# debootstrap's minbase plus what every image needs to boot systemd and run
# the engine; the variant's own package set is left to debootstrap.
rootfs_packages=systemd,systemd-sysv,dbus,python3,python3-yaml,iproute2,procps,ca-certificates,netbase,less
start_all=$SECONDS

log() { printf '\033[1m[images]\033[0m %s\n' "$*"; }
die() { printf '\033[1;31m[images] error:\033[0m %s\n' "$*" >&2; exit 1; }

force=0
targets=()
for arg in "$@"; do
  case $arg in
    --force) force=1 ;;
    base | slurm-head | slurm-worker | head-packages | worker-packages) targets+=("$arg") ;;
    head-packages-gridengine | worker-packages-gridengine) targets+=("$arg") ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$arg'; known images: base, slurm-head, slurm-worker, head-packages, worker-packages, head-packages-gridengine, worker-packages-gridengine" ;;
  esac
done
((${#targets[@]})) || targets=(base slurm-head slurm-worker head-packages worker-packages)

((EUID == 0)) || die "run as root (debootstrap and rootful podman need it)"
for tool in podman debootstrap sha256sum; do
  command -v "$tool" >/dev/null || die "$tool not found; run hack/setup-host.sh first"
done

# The mirror this host's apt uses: the build must work where only that
# mirror is reachable (CI behind a proxy or a snapshot mirror).
host_mirror() {
  local want=$1 uri
  uri=$(awk -v want="$want" '
      /^URIs:/ { uri = $2 }
      /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == want) { print uri; exit } }
    ' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  if [[ -z $uri ]] && [[ -f /etc/apt/sources.list ]]; then
    uri=$(awk -v want="$want" '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^(http|https|ftp|file):/ && $(i + 1) == want) { print $i; exit } }' /etc/apt/sources.list)
  fi
  printf '%s' "$uri"
}
mirror=${DCAAS_DEBIAN_MIRROR:-$(host_mirror "$suite")}
mirror=${mirror:-http://deb.debian.org/debian}
security_mirror=${DCAAS_DEBIAN_SECURITY_MIRROR:-$(host_mirror "$suite-security")}
security_mirror=${security_mirror:-http://deb.debian.org/debian-security}

mkdir -p "$cache"
# Two builds at once (developer plus CI, or two test sessions) would race on
# the same tags and tarball.
exec 9>"$cache/build.lock"
flock -w 1800 9 || die "another build-images.sh holds $cache/build.lock for more than 30 minutes"

image_hash() { podman image inspect --format '{{ index .Labels "dcaas.build-hash" }}' "$1" 2>/dev/null || true; }

# Hash of a directory's files (names, modes and contents) plus extra strings.
inputs_hash() {
  local dir=$1
  shift
  {
    printf '%s\n' "$@"
    (cd "$dir" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 stat -c '%n %a' && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
  } | sha256sum | cut -c1-16
}

# --- rootfs: debootstrap -> tarball (cached) -> podman import ---------------
rootfs_tag=localhost/dcaas/rootfs:$suite

build_rootfs() {
  if ((force == 0)) && [[ $(image_hash "$rootfs_tag") == "$rootfs_hash" ]]; then
    log "rootfs: $rootfs_tag is current ($rootfs_hash)"
    return
  fi
  if [[ ! -s $tarball ]] || ((force)); then
    local t0=$SECONDS dir
    dir=$(mktemp -d "$cache/debootstrap.XXXXXX")
    # shellcheck disable=SC2064  # expand now: the trap must remove this dir
    trap "rm -rf '$dir'" EXIT
    log "rootfs: debootstrap $suite minbase from $mirror (takes a few minutes; log: $cache/debootstrap.log)"
    mkdir -p "$cache/debs"
    if ! debootstrap --variant=minbase --include="$rootfs_packages" --cache-dir="$cache/debs" \
      "$suite" "$dir" "$mirror" >"$cache/debootstrap.log" 2>&1; then
      tail -20 "$cache/debootstrap.log" >&2
      die "debootstrap failed; see $cache/debootstrap.log"
    fi
    # apt lists and .debs are stale by the time the image is used, and the
    # documentation is what images/base excludes from later installs anyway.
    rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin "$dir"/var/cache/apt/archives/*.deb \
      "$dir"/usr/share/man "$dir"/usr/share/info
    find "$dir/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete
    find "$dir/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
    # A stale tarball of older inputs is never used again.
    rm -f "$cache"/rootfs-"$suite"-*.tar
    log "rootfs: packing $tarball"
    tar --numeric-owner --xattrs --acls -C "$dir" -cf "$tarball.part" .
    mv "$tarball.part" "$tarball"
    rm -rf "$dir"
    trap - EXIT
    log "rootfs: debootstrap done in $((SECONDS - t0)) s"
  else
    log "rootfs: using cached $tarball"
  fi
  local old_id
  old_id=$(podman image inspect --format '{{.Id}}' "$rootfs_tag" 2>/dev/null || true)
  log "rootfs: podman import -> $rootfs_tag"
  podman import -q --change "LABEL dcaas.build-hash=$rootfs_hash" --change 'CMD ["/bin/bash"]' \
    "$tarball" "$rootfs_tag" >/dev/null
  remove_replaced "$old_id" "$rootfs_tag"
}

# The image a rebuild replaced is left untagged; remove it unless something
# (a container, a derived image) still uses it, in which case rmi refuses.
remove_replaced() {
  local old_id=$1 tag=$2
  [[ -n $old_id ]] || return 0
  [[ $(podman image inspect --format '{{.Id}}' "$tag" 2>/dev/null) != "$old_id" ]] || return 0
  podman rmi "$old_id" >/dev/null 2>&1 || true
}

# --- images built with podman build ----------------------------------------
# build NAME PARENT_HASH [--build-arg ...]: prints nothing, sets built_hash.
# The build context is images/NAME, or images/$context when that is set.
build_image() {
  local name=$1 parent_hash=$2
  shift 2
  local dir=$images_dir/${context:-$name} tag=localhost/dcaas/$name:$suite hash t0=$SECONDS
  [[ -f $dir/Containerfile ]] || die "$dir/Containerfile is missing"
  hash=$(inputs_hash "$dir" "$parent_hash" "$@")
  built_hash=$hash
  if ((force == 0)) && [[ $(image_hash "$tag") == "$hash" ]]; then
    log "$name: $tag is current ($hash)"
    return
  fi
  local old_id
  old_id=$(podman image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)
  log "$name: building $tag ($hash; log: $cache/build-$name.log)"
  if ! podman build --pull=never --layers=false --label "dcaas.build-hash=$hash" \
    --label "dcaas.image=$name" "$@" -t "$tag" -f "$dir/Containerfile" "$dir" >"$cache/build-$name.log" 2>&1; then
    tail -30 "$cache/build-$name.log" >&2
    die "podman build of $name failed; see $cache/build-$name.log"
  fi
  remove_replaced "$old_id" "$tag"
  log "$name: built in $((SECONDS - t0)) s"
}

want() { [[ " ${targets[*]} " == *" $1 "* ]]; }

# The recipe itself (this function's text) is an input: changing how the
# rootfs is trimmed must produce a new tarball.
rootfs_hash=$(printf '%s\n' "$suite" "$mirror" "$rootfs_packages" "$(debootstrap --version)" "$(declare -f build_rootfs)" |
  sha256sum | cut -c1-16)
tarball=$cache/rootfs-$suite-$rootfs_hash.tar

# Children depend on their parents, so a requested child builds its parents too.
build_rootfs
build_image base "$rootfs_hash" --build-arg "ROOTFS=$rootfs_tag" \
  --build-arg "DEBIAN_MIRROR=$mirror" --build-arg "DEBIAN_SECURITY_MIRROR=$security_mirror"
base_hash=$built_hash
if want slurm-head; then build_image slurm-head "$base_hash"; fi
if want slurm-worker; then build_image slurm-worker "$base_hash"; fi

# The packages the roles install (vars/Debian.yml, or vars/<wlm>/ for a
# workload manager's part; item role:file:key), so that hosts and worker
# images made from these skip the downloads; the lists are read, not copied,
# and are part of the image's hash.
role_packages() {
  local py=$repo/.venv/bin/python
  [[ -x $py ]] || py=python3
  "$py" - "$repo/roles" "$@" <<'PY'
import sys, yaml
roles_dir, wanted = sys.argv[1], sys.argv[2:]
names = []
for item in wanted:
    role, path, key = item.split(":")
    with open(f"{roles_dir}/{role}/vars/{path}", encoding="utf-8") as fh:
        value = (yaml.safe_load(fh) or {}).get(key)
    if not isinstance(value, list):
        sys.exit(f"roles/{role}/vars/{path}: {key} is not a list of packages")
    names += [n for n in value if n not in names]
print(" ".join(names))
PY
}
# One pair of package images per workload manager, from that WLM's lists;
# Slurm's keep their names (head-packages, worker-packages).
build_packages() {
  local wlm=$1 suffix=$2 pkgs common_vars
  common_vars=(common:"$wlm"/main.yml:_common_wlm_packages common:Debian.yml:_common_chrony_packages
    ldap_client:Debian.yml:_ldap_client_packages)
  if want "head-packages$suffix"; then
    pkgs=$(role_packages "${common_vars[@]}" head_node:"$wlm"/Debian.yml:_head_node_packages \
      ldap_server:Debian.yml:_ldap_server_packages dynamic_cluster:Debian.yml:_dynamic_cluster_os_packages)
    context=packages build_image "head-packages$suffix" "$base_hash" --build-arg "PACKAGES=$pkgs"
  fi
  if want "worker-packages$suffix"; then
    pkgs=$(role_packages "${common_vars[@]}" worker:"$wlm"/Debian.yml:_worker_wlm_packages \
      worker:main.yml:_worker_cloud_init_packages)
    context=packages build_image "worker-packages$suffix" "$base_hash" --build-arg "PACKAGES=$pkgs"
  fi
}
build_packages slurm ""
build_packages gridengine -gridengine

log "done in $((SECONDS - start_all)) s"
