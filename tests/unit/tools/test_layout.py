"""Where the developer tools stand: the simulator uses the policy package
alone, and tools/ is not part of the collection that is shipped."""

from __future__ import annotations

import ast
import os

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
MODULE_UTILS = "ansible_collections.dcaas.cluster.plugins.module_utils"
# What a simulated controller may share with the engine: the policy and its inputs.
SIM_MAY_IMPORT = ("policy", "model", "config")


def _python_files(top: str) -> list[str]:
    found = []
    for directory, _dirs, files in os.walk(os.path.join(REPO, top)):
        found += [os.path.join(directory, f) for f in files if f.endswith(".py")]
    return sorted(found)


def _imported_modules(path: str) -> set[str]:
    with open(path, encoding="utf-8") as fh:
        tree = ast.parse(fh.read(), path)
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            # "from module_utils import config": the names are modules too.
            names.update(f"{node.module}.{alias.name}" for alias in node.names if node.module == MODULE_UTILS)
    return names


def test_tools_import_only_the_policy_package_and_its_inputs():
    wrong = {}
    for path in _python_files("tools"):
        for name in _imported_modules(path):
            if not name.startswith(MODULE_UTILS + "."):
                continue
            top = name[len(MODULE_UTILS) + 1 :].split(".")[0]
            if top not in SIM_MAY_IMPORT:
                wrong.setdefault(os.path.relpath(path, REPO), []).append(name)
    assert not wrong, f"tools import module_utils beyond {SIM_MAY_IMPORT}: {wrong}"


def test_the_collection_build_leaves_tools_out_and_nothing_shipped_needs_them():
    with open(os.path.join(REPO, "galaxy.yml"), encoding="utf-8") as fh:
        ignored = yaml.safe_load(fh)["build_ignore"]
    assert "tools" in ignored
    assert "tests/unit/tools" in ignored  # its tests import tools
    shipped = [p for top in ("plugins", "scripts", "roles") for p in _python_files(top)]
    users = [p for p in shipped if any(n == "tools" or n.startswith("tools.") for n in _imported_modules(p))]
    assert not users
