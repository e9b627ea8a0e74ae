"""FUTURE placeholders and static workers are never the engine's to act on.

The head_node role writes one ``NodeName=future-<resource> State=FUTURE``
per engine resource (so ``sbatch -C <feature>`` queues for an empty pool),
and the Advanced architecture has static workers that carry the feature
``static`` and not ``dcaas``. A full reconcile pass with the real Slurm
adapter, where the placeholders and the static node sit idle forever and
match the cluster's name prefix, must not drain, resume, delete or count
any of them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from ansible_collections.dcaas.cluster.plugins.module_utils.cloud.base import CloudProvider
from ansible_collections.dcaas.cluster.plugins.module_utils.config import parse
from ansible_collections.dcaas.cluster.plugins.module_utils.engine import Engine
from ansible_collections.dcaas.cluster.plugins.module_utils.model import Controls, Timers
from ansible_collections.dcaas.cluster.plugins.module_utils.runner import Runner
from ansible_collections.dcaas.cluster.plugins.module_utils.state import StateStore
from ansible_collections.dcaas.cluster.plugins.module_utils.wlm.slurm import SlurmManager

NOW = 90_000.0


def sinfo_node(name: str, state: str, features: str, flags: Sequence[str] = ()) -> dict:
    # Slurm 22.05's sinfo --json shape, reduced to the fields the adapter reads.
    return {
        "name": name,
        "state": state,
        "state_flags": list(flags),
        "features": features,
        "active_features": features,
        "cpus": 2,
        "alloc_cpus": 0,
        "real_memory": 2048,
        "reason": "",
        "address": name,
    }


NODES = [
    # What the head_node role writes for resources phys and chem.
    sinfo_node("future-phys", "future", "dcaas,dcaas_phys"),
    sinfo_node("future-chem", "idle", "dcaas,dcaas_chem,chemsw", flags=["FUTURE"]),
    # Named with the cluster's prefix on purpose: still not the engine's.
    sinfo_node("adv-static1", "idle", "static"),
    sinfo_node("adv-future-x", "future", "dcaas,dcaas_x"),
]


class SlurmReplay(Runner):
    def __init__(self):
        super().__init__()
        self.calls: list[list[str]] = []

    def run(self, argv: Sequence[str], check: bool = True, input_text: str | None = None) -> str:
        argv = list(argv)
        self.calls.append(argv)
        if argv == ["squeue", "--json"]:
            return json.dumps({"errors": [], "jobs": []})
        if argv == ["sinfo", "--json"]:
            return json.dumps({"errors": [], "nodes": NODES})
        raise AssertionError(f"the engine ran {argv} although it owns none of these nodes")


class NoInstances(CloudProvider):
    def list_instances(self):
        return []

    def create(self, spec):
        raise AssertionError(f"launched {spec.name} with no job pending")

    def delete(self, instance):
        raise AssertionError(f"deleted {instance.name}")


def test_placeholders_and_static_nodes_are_invisible_to_the_engine(tmp_path):
    cfg = parse(
        {
            "cluster": "adv",
            "resources": [
                {"name": "phys", "flavor": "f", "image": "i", "cores": 2, "memory_mb": 2048, "min": 0},
                {"name": "chem", "flavor": "f", "image": "i", "cores": 2, "memory_mb": 2048, "features": ["chemsw"]},
            ],
            "timers": {"idle_timeout": 1, "down_timeout": 1},
            "state_file": str(tmp_path / "state.json"),
        }
    )
    runner = SlurmReplay()
    wlm = SlurmManager(runner, {}, cluster="adv")
    assert [n.name for n in wlm.nodes()] == ["adv-static1"]

    engine = Engine(cfg, wlm, NoInstances("adv"), StateStore(cfg.state_file), clock=lambda: NOW)
    # Idle "since" long ago: were any of them the engine's, it would act now.
    engine.store.save(Timers(idle_since={n["name"]: 0.0 for n in NODES}), Controls())
    for _pass in range(3):
        result = engine.run_once()
        assert not result.changed and not result.launched and not result.errors
    assert {tuple(c[:1]) for c in runner.calls} == {("squeue",), ("sinfo",)}
