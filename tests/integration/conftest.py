"""Fixtures for the integration tests: a real Slurm cluster in podman (slurm_env)."""

from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

# The fixtures come from slurm_env; pytest finds them through this plugin.
pytest_plugins = ["slurm_env"]
