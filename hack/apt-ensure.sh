# shellcheck shell=bash
# apt_ensure PACKAGE...: install the packages that are missing, quietly; a
# host that has them all is left alone without touching apt's lists.
# Sourced by hack/setup-host.sh and hack/vm/setup.sh (which define log()).
apt_ensure() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  if ((${#missing[@]} == 0)); then
    log "apt packages present"
    return 0
  fi
  log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
