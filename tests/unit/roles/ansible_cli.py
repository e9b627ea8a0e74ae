"""Run this venv's Ansible commands on this repository's collection."""

from __future__ import annotations

import os
import subprocess
import sys

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, os.pardir))


def run_ansible(tool: str, *args: str, timeout: float = 300, check: bool = False) -> subprocess.CompletedProcess:
    """``ansible`` or ``ansible-playbook`` from the repository root, with the collection on its path."""
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, "build", "collections"))
    return subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), tool), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=check,
    )
