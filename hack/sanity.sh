#!/usr/bin/env bash
# ansible-test sanity on a copy of the collection: ansible-test insists on
# running inside .../ansible_collections/<namespace>/<name>, and only on
# files git knows about. Its --venv mode downloads a pip bootstrap from a
# host outside the package registries, so the tests run --local in a venv
# of their own (.venv-sanity) holding ansible-test's pinned requirements.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
core=$(grep -E '^ansible-core==' requirements-dev.txt)
venv=$root/.venv-sanity
stamp=$venv/.stamp-$core
if [[ ! -f $stamp ]]; then
  echo "[sanity] preparing $venv ($core and ansible-test's requirements)"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip
  "$venv/bin/pip" install -q "$core"
  reqs=$("$venv/bin/python" -c 'import ansible_test, os; print(os.path.join(os.path.dirname(ansible_test.__file__), "_data", "requirements"))')
  for f in "$reqs"/sanity.*.txt; do
    "$venv/bin/pip" install -q -r "$f" >/dev/null 2>&1 || echo "[sanity] note: could not install $(basename "$f")"
  done
  touch "$stamp"
fi
# ansible-test bootstraps pip in each per-test venv with a script from a
# host we cannot reach; it uses a cached copy when there is one.
pip_version=$("$venv/bin/python" - <<'PY'
import re, ansible_test, os
src = open(os.path.join(os.path.dirname(ansible_test.__file__), "_internal", "python_requirements.py")).read()
print(re.search(r"pip='([0-9.]+)'", src).group(1))
PY
)
cache=$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py
mkdir -p "$(dirname "$cache")"
cmp -s hack/ansible_test_get_pip.py "$cache" || cp hack/ansible_test_get_pip.py "$cache"

dest=build/sanity/ansible_collections/dcaas/cluster
rm -rf build/sanity
mkdir -p "$dest"
git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$dest"/
cd "$dest"
git init -q . && git add -A >/dev/null
echo "[sanity] ansible-test sanity in $dest"
PATH=$venv/bin:$PATH "$venv/bin/ansible-test" sanity --local --python 3.11 --color no "$@"
