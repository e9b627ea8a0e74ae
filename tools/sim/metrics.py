"""What a run costs and what users wait: the numbers every policy is judged by."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field

# Bounded slowdown ignores how much very short jobs are slowed down below
# this run time (seconds), as is usual in the scheduling literature.
BSLD_TAU = 10.0


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), interpolating linearly between ranks."""
    if not values:
        return math.nan
    data = sorted(values)
    pos = (len(data) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def utilisation_by_window(
    runs: Iterable[tuple[float, float, int]], t0: float, processors: int, window: float = 30 * 86400.0
) -> list[float]:
    """Share of ``processors`` busy in each ``window`` from ``t0``, for jobs
    given as (start, end, processors)."""
    busy: list[float] = []
    for start, end, procs in runs:
        first, last = int((start - t0) // window), int((end - t0) // window)
        busy.extend([0.0] * (last + 1 - len(busy)))
        for i in range(first, last + 1):
            overlap = min(end, t0 + (i + 1) * window) - max(start, t0 + i * window)
            busy[i] += max(0.0, overlap) * procs
    return [b / (processors * window) for b in busy]


def bounded_slowdown(wait: float, run: float, tau: float = BSLD_TAU) -> float:
    return max(1.0, (wait + run) / max(run, tau))


@dataclass
class RunResult:
    trace: str
    policy: str
    jobs: int
    unfinished: int
    cores_per_node: int
    max_nodes: int
    node_hours: float
    lower_bound_node_hours: float
    mean_wait_s: float
    p95_wait_s: float
    mean_bsld: float
    launches: int
    failed_launches: int
    peak_nodes: int
    makespan_h: float
    utilisation: float  # core-hours of work done / (node-hours * cores per node)
    work_left_node_hours: float  # work of the jobs that never finished, in nodes of this size
    refused_deletes: int
    wall_s: float
    cpu_s: float
    stats: dict = field(default_factory=dict)
    timeline: list = field(default_factory=list, repr=False)

    @property
    def cost_ratio(self) -> float:
        """Node-hours over the lower bound (1.0 is perfect)."""
        return self.node_hours / self.lower_bound_node_hours if self.lower_bound_node_hours else math.nan

    @property
    def cost_to_finish(self) -> float:
        """Node-hours, plus the least the jobs that never finished would still
        have cost: a lower bound of what running the whole trace costs, equal
        to ``node_hours`` when every job ran."""
        return self.node_hours + self.work_left_node_hours

    def row(self) -> dict:
        """Flat record for CSV/JSON (no timeline)."""
        d = asdict(self)
        d.pop("timeline")
        stats = d.pop("stats")
        d["cost_ratio"] = self.cost_ratio
        d["cost_to_finish"] = self.cost_to_finish
        for k, v in stats.items():
            d[k] = v
        return d


def summarize(sim, tau: float = BSLD_TAU) -> RunResult:
    """Metrics of a finished Simulation."""
    # A job that never started (the run hit its horizon) counts with the wait
    # it had so far: a lower bound, so that starving a job never looks good.
    waits = [(j.start if j.start >= 0 else sim.now) - j.submit for j in sim.jobs]
    bsld = [bounded_slowdown(wait, j.run, tau) for wait, j in zip(waits, sim.jobs)]
    finished = [j for j in sim.jobs if j.end >= 0]
    w = sim.workload
    end = max((j.end for j in finished), default=sim.t0)
    node_hours = sim.node_seconds / 3600.0
    # Work done: whole jobs that ended, and the part that ran of jobs still
    # running when the run stopped at its horizon.
    done = [min(j.run, sim.now - j.start) * j.procs if j.start >= 0 else 0.0 for j in sim.jobs]
    busy = sum(done) / 3600.0
    left = w.busy_core_seconds / 3600.0 - busy
    return RunResult(
        trace=w.name,
        policy=sim.controller.name,
        jobs=len(sim.jobs),
        unfinished=sim.unfinished,
        cores_per_node=w.cores_per_node,
        max_nodes=w.max_nodes,
        node_hours=node_hours,
        lower_bound_node_hours=w.lower_bound_node_hours(),
        mean_wait_s=sum(waits) / len(waits) if waits else math.nan,
        p95_wait_s=percentile(waits, 95),
        mean_bsld=sum(bsld) / len(bsld) if bsld else math.nan,
        launches=sim.launches,
        failed_launches=sim.failed_launches,
        peak_nodes=sim.peak,
        makespan_h=(end - sim.t0) / 3600.0,
        utilisation=busy / (node_hours * w.cores_per_node) if node_hours else math.nan,
        work_left_node_hours=max(0.0, left) / w.cores_per_node,
        refused_deletes=sim.refused_deletes,
        wall_s=getattr(sim, "wall_seconds", math.nan),
        cpu_s=getattr(sim, "cpu_seconds", math.nan),
        stats=sim.controller.stats(),
        timeline=sim.timeline,
    )
