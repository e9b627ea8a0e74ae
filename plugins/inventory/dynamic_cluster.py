# Copyright: dcaas.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: dynamic_cluster
short_description: Live workers of a dynamic cluster, grouped by role, state, resource, zone and tenant
version_added: 0.1.0
description:
  - Lists the workers the Dynamic Cluster engine manages, as it sees them -
    cloud instances carrying this cluster's label joined with the workload
    manager's node state - and groups them. With cloud nodes (C(wlm.nodes=cloud)),
    nodes that are powered off have no instance and are not listed.
  - "Groups: C(dcaas_<cluster>) (all workers), C(dcaas_role_worker),
    C(dcaas_state_<state>) (starting, idle, busy, draining, down, deleting),
    C(dcaas_resource_<resource>), C(dcaas_zone_<zone>), C(dcaas_tenant_<tenant>)."
  - "Host variables: C(dcaas_state), C(dcaas_resource), C(dcaas_jobs),
    C(dcaas_zone), C(dcaas_tenant), C(dcaas_instance_id), C(dcaas_cores),
    C(dcaas_memory_mb), C(dcaas_reason), and C(ansible_host) when the node has an address.
    The cluster group carries C(dcaas_pending_jobs), C(dcaas_running_jobs) and
    C(dcaas_unfit_jobs) (jobs no resource can ever run, with the reason)."
  - The inventory file name must end in C(dynamic_cluster.yml) or C(dynamic_cluster.yaml).
author:
  - dcaas.cluster developers (@dcaas-cluster)
extends_documentation_fragment:
  - constructed
  - inventory_cache
options:
  plugin:
    description: Marks this as an inventory file for this plugin.
    required: true
    type: str
    choices: [dcaas.cluster.dynamic_cluster]
  config:
    description:
      - The engine configuration as a mapping (as for M(dcaas.cluster.scale)).
      - Inventory options cannot be C(no_log), so the plugin masks the values of credential keys
        (C(password), C(secret), C(token), C(key)...) in every error and warning it gives. The option is
        not type-checked by Ansible, which would quote a wrong value whole; the plugin checks that it is
        a mapping without quoting it.
    type: raw
  config_file:
    description:
      - Path to the engine configuration file (JSON or YAML) on the controller.
      - A relative path is taken relative to the inventory file.
    type: path
  fail_on_errors:
    description:
      - When V(false), a cluster that cannot be read gives an empty inventory and a warning
        instead of an error.
    type: bool
    default: true
"""

EXAMPLES = r"""
# inventories/local/dynamic_cluster.yml
plugin: dcaas.cluster.dynamic_cluster
config_file: engine.yml  # relative to this file
compose:
  ansible_connection: "'containers.podman.podman'"
keyed_groups:
  - key: dcaas_resource
    prefix: flavor_of
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: /tmp/dcaas-inventory-cache
cache_timeout: 30
"""

import os
import re

from ansible.errors import AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable
from ansible.utils.unsafe_proxy import wrap_var

from ansible_collections.dcaas.cluster.plugins.module_utils.frontend import build_engine, explain, load_config
from ansible_collections.dcaas.cluster.plugins.module_utils.redact import config_secrets, secret_values

_SAFE = re.compile(r"[^A-Za-z0-9_]")


def group_name(*parts: str) -> str:
    return _SAFE.sub("_", "_".join(["dcaas", *parts]))


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):
    NAME = "dcaas.cluster.dynamic_cluster"

    def verify_file(self, path: str) -> bool:
        return super().verify_file(path) and path.endswith(("dynamic_cluster.yml", "dynamic_cluster.yaml"))

    def _fetch(self, path: str) -> dict:
        """Observe the cluster once; the result is plain data so it can be cached."""
        config_file = self.get_option("config_file")
        if config_file and not os.path.isabs(config_file):
            config_file = os.path.join(os.path.dirname(os.path.abspath(path)), config_file)
        config = self.get_option("config")
        secrets = secret_values(config)
        try:
            cfg = load_config(config, config_file)
            secrets |= config_secrets(cfg)
            result = build_engine(cfg).run_once(check_mode=True)
        except Exception as exc:
            failure = explain(exc, secrets)
            message = f"{self.NAME}: {failure.message}"
            # Best effort covers a cloud or WLM that fails, not bad input nor a bug.
            if failure.user_input or failure.kind == "internal" or self.get_option("fail_on_errors"):
                raise AnsibleParserError(message) from None
            self.display.warning(message)
            return {"cluster": None, "nodes": [], "unfit_jobs": [], "pending_jobs": 0, "running_jobs": 0}
        out = result.to_dict()
        return {
            "cluster": cfg.cluster,
            "nodes": out["nodes"],
            "unfit_jobs": out["plan"]["unfit_jobs"],
            "pending_jobs": out["pending_jobs"],
            "running_jobs": out["running_jobs"],
        }

    def _populate(self, data: dict) -> None:
        strict = self.get_option("strict")
        cluster_group = None
        if data.get("cluster"):
            cluster_group = self.inventory.add_group(group_name(data["cluster"]))
            for key in ("pending_jobs", "running_jobs", "unfit_jobs"):
                self.inventory.set_variable(cluster_group, f"dcaas_{key}", data[key])
        for node in data["nodes"]:
            if node.get("instance_id") is None:
                continue  # a cloud node that is off: Slurm knows it, no host runs
            host = self.inventory.add_host(node["name"])
            hostvars = {
                "dcaas_state": node["state"],
                "dcaas_resource": node["resource"],
                "dcaas_jobs": node["jobs"],
                "dcaas_zone": node.get("zone"),
                "dcaas_tenant": node.get("tenant"),
                "dcaas_instance_id": node.get("instance_id"),
                "dcaas_cores": node.get("cores"),
                "dcaas_memory_mb": node.get("memory_mb"),
                "dcaas_reason": node.get("reason"),
            }
            if node.get("address"):
                hostvars["ansible_host"] = node["address"]
            # Names, reasons and addresses come from the cloud and the WLM:
            # never let them be templated.
            hostvars = wrap_var(hostvars)
            for key, value in hostvars.items():
                self.inventory.set_variable(host, key, value)
            groups = [
                group_name("role", "worker"),
                group_name("state", node["state"]),
                group_name("resource", node["resource"]),
            ]
            if node.get("zone"):
                groups.append(group_name("zone", node["zone"]))
            if node.get("tenant"):
                groups.append(group_name("tenant", node["tenant"]))
            if cluster_group:
                groups.append(cluster_group)
            for group in groups:
                self.inventory.add_group(group)
                self.inventory.add_child(group, host)
            self._set_composite_vars(self.get_option("compose"), hostvars, host, strict=strict)
            self._add_host_to_composed_groups(self.get_option("groups"), hostvars, host, strict=strict)
            self._add_host_to_keyed_groups(self.get_option("keyed_groups"), hostvars, host, strict=strict)

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        cache_key = self.get_cache_key(path)
        use_cache = self.get_option("cache") and cache
        update_cache = self.get_option("cache") and not cache
        data = None
        if use_cache:
            try:
                data = self._cache[cache_key]
            except KeyError:
                update_cache = True
        if data is None:
            data = self._fetch(path)
        if update_cache:
            self._cache[cache_key] = data
        self._populate(data)
