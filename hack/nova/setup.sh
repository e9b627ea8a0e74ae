#!/usr/bin/env bash
# Create .venv-nova, the separate venv that runs a real Nova for the tests
# (tests/fixtures/nova.py starts hack/nova/serve.py with its interpreter).
#
# Idempotent and quick when nothing changed: the venv records the checksum
# of the requirements it was built from and is rebuilt only when they
# change or the venv does not work. Usage:
#   hack/nova/setup.sh            # create or update
#   PYTHON=python3.11 hack/nova/setup.sh
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
VENV="${NOVA_VENV:-$ROOT/.venv-nova}"
REQS="$HERE/requirements.txt"
STAMP="$VENV/.dcaas-requirements.sha256"
PYTHON="${PYTHON:-python3}"

log() { printf '\033[1m[nova-venv]\033[0m %s\n' "$*"; }

want="$(sha256sum "$REQS" | cut -d' ' -f1)"
# The import check catches a venv whose interpreter went away (pyenv
# rebuilt, copied tree) even when the stamp matches.
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]] &&
  "$VENV/bin/python" -c 'import nova, placement, wsgi_intercept, oslotest' 2>/dev/null; then
  log "$VENV is up to date"
  exit 0
fi

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  log "warning: the pins in $REQS are for Python 3.11; $("$PYTHON" -V 2>&1) may not resolve them"
fi

log "building $VENV from $REQS"
rm -f "$STAMP"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQS"
"$VENV/bin/python" -c 'import nova, placement, wsgi_intercept, oslotest'
printf '%s\n' "$want" >"$STAMP"
log "done: $("$VENV/bin/python" -m pip freeze 2>/dev/null | grep -E '^(nova|openstack-placement)==' | tr '\n' ' ')"
