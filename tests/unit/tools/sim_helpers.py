"""Builders of tiny hand-made workloads for the simulator tests."""

from __future__ import annotations

from tools.sim.core import CloudModel, Simulation
from tools.sim.metrics import summarize
from tools.sim.workload import JobSpec, Workload, node_shape

# Boots take exactly a minute and never fail: answers can be worked out by hand.
EXACT_CLOUD = CloudModel(boot_delay=60.0, boot_jitter=0.0, failure_rate=0.0)


def workload(jobs, cores_per_node: int = 1, max_nodes: int = 4, name: str = "hand") -> Workload:
    """jobs: (submit, run, procs) or (submit, run, procs, estimate); ids count from 1."""
    specs = []
    for i, j in enumerate(jobs, 1):
        submit, run, procs = j[:3]
        estimate = j[3] if len(j) > 3 else run
        nodes, cores = node_shape(procs, cores_per_node)
        specs.append(JobSpec(i, float(submit), float(run), float(estimate), procs, nodes, cores))
    return Workload(name, tuple(specs), cores_per_node, max_nodes, max_nodes * cores_per_node)


def simulate(w: Workload, controller, cloud: CloudModel = EXACT_CLOUD, seed: int = 0):
    sim = Simulation(w, controller, cloud, seed=seed).run()
    return sim, summarize(sim)


def starts(sim) -> dict[int, float]:
    return {j.id: j.start for j in sim.jobs}
