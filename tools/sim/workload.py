"""Turn an SWF trace into the jobs the simulator replays.

A job's processors are spread over nodes of ``cores_per_node`` cores: it needs
``ceil(procs / cores_per_node)`` nodes with ``ceil(procs / nodes)`` cores on
each, which is how the engine's model describes jobs (cores per node, nodes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from tools.sim.swf import SwfTrace


@dataclass(frozen=True, slots=True)
class JobSpec:
    id: int
    submit: float
    run: float  # actual run time: when the simulated job ends
    estimate: float  # requested time: what the scheduler plans with
    procs: int
    nodes: int
    cores: int  # per node
    user: int = -1
    trace_wait: float = -1.0


@dataclass(frozen=True)
class Workload:
    name: str
    jobs: tuple[JobSpec, ...]
    cores_per_node: int
    max_nodes: int
    max_procs: int
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def t0(self) -> float:
        return min((j.submit for j in self.jobs), default=0.0)

    @property
    def busy_core_seconds(self) -> float:
        """What the jobs use: run time times processors, as the trace reports them."""
        return sum(j.run * j.procs for j in self.jobs)

    def lower_bound_node_hours(self) -> float:
        """No cluster of these nodes can run the jobs on fewer node-hours."""
        return self.busy_core_seconds / self.cores_per_node / 3600.0

    def implied_utilisation(self) -> float:
        """Utilisation of the traced machine over the span the trace itself records.

        The span runs from the first submit to the last end (submit + wait +
        run); an unknown wait counts as zero, as in traces whose submit times
        are start times.
        """
        if not self.jobs:
            return 0.0
        end = max(end for _start, end, _procs in self.traced_runs())
        span = end - self.t0
        return self.busy_core_seconds / (self.max_procs * span) if span > 0 else 0.0

    def traced_runs(self) -> list[tuple[float, float, int]]:
        """(start, end, processors) of every job as the trace records it
        (an unknown wait counts as zero)."""
        return [
            (j.submit + max(j.trace_wait, 0.0), j.submit + max(j.trace_wait, 0.0) + j.run, j.procs) for j in self.jobs
        ]


def node_shape(procs: int, cores_per_node: int) -> tuple[int, int]:
    """(nodes, cores per node) for a job of ``procs`` processors."""
    nodes = max(1, math.ceil(procs / cores_per_node))
    return nodes, math.ceil(procs / nodes)


def cores_per_node_of(trace: SwfTrace) -> int:
    """The traced machine's node size: MaxProcs / MaxNodes when the header gives both."""
    procs, nodes = trace.max_procs, trace.max_nodes
    if procs and nodes and procs % nodes == 0:
        return procs // nodes
    return 1


def from_trace(
    trace: SwfTrace,
    cores_per_node: int | None = None,
    max_days: float | None = None,
    max_jobs: int | None = None,
) -> Workload:
    """The runnable jobs of a trace, optionally only its first days or jobs.

    Jobs that never ran (no processors or no run time, such as jobs cancelled
    while queued) and jobs wider than the machine are left out and counted by
    reason in ``Workload.skipped``. Without a requested time the actual run
    time is the estimate (a perfect estimate; said in the docs).
    """
    cpn = cores_per_node or cores_per_node_of(trace)
    max_procs = trace.max_procs or max((r.procs for r in trace.records), default=1)
    max_nodes = trace.max_nodes if trace.max_nodes and not cores_per_node else math.ceil(max_procs / cpn)
    skipped: dict[str, int] = {}
    jobs: list[JobSpec] = []
    records = sorted(trace.records, key=lambda r: (r.submit, r.job))
    start = records[0].submit if records else 0.0
    for r in records:
        if max_days is not None and r.submit - start >= max_days * 86400.0:
            break
        if max_jobs is not None and len(jobs) >= max_jobs:
            break
        procs = r.procs if r.procs > 0 else r.req_procs
        if procs <= 0 or r.run < 0:
            skipped["never ran"] = skipped.get("never ran", 0) + 1
            continue
        if procs > max_procs:
            skipped["wider than the machine"] = skipped.get("wider than the machine", 0) + 1
            continue
        nodes, cores = node_shape(procs, cpn)
        jobs.append(
            JobSpec(
                id=r.job,
                submit=r.submit,
                run=r.run,
                estimate=r.req_time if r.req_time > 0 else r.run,
                procs=procs,
                nodes=nodes,
                cores=cores,
                user=r.user,
                trace_wait=r.wait,
            )
        )
    return Workload(
        name=trace.name,
        jobs=tuple(jobs),
        cores_per_node=cpn,
        max_nodes=max_nodes,
        max_procs=max_procs,
        skipped=skipped,
    )
