"""Make ``tools.sim`` (and, when not installed, the collection) importable."""

from __future__ import annotations

import importlib.util
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)
try:
    INSTALLED = importlib.util.find_spec("ansible_collections.dcaas.cluster") is not None
except ImportError:
    INSTALLED = False
if not INSTALLED:
    sys.path.insert(0, os.path.join(REPO, "build", "collections"))
# The shared builders (sim_helpers) live next to the tests.
HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
