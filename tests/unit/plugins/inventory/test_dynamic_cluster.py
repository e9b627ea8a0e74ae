"""Grouping and host variables of the dynamic_cluster inventory plugin.

The plugin is split into _fetch (observe the cluster through the engine) and
_populate (pure: data -> inventory); this tests _populate with real
InventoryData and the plugin's real option handling. Fetching from a live
cluster is covered by the integration test.
"""

from __future__ import annotations

import json

import pytest
from ansible import constants as C
from ansible.errors import AnsibleParserError
from ansible.inventory.data import InventoryData
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import fragment_loader
from ansible.template import Templar, trust_as_template
from ansible.utils.plugin_docs import get_docstring

from ansible_collections.dcaas.cluster.plugins.inventory import dynamic_cluster
from ansible_collections.dcaas.cluster.plugins.inventory.dynamic_cluster import InventoryModule, group_name
from ansible_collections.dcaas.cluster.plugins.module_utils.cloud.base import CloudError

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


# --- credentials ---------------------------------------------------------------
# Inventory options cannot be no_log: the plugin masks credentials itself.

MARKER = "dcaasmarker5f1e07c2"
SECRET_CONFIG = {
    "cluster": "demo",
    "cloud": {"provider": "openstack", "options": {"auth": {"username": "demo", "password": MARKER}}},
    "resources": [{"name": "small", "flavor": "m1", "image": "img", "cores": 2, "memory_mb": 2048}],
}


def quoting_the_password(cfg):
    # As an SDK might: an error that carries the credentials it was given.
    raise CloudError("transient", f"cannot reach https://demo:{MARKER}@keystone.example/v3")


def test_errors_and_warnings_never_quote_credentials(plugin, monkeypatch):
    monkeypatch.setattr(dynamic_cluster, "build_engine", quoting_the_password)
    plugin.set_options(direct={"plugin": plugin.NAME, "config": SECRET_CONFIG})
    with pytest.raises(AnsibleParserError) as err:
        plugin._fetch("dynamic_cluster.yml")
    assert "cannot reach https://demo:********@keystone.example/v3" in str(err.value)

    warnings = []
    monkeypatch.setattr(plugin.display, "warning", warnings.append)
    plugin.set_options(direct={"plugin": plugin.NAME, "config": SECRET_CONFIG, "fail_on_errors": False})
    assert plugin._fetch("dynamic_cluster.yml")["nodes"] == []
    assert len(warnings) == 1 and "demo:********@" in warnings[0], warnings


def test_credentials_of_a_config_file_are_masked_too(plugin, monkeypatch, tmp_path):
    (tmp_path / "engine.json").write_text(json.dumps(SECRET_CONFIG))
    monkeypatch.setattr(dynamic_cluster, "build_engine", quoting_the_password)
    plugin.set_options(direct={"plugin": plugin.NAME, "config_file": str(tmp_path / "engine.json")})
    with pytest.raises(AnsibleParserError) as err:
        plugin._fetch(str(tmp_path / "dynamic_cluster.yml"))
    assert "demo:********@" in str(err.value)


def test_a_config_that_is_not_a_mapping_is_not_quoted(plugin):
    plugin.set_options(direct={"plugin": plugin.NAME, "config": f"password: {MARKER}"})
    with pytest.raises(AnsibleParserError) as err:
        plugin._fetch("dynamic_cluster.yml")
    assert "the configuration must be a mapping" in str(err.value)
    assert MARKER not in str(err.value)


def test_bad_input_fails_even_at_best_effort(plugin, monkeypatch):
    # fail_on_errors: false is for a cloud or WLM that fails, not for options the cloud refuses.
    def refusing(cfg):
        raise CloudError("config", f"cloud.options.auth: unknown field; password {MARKER}")

    monkeypatch.setattr(dynamic_cluster, "build_engine", refusing)
    plugin.set_options(direct={"plugin": plugin.NAME, "config": SECRET_CONFIG, "fail_on_errors": False})
    with pytest.raises(AnsibleParserError) as err:
        plugin._fetch("dynamic_cluster.yml")
    assert str(err.value).startswith(f"{plugin.NAME}: cloud.options.auth: unknown field; password ********")


def test_a_bug_is_an_error_not_an_empty_inventory(plugin, monkeypatch):
    def broken(cfg):
        raise KeyError("nodes")

    monkeypatch.setattr(dynamic_cluster, "build_engine", broken)
    plugin.set_options(direct={"plugin": plugin.NAME, "config": SECRET_CONFIG, "fail_on_errors": False})
    with pytest.raises(AnsibleParserError) as err:
        plugin._fetch("dynamic_cluster.yml")
    assert f"{plugin.NAME}: cannot observe the cluster: KeyError: 'nodes'" in str(err.value)
