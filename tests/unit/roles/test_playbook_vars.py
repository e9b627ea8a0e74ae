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


WLM_VARS = "vars/wlm.yml"
# The plays that apply the WLM roles, by playbook: each loads the one wiring file.
WLM_PLAYS = {
    "basic.yml": ["head"],
    "advanced.yml": ["head", "static_workers"],
    "bake_worker.yml": ["dcaas_bake"],
}


def plays(playbook: str) -> list[dict]:
    with open(os.path.join(REPO, "playbooks", playbook), encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def wiring() -> dict:
    with open(os.path.join(REPO, "playbooks", WLM_VARS), encoding="utf-8") as fh:
        return yaml.safe_load(fh)


@pytest.mark.parametrize("playbook", sorted(WLM_PLAYS))
def test_every_wlm_play_loads_the_one_wiring_and_repeats_none_of_it(playbook):
    by_hosts = {p.get("hosts"): p for p in plays(playbook) if "hosts" in p}
    names = set(wiring())
    for hosts in WLM_PLAYS[playbook]:
        play = by_hosts[hosts]
        assert WLM_VARS in (play.get("vars_files") or []), (playbook, hosts)
        assert not names & set(play.get("vars") or {}), (playbook, hosts, names & set(play.get("vars") or {}))


def test_no_playbook_writes_a_port_or_a_feature_of_its_own():
    # Ports come from the engine's wlm.options; features from the naming filter.
    for name in sorted(os.listdir(os.path.join(REPO, "playbooks"))):
        if name.endswith(".yml"):
            with open(os.path.join(REPO, "playbooks", name), encoding="utf-8") as fh:
                text = fh.read()
            assert not re.search(r":6817|'dcaas'", text), name


def test_placeholders_are_sized_as_the_engine_sizes_workers():
    # The FUTURE placeholders' RealMemory must be what the engine registers
    # for a real worker: memory_mb minus wlm.options.memory_reserve_mb.
    assert f"{ENGINE_CONFIG}.wlm.options.memory_reserve_mb" in wiring()["head_node_cloud_memory_reserve_mb"]


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
    expr = wiring()["head_node_cloud_memory_reserve_mb"]
    expected = advanced_inventory()["dcaas_engine"]["wlm"]["options"]["memory_reserve_mb"]
    assert expected > 0
    assert evaluate_on_the_advanced_inventory([expr]) == [expected]


def test_the_head_node_knows_the_workers_as_the_engine_runs_them():
    # wlm.nodes decides dynamic or cloud nodes; cloud nodes are named after the
    # engine's cluster; the WLM gives up on a booting node only after the engine has.
    for name, sources in NODE_SETTINGS.items():
        value = wiring()[name]
        assert all(source in value for source in sources), (name, value)


def test_the_advanced_inventory_node_settings_reach_the_head_node():
    play_vars = wiring()
    inventory = advanced_inventory()
    timers = inventory["dcaas_timers"]
    # The inventory leaves wlm.nodes to the engine's default.
    assert "nodes" not in inventory["dcaas_engine"]["wlm"]
    expected = ["dynamic", inventory["dcaas_cluster"], timers["boot_timeout"] + timers["interval"]]
    assert expected[2] == 930
    assert evaluate_on_the_advanced_inventory([play_vars[name] for name in NODE_SETTINGS]) == expected


def test_static_workers_join_where_the_engines_workers_join():
    inventory = advanced_inventory()
    conf_server = inventory["dcaas_engine"]["wlm"]["options"]["conf_server"]
    expected = conf_server.replace("{{ dcaas_head }}", inventory["dcaas_head"])
    assert evaluate_on_the_advanced_inventory([wiring()["worker_conf_server"], wiring()["dcaas_wlm"]]) == [
        expected,
        "slurm",
    ]
