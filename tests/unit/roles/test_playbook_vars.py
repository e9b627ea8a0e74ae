"""Variables the reference playbooks hand to the roles, checked against the
engine configuration they come from."""

from __future__ import annotations

import base64
import json
import os
import re

import pytest
import yaml
from ansible_cli import run_ansible

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


# What the head node is told about how the engine's workers join Slurm, and
# where in the validated engine configuration each comes from.
NODE_SETTINGS = {
    "head_node_cloud_nodes": [f"{ENGINE_CONFIG}.wlm.nodes"],
    "head_node_cloud_node_prefix": [f"{ENGINE_CONFIG}.cluster"],
    # Slurm's ResumeTimeout: the engine's own boot timeout must act first.
    "head_node_cloud_resume_timeout": [f"{ENGINE_CONFIG}.timers.boot_timeout", f"{ENGINE_CONFIG}.timers.interval"],
}


def evaluate_on_the_advanced_inventory(expressions: list[str]) -> list:
    """Render the playbooks' "{{ ... }}" expressions against the Advanced inventory (the
    engine_config filter stands in for the preflight that sets dcaas_engine_config)."""
    inner = [" ".join(e.strip().removeprefix("{{").removesuffix("}}").split()) for e in expressions]
    inner = [e.replace(ENGINE_CONFIG, "(dcaas_engine | dcaas.cluster.engine_config)") for e in inner]
    # One k=v token (no blank outside the braces), one token in the output.
    msg = "RESULT:{{ [" + ", ".join(f"({e})" for e in inner) + "] | to_json | b64encode }}"
    out = run_ansible(
        "ansible", "localhost", "-i", "inventories/advanced", "-m", "debug", "-a", f"msg={msg}", timeout=120, check=True
    ).stdout
    found = re.search(r"RESULT:([A-Za-z0-9+/=]+)", out)
    assert found, out
    return json.loads(base64.b64decode(found.group(1)))


def advanced_inventory() -> dict:
    with open(os.path.join(REPO, "inventories/advanced/group_vars/all/cluster.yml"), encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def test_the_advanced_inventory_reserve_reaches_the_placeholders():
    expr = head_plays("advanced.yml")[0]["vars"]["head_node_cloud_memory_reserve_mb"]
    expected = advanced_inventory()["dcaas_engine"]["wlm"]["options"]["memory_reserve_mb"]
    assert expected > 0
    assert evaluate_on_the_advanced_inventory([expr]) == [expected]


@pytest.mark.parametrize("playbook", ["basic.yml", "advanced.yml"])
def test_the_head_node_knows_the_workers_as_the_engine_runs_them(playbook):
    # wlm.nodes decides dynamic or cloud nodes; cloud nodes are named after the
    # engine's cluster; Slurm gives up on a booting node only after the engine has.
    plays = head_plays(playbook)
    assert plays, f"{playbook}: no play gives the head node its cloud resources"
    for play in plays:
        for name, sources in NODE_SETTINGS.items():
            value = play["vars"].get(name, "")
            assert all(source in value for source in sources), (play["name"], name, value)


def test_both_playbooks_tell_the_head_node_the_same():
    basic, advanced = (head_plays(p)[0]["vars"] for p in ("basic.yml", "advanced.yml"))
    for name in [*NODE_SETTINGS, "head_node_cloud_resources", "head_node_cloud_memory_reserve_mb"]:
        assert basic.get(name) == advanced.get(name), name


def test_the_advanced_inventory_node_settings_reach_the_head_node():
    play_vars = head_plays("advanced.yml")[0]["vars"]
    inventory = advanced_inventory()
    timers = inventory["dcaas_timers"]
    # The inventory leaves wlm.nodes to the engine's default.
    assert "nodes" not in inventory["dcaas_engine"]["wlm"]
    expected = ["dynamic", inventory["dcaas_cluster"], timers["boot_timeout"] + timers["interval"]]
    assert expected[2] == 930
    assert evaluate_on_the_advanced_inventory([play_vars[name] for name in NODE_SETTINGS]) == expected
