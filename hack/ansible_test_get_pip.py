"""Pip bootstrap for ansible-test's per-test virtual environments.

ansible-test installs pip into each empty venv with a bootstrap script that
it downloads from a host outside the package registries, which this
workplace cannot reach. It looks for that script in its cache first, so
hack/sanity.sh puts this one there: it installs Python's bundled pip with
the standard library's ensurepip, then asks that pip (from PyPI) for exactly
the packages ansible-test requested.
"""

from __future__ import annotations

import subprocess
import sys

# Flags the original bootstrap understands and plain pip does not.
BOOTSTRAP_ONLY = {"--no-setuptools", "--no-wheel"}


def main() -> int:
    args = [a for a in sys.argv[1:] if a not in BOOTSTRAP_ONLY]
    subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"], stdout=subprocess.DEVNULL)
    return subprocess.call([sys.executable, "-m", "pip", "install", "--quiet", *args])


if __name__ == "__main__":
    sys.exit(main())
