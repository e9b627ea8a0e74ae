"""Every role documents every default in meta/argument_specs.yml, and nothing more.

The same check prometheus.prometheus runs in CI: the key set of
defaults/main.yml must equal the option set of the main entry point.
Private variables (leading underscore) live in vars/ and are not options.
"""

from __future__ import annotations

import os

import pytest
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), *[os.pardir] * 3))
ROLES = os.path.join(ROOT, "roles")
ROLE_NAMES = (
    sorted(d for d in os.listdir(ROLES) if os.path.isdir(os.path.join(ROLES, d))) if os.path.isdir(ROLES) else []
)


def _load(path: str) -> dict:
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh) or {}


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_role_has_argument_specs_matching_defaults(role):
    spec_path = os.path.join(ROLES, role, "meta", "argument_specs.yml")
    assert os.path.isfile(spec_path), f"roles/{role}: meta/argument_specs.yml is missing"
    options = (_load(spec_path).get("argument_specs", {}).get("main") or {}).get("options") or {}
    defaults_path = os.path.join(ROLES, role, "defaults", "main.yml")
    defaults = _load(defaults_path) if os.path.isfile(defaults_path) else {}
    missing = sorted(set(defaults) - set(options))
    extra = sorted(k for k in set(options) - set(defaults) if not options[k].get("required"))
    assert not missing, f"roles/{role}: defaults not documented in argument_specs: {missing}"
    assert not extra, f"roles/{role}: optional argument_specs options without a default: {extra}"
    for name, opt in options.items():
        assert opt.get("description"), f"roles/{role}: option {name} has no description"
        if name in defaults and "default" in opt:
            assert opt["default"] == defaults[name], f"roles/{role}: {name} default differs from defaults/main.yml"


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_role_has_readme(role):
    assert os.path.isfile(os.path.join(ROLES, role, "README.md")), f"roles/{role}: README.md is missing"
