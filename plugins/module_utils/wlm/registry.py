# Copyright: dcaas.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one place that knows which workload-manager adapters exist.

Private to the dcaas.cluster collection. The config schema takes its
``wlm.type`` choices and each adapter's option spec from here, and the engine
builds its adapter here; nothing else names a workload manager. Adapters are
imported statically so that Ansible ships them with any module that uses the
engine (AnsiballZ bundles only the imports it can see).
"""

from __future__ import annotations

from ansible_collections.dcaas.cluster.plugins.module_utils.runner import Runner
from ansible_collections.dcaas.cluster.plugins.module_utils.wlm.base import Capability, WorkloadManager
from ansible_collections.dcaas.cluster.plugins.module_utils.wlm.gridengine import GridEngineManager
from ansible_collections.dcaas.cluster.plugins.module_utils.wlm.slurm import SlurmManager

ADAPTERS: dict[str, type[WorkloadManager]] = {cls.name: cls for cls in (SlurmManager, GridEngineManager)}
# Names the schema has reserved for adapters still to come: a config naming
# one is told so, not that the name is unknown.
PLANNED = ("gridengine", "torque")
DEFAULT = "slurm"


def names() -> tuple[str, ...]:
    return tuple(ADAPTERS)


def adapter(name: str) -> type[WorkloadManager]:
    """The adapter class for ``wlm.type``; ValueError naming the field otherwise."""
    try:
        return ADAPTERS[name]
    except KeyError:
        have = ", ".join(sorted(ADAPTERS))
        if name in PLANNED:
            raise ValueError(
                f"wlm.type: the {name!r} adapter is not available in this version; use one of {have}"
            ) from None
        raise ValueError(f"wlm.type: unknown workload manager {name!r}; use one of {have}") from None


def make(name: str, runner: Runner, options: dict | None, cluster: str, cloud_nodes: bool = False) -> WorkloadManager:
    return adapter(name)(runner, options, cluster=cluster, cloud_nodes=cloud_nodes)


def supports(name: str, capability: Capability) -> bool:
    return name in ADAPTERS and ADAPTERS[name].supports(capability)
