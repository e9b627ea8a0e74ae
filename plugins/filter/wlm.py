# Copyright: dcaas.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: wlm_resource_nodes
short_description: The nodes a workload manager's head must know for the engine's resources
version_added: 0.2.0
description:
  - Takes the engine's validated resources (C(resources) of C(dcaas_engine | dcaas.cluster.engine_config)) and
    returns what the head of the chosen workload manager lists for them, named and featured by the engine's
    own naming rules, so the head's configuration and the workers the engine starts always agree.
  - C(slurm) - one C(NodeName) entry per resource (a mapping with C(name) and Slurm's node keys). Dynamic
    nodes - a C(State=FUTURE) placeholder C(future-<resource>) carrying the features and size the resource's
    workers register with, so jobs asking for them queue before the pool has a worker. Cloud nodes - the
    resource's C(max) nodes C(<cluster>-<resource>-[1-<max>]) in C(State=CLOUD) with the same features and
    size plus the resource's C(options.slurm_node_conf); resources with C(max=0) get none.
  - Fails naming the resource and the field when a resource cannot be listed.
author:
  - dcaas.cluster developers (@dcaas-cluster)
options:
  _input:
    description: The engine's resources, each with C(name), C(cores), C(memory_mb), C(max), C(features), C(options).
    type: list
    elements: dict
    required: true
  wlm:
    description: The workload manager (the engine's C(wlm.type)).
    type: str
    default: slurm
  cluster:
    description: The engine's C(cluster); cloud nodes are named after it.
    type: str
    required: true
  nodes:
    description: The engine's C(wlm.nodes), C(dynamic) or C(cloud).
    type: str
    default: dynamic
  memory_reserve_mb:
    description: Subtracted from each resource's C(memory_mb), as the engine does for the size a worker registers.
    type: int
    default: 0
"""

EXAMPLES = r"""
- name: The Slurm node lines for the engine's resources
  ansible.builtin.debug:
    msg: >-
      {{ dcaas_engine_config.resources
         | dcaas.cluster.wlm_resource_nodes(cluster=dcaas_engine_config.cluster, nodes=dcaas_engine_config.wlm.nodes) }}

- name: Static workers must not carry a feature the engine marks its own workers with
  ansible.builtin.assert:
    that: dcaas_static_features | intersect(dcaas_engine_config.resources | dcaas.cluster.engine_features) | length == 0
"""

RETURN = r"""
_value:
  description: Node entries, each a mapping with C(name) and the workload manager's node keys.
  type: list
  elements: dict
"""

from collections.abc import Callable, Mapping
from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.dcaas.cluster.plugins.module_utils import naming
from ansible_collections.dcaas.cluster.plugins.module_utils.options import NAME_HINT, NAME_RE, shown

_HOSTNAME_MAX = 63
# slurm.conf's node keys the role itself sets for a cloud node.
_SLURM_OWN_KEYS = ("name", "nodename", "state")


def _where(index: int, resource: Any) -> str:
    if isinstance(resource, Mapping) and isinstance(resource.get("name"), str):
        return f"resources[{index}] {shown(resource['name'])}"
    return f"resources[{index}]"


def _whole(value: Any, what: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).isdigit() or int(value) < low:
        raise ValueError(f"{what} must be a whole number of {low} or more, got {shown(value)}")
    return int(value)


def _slurm_nodes(resources: list, cluster: str, cloud: bool, reserve: int) -> list[dict]:
    """slurm.conf NodeName entries; the size and features are what the adapter registers a worker with."""
    out = []
    for index, res in enumerate(resources):
        where = _where(index, res)
        try:
            name = res["name"]
            if not isinstance(name, str) or not NAME_RE.fullmatch(name):
                raise ValueError(f"name must be {NAME_HINT}, got {shown(name)}")
            size = {
                "CPUs": _whole(res.get("cores"), "cores", 1),
                "RealMemory": _whole(res.get("memory_mb"), "memory_mb", 1) - reserve,
            }
            if size["RealMemory"] < 1:
                raise ValueError(
                    f"memory_mb={shown(res['memory_mb'])} leaves nothing after the memory reserve ({reserve} MiB)"
                )
            node = {"Feature": naming.worker_features(name, list(res.get("features") or ())), **size}
            if not cloud:
                out.append({"name": f"future-{name}", **node, "State": "FUTURE"})
                continue
            count = _whole(res.get("max"), "max (how many cloud nodes Slurm lists)", 0)
            last = naming.cloud_node_name(cluster, name, count)
            if len(last) > _HOSTNAME_MAX:
                raise ValueError(
                    f"its last cloud node, {last!r}, has a name longer than a host name may be ({_HOSTNAME_MAX} "
                    "characters): shorten the resource's name or the cluster's"
                )
            conf = (res.get("options") or {}).get("slurm_node_conf") or {}
            if not isinstance(conf, Mapping):
                raise ValueError("options.slurm_node_conf must be a mapping of node keys (Weight, Gres...)")
            if any(str(key).lower() in _SLURM_OWN_KEYS for key in conf):
                raise ValueError(
                    "options.slurm_node_conf must not set NodeName or State "
                    "(cloud nodes are named after their instances and listed in State=CLOUD)"
                )
            if count:
                out.append({**node, **conf, "name": naming.cloud_node_range(cluster, name, count), "State": "CLOUD"})
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            detail = str(exc) if isinstance(exc, ValueError) else "is not a mapping with a name, cores and memory_mb"
            raise AnsibleFilterError(f"{where}: {detail}") from None
    return out


# What each workload manager's head lists for the engine's resources.
_NODE_LISTS: dict[str, Callable[[list, str, bool, int], list[dict]]] = {"slurm": _slurm_nodes}


def wlm_resource_nodes(
    resources: Any, cluster: str, wlm: str = "slurm", nodes: str = "dynamic", memory_reserve_mb: Any = 0
) -> list[dict]:
    if wlm not in _NODE_LISTS:
        raise AnsibleFilterError(f"wlm: {shown(wlm)} is not one of {', '.join(sorted(_NODE_LISTS))}")
    if nodes not in ("dynamic", "cloud"):
        raise AnsibleFilterError(f"nodes: must be the engine's wlm.nodes, 'dynamic' or 'cloud', got {shown(nodes)}")
    if not isinstance(resources, list):
        raise AnsibleFilterError(f"resources: must be a list of the engine's resources, got {type(resources).__name__}")
    try:
        reserve = _whole(memory_reserve_mb, "memory_reserve_mb", 0)
    except ValueError as exc:
        raise AnsibleFilterError(str(exc)) from None
    return _NODE_LISTS[wlm](resources, str(cluster), nodes == "cloud", reserve)


def engine_features(resources: Any) -> list[str]:
    """The features only the engine's workers carry (the base one and one per resource)."""
    if not isinstance(resources, list):
        raise AnsibleFilterError(f"resources: must be a list of the engine's resources, got {type(resources).__name__}")
    names = [res.get("name") for res in resources if isinstance(res, Mapping)]
    return sorted({feature for name in names if isinstance(name, str) for feature in naming.worker_features(name)})


class FilterModule:
    def filters(self):
        return {"wlm_resource_nodes": wlm_resource_nodes, "engine_features": engine_features}
