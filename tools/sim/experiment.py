"""Run policies on workloads: the glue between traces, simulator and report."""

from __future__ import annotations

import glob
import os

from tools.sim import swf
from tools.sim.core import CloudModel, Simulation
from tools.sim.metrics import RunResult, summarize
from tools.sim.policies import POLICIES, Legacy
from tools.sim.workload import Workload, from_trace

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The shared traces sit next to the repository (see the design brief).
DEFAULT_TRACES = os.environ.get("DCAAS_TRACES", os.path.join(os.path.dirname(REPO), "shared", "traces"))
ORDER = tuple(POLICIES)  # the table's order


def find_traces(directory: str = DEFAULT_TRACES) -> list[str]:
    paths = sorted(glob.glob(os.path.join(directory, "*.swf.gz")) + glob.glob(os.path.join(directory, "*.swf")))
    if not paths:
        raise FileNotFoundError(f"no SWF traces (*.swf, *.swf.gz) in {directory}; give --traces-dir")
    return paths


def load(path: str, max_days: float | None = None, max_jobs: int | None = None) -> Workload:
    return from_trace(swf.read(path), max_days=max_days, max_jobs=max_jobs)


def make_controller(name: str, every_cycle: bool = False, dcaas_config: dict | None = None):
    if name not in POLICIES:
        raise ValueError(f"unknown policy {name!r}; choose from {', '.join(POLICIES)}")
    if name in ("dcaas", "dcaas-cloud"):
        return POLICIES[name](dcaas_config, every_cycle=every_cycle)
    if name == "legacy":
        return Legacy(every_cycle=every_cycle)
    return POLICIES[name]()


def run(
    workload: Workload,
    policy: str,
    cloud: CloudModel | None = None,
    seed: int = 0,
    every_cycle: bool = False,
    dcaas_config: dict | None = None,
) -> RunResult:
    """Simulate one policy on one workload and summarise it."""
    controller = make_controller(policy, every_cycle, dcaas_config)
    sim = Simulation(workload, controller, cloud or CloudModel(), seed=seed)
    return summarize(sim.run())
