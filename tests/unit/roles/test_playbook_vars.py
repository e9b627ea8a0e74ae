"""Variables the reference playbooks hand to the roles, checked against the
engine configuration they come from."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
ENGINE_CONFIG = "hostvars['localhost'].dcaas_engine_config"


def head_plays(playbook: str) -> list[dict]:
    with open(os.path.join(REPO, "playbooks", playbook), encoding="utf-8") as fh:
        plays = yaml.safe_load(fh)
    return [p for p in plays if "head_node_cloud_resources" in (p.get("vars") or {})]


@pytest.mark.parametrize("playbook", ["basic.yml", "advanced.yml"])
def test_placeholders_are_sized_as_the_engine_sizes_workers(playbook):
    # The FUTURE placeholders' RealMemory must be what the engine registers
    # for a real worker: memory_mb minus wlm.options.memory_reserve_mb.
    plays = head_plays(playbook)
    assert plays, f"{playbook}: no play gives the head node its cloud resources"
    for play in plays:
        reserve = play["vars"].get("head_node_cloud_memory_reserve_mb", "")
        assert f"{ENGINE_CONFIG}.wlm.options.memory_reserve_mb" in reserve, play["name"]


def test_the_advanced_inventory_reserve_reaches_the_placeholders():
    # Render the playbook's expression against the Advanced inventory (the
    # engine_config filter stands in for the preflight that sets it).
    expr = head_plays("advanced.yml")[0]["vars"]["head_node_cloud_memory_reserve_mb"]
    expr = expr.replace(ENGINE_CONFIG, "(dcaas_engine | dcaas.cluster.engine_config)")
    with open(os.path.join(REPO, "inventories/advanced/group_vars/all/cluster.yml"), encoding="utf-8") as fh:
        expected = yaml.safe_load(fh)["dcaas_engine"]["wlm"]["options"]["memory_reserve_mb"]
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, "build", "collections"))
    ansible = os.path.join(os.path.dirname(sys.executable), "ansible")
    out = subprocess.run(
        [ansible, "localhost", "-i", "inventories/advanced", "-m", "debug", "-a", f"msg={expr}"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert expected > 0
    assert f"msg: {expected}" in out or f'"msg": "{expected}"' in out, out
