"""Grouping and host variables of the dynamic_cluster inventory plugin.

The plugin is split into _fetch (observe the cluster through the engine) and
_populate (pure: data -> inventory); this tests _populate with real
InventoryData and the plugin's real option handling. Fetching from a live
cluster is covered by the integration test.
"""

from __future__ import annotations

import pytest
from ansible import constants as C
from ansible.inventory.data import InventoryData
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import fragment_loader
from ansible.template import Templar, trust_as_template
from ansible.utils.plugin_docs import get_docstring

from ansible_collections.dcaas.cluster.plugins.inventory import dynamic_cluster
from ansible_collections.dcaas.cluster.plugins.inventory.dynamic_cluster import InventoryModule, group_name

DATA = {
    "cluster": "demo",
    "pending_jobs": 3,
    "running_jobs": 1,
    "unfit_jobs": [{"job": "9", "reason": "needs 64 cores"}],
    "nodes": [
        {
            "name": "demo-small-aaa",
            "resource": "small",
            "state": "busy",
            "jobs": ["5"],
            "address": "10.89.0.5",
            "zone": "az-a",
            "tenant": "chem",
            "instance_id": "c1",
            "cores": 2,
            "memory_mb": 2048,
            "reason": None,
        },
        {
            "name": "demo-small-bbb",
            "resource": "small",
            "state": "starting",
            "jobs": [],
            "address": None,
            "zone": None,
            "tenant": None,
            "instance_id": "c2",
            "cores": 2,
            "memory_mb": 2048,
            "reason": None,
        },
    ],
}


@pytest.fixture
def plugin():
    # What the plugin loader does: register the documented options (with
    # the constructed and inventory_cache fragments) under the plugin's name.
    doc = get_docstring(dynamic_cluster.__file__, fragment_loader)[0]
    C.config.initialize_plugin_configuration_definitions("inventory", InventoryModule.NAME, doc["options"])
    p = InventoryModule()
    p._load_name = InventoryModule.NAME
    p.inventory = InventoryData()
    p.templar = Templar(loader=DataLoader())
    # Expressions read from an inventory file are trusted templates; say so here too.
    p.set_options(
        direct={
            "plugin": p.NAME,
            "config": {},
            "keyed_groups": [{"key": trust_as_template("dcaas_resource"), "prefix": "flavor_of"}],
        }
    )
    return p


def test_groups_and_hostvars(plugin):
    plugin._populate(DATA)
    inv = plugin.inventory
    assert set(inv.groups["dcaas_demo"].get_hosts()) == {inv.hosts["demo-small-aaa"], inv.hosts["demo-small-bbb"]}
    assert [h.name for h in inv.groups["dcaas_state_busy"].get_hosts()] == ["demo-small-aaa"]
    assert [h.name for h in inv.groups["dcaas_state_starting"].get_hosts()] == ["demo-small-bbb"]
    assert len(inv.groups["dcaas_resource_small"].get_hosts()) == 2
    assert [h.name for h in inv.groups["dcaas_zone_az_a"].get_hosts()] == ["demo-small-aaa"]
    assert [h.name for h in inv.groups["dcaas_tenant_chem"].get_hosts()] == ["demo-small-aaa"]
    assert "flavor_of_small" in inv.groups, sorted(inv.groups)  # keyed_groups (Constructable) work
    aaa = inv.hosts["demo-small-aaa"].vars
    assert aaa["ansible_host"] == "10.89.0.5" and aaa["dcaas_jobs"] == ["5"] and aaa["dcaas_state"] == "busy"
    assert "ansible_host" not in inv.hosts["demo-small-bbb"].vars
    assert inv.groups["dcaas_demo"].vars["dcaas_unfit_jobs"] == DATA["unfit_jobs"]


def test_cloud_nodes_that_are_off_are_not_hosts(plugin):
    off = {**DATA["nodes"][1], "name": "demo-small-3", "state": "off", "instance_id": None}
    plugin._populate({**DATA, "nodes": [*DATA["nodes"], off]})
    assert "demo-small-3" not in plugin.inventory.hosts and "demo-small-aaa" in plugin.inventory.hosts


def test_group_names_are_safe():
    assert group_name("zone", "eu-west.1") == "dcaas_zone_eu_west_1"


def test_verify_file_wants_the_plugin_suffix(tmp_path, plugin):
    good = tmp_path / "dynamic_cluster.yml"
    good.write_text("plugin: dcaas.cluster.dynamic_cluster\n")
    other = tmp_path / "hosts.yml"
    other.write_text("all: {}\n")
    assert plugin.verify_file(str(good)) and not plugin.verify_file(str(other))
