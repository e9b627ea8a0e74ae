"""The simulated batch scheduler: FCFS with EASY backfilling.

The queue is kept in submit order (first come, first served). Jobs start in
that order while they fit; when the first waiting job (the head) does not,
it gets a reservation: the earliest time enough nodes will be free if every
running job ends at its estimate (its requested time), and the nodes it will
use then. A later job may start out of order ("backfill") only if it fits
now and cannot delay that reservation: either its estimate ends before the
reservation starts, or it only uses cores the head does not need then. Jobs
that run past their estimate are assumed to end any moment.

The scheduler places jobs on the nodes in its pool: nodes the WLM knows and
may start work on. Nodes are taken first fit in pool order, preferring nodes
that are up over nodes that are booting or powered down (those only ever
enter the pool under the power-saving baseline, as in Slurm).
"""

from __future__ import annotations

import bisect
import math

# Node states of the simulated world; the engine's NodeState is derived from them.
STARTING = "starting"  # instance booting, not yet usable
UP = "up"  # registered with the WLM and accepting jobs
DRAINING = "draining"  # drained by the controller: no new jobs
FAILED = "failed"  # instance went to ERROR while booting
OFF = "off"  # powered down but known to the WLM (power-saving baseline only)

_RANK = {UP: 0, STARTING: 1, OFF: 2}


class SimNode:
    __slots__ = ("cores", "created", "free", "idle_since", "index", "jobs", "name", "state", "waiters")

    def __init__(self, name: str, index: int, cores: int, state: str, created: float):
        self.name = name
        self.index = index
        self.cores = cores
        self.free = cores
        self.state = state
        self.created = created
        self.jobs: dict[int, SimJob] = {}  # allocated jobs, running or waiting for this node to boot
        self.waiters: list[SimJob] = []  # jobs that wait for this node to boot
        self.idle_since: float | None = None  # when it last became up with no job


class SimJob:
    __slots__ = (
        "alloc",
        "cores",
        "end",
        "estimate",
        "expected_end",
        "id",
        "nodes",
        "order",
        "procs",
        "run",
        "spec",
        "start",
        "submit",
        "view",
        "waiting",
    )

    def __init__(self, spec):
        self.spec = spec
        self.id: int = spec.id
        self.submit: float = spec.submit
        self.run: float = spec.run
        self.estimate: float = spec.estimate
        self.procs: int = spec.procs
        self.nodes: int = spec.nodes
        self.cores: int = spec.cores
        self.order = (spec.submit, spec.id)
        self.alloc: list[SimNode] = []
        self.start = -1.0
        self.end = -1.0
        self.expected_end = math.inf
        self.waiting = 0  # nodes still booting before it can start
        self.view = None


class Scheduler:
    def __init__(self, cores_per_node: int, backfill_depth: int = 500):
        # Slurm's bf_max_job_test: how deep backfill looks into the queue.
        self.backfill_depth = backfill_depth
        self.pool: dict[str, SimNode] = {}
        # hist[c]: pool nodes with exactly c free cores. "Does it fit now" is
        # then O(cores per node) instead of a scan of every node.
        self.hist = [0] * (cores_per_node + 1)
        self.queue: list[SimJob] = []
        self.running: dict[int, SimJob] = {}  # allocated, started or not
        # Whether nodes that are not up (booting, powered down) ever joined the
        # pool; until then no placement needs to rank nodes by state.
        self.mixed = False
        # Bumped whenever a placement can change (cores taken or freed, pool
        # grows or shrinks): a reservation computed at the same epoch, for the
        # same head, is still right while no running job has overrun.
        self._epoch = 0
        self._reserved: tuple | None = None
        # Nodes whose cores or jobs changed (see Simulation.changed); None: not recorded.
        self.changed: dict[str, SimNode] | None = None

    # --- pool and queue ----------------------------------------------------
    def add_node(self, node: SimNode) -> None:
        if node.name not in self.pool:
            self._epoch += 1
            self.mixed = self.mixed or node.state != UP
            self.pool[node.name] = node
            self.hist[node.free] += 1

    def remove_node(self, node: SimNode) -> None:
        if self.pool.pop(node.name, None) is not None:
            self._epoch += 1
            self.hist[node.free] -= 1

    def submit(self, job: SimJob) -> None:
        """Queue a job at its place in submit order (requeued jobs keep theirs)."""
        if not self.queue or self.queue[-1].order < job.order:
            self.queue.append(job)
        else:
            bisect.insort(self.queue, job, key=lambda j: j.order)

    def _set_free(self, node: SimNode, free: int) -> None:
        self._epoch += 1
        if node.name in self.pool:
            self.hist[node.free] -= 1
            self.hist[free] += 1
        node.free = free
        if self.changed is not None:
            self.changed[node.name] = node

    def allocate(self, job: SimJob, nodes: list[SimNode], now: float) -> None:
        for node in nodes:
            self._set_free(node, node.free - job.cores)
            node.jobs[job.id] = job
            node.idle_since = None
        job.alloc = nodes
        job.expected_end = now + job.estimate
        self.running[job.id] = job

    def set_expected_end(self, job: SimJob, t: float) -> None:
        """A job that waited for its nodes to boot starts: its estimate runs from now."""
        if t != job.expected_end:
            job.expected_end = t
            self._epoch += 1

    def release(self, job: SimJob) -> list[SimNode]:
        """Free a job's cores; return its nodes that are left with no job."""
        emptied = []
        for node in job.alloc:
            self._set_free(node, node.free + job.cores)
            del node.jobs[job.id]
            if not node.jobs:
                emptied.append(node)
        job.alloc = []
        self.running.pop(job.id, None)
        return emptied

    # --- placement -----------------------------------------------------------
    def fits(self, job: SimJob) -> bool:
        return sum(self.hist[job.cores :]) >= job.nodes

    def _any_free(self) -> bool:
        return self.hist[0] < len(self.pool)

    def _pick(self, job: SimJob, cap: dict[str, int] | None = None) -> list[SimNode] | None:
        """First-fit nodes for a job, up nodes first; ``cap`` limits some nodes' free cores."""
        need, cores = job.nodes, job.cores
        chosen: list[SimNode] = []
        later: list[SimNode] = []
        for node in self.pool.values():
            avail = node.free
            if cap and node.name in cap:
                avail = min(avail, cap[node.name])
            if avail >= cores:
                if node.state == UP:
                    chosen.append(node)
                    if len(chosen) == need:
                        return chosen
                else:
                    later.append(node)
        if len(chosen) + len(later) < need:
            return None
        later.sort(key=lambda n: _RANK.get(n.state, 3))
        return chosen + later[: need - len(chosen)]

    def reservation(self, head: SimJob, now: float) -> tuple[float, dict[str, int]]:
        """When the first queued job is planned to start, and on which nodes:
        (start, spare cores of each of its nodes at the start); (inf, {}) if
        it has no plan. What ``squeue --start`` shows for it in Slurm."""
        return self._reservation(head, now)

    def _reservation(self, head: SimJob, now: float) -> tuple[float, dict[str, int]]:
        """(shadow time, cores each of the head's nodes can lend until then).

        The shadow time is when the head can start if running jobs end at
        their estimates. Only the nodes the head will take then need a cap:
        on any other node a job can never take cores the head needs.
        (inf, {}) when the head cannot run on the pool even once every job
        has ended: there is nothing to protect, as in Slurm, where a job
        that no current node set can hold gets no reservation.
        """
        cached = self._reserved
        if cached is not None and cached[0] == (head.id, self._epoch) and now <= cached[1]:
            return cached[2], dict(cached[3])
        cores, need = head.cores, head.nodes
        ends = sorted(self.running.values(), key=lambda j: (max(j.expected_end, now), j.order))
        # Past this time a running job has overrun its estimate and is assumed
        # to end "now", which moves the reservation: recompute from then on.
        valid_until = min((j.expected_end for j in ends), default=math.inf)
        gained: dict[str, int] = {}  # cores that come back to each node by the shadow time
        count = sum(self.hist[cores:])
        pool = self.pool
        shadow = math.inf
        for job in ends:
            for node in job.alloc:
                if node.name not in pool:
                    continue  # draining: its cores never come back to the pool
                earlier = gained.get(node.name, 0)
                gained[node.name] = earlier + job.cores
                before = node.free + earlier
                if before < cores <= before + job.cores:
                    count += 1
            if count >= need:
                shadow = max(job.expected_end, now)
                break
        cap: dict[str, int] = {}
        if shadow == math.inf:
            self._reserved = ((head.id, self._epoch), valid_until, shadow, cap)
            return shadow, dict(cap)
        # The head's nodes at the shadow time, in the order _pick would take them.
        nodes = sorted(pool.values(), key=lambda n: _RANK.get(n.state, 3)) if self.mixed else pool.values()
        for node in nodes:
            at_shadow = node.free + gained.get(node.name, 0)
            if at_shadow >= cores:
                cap[node.name] = at_shadow - cores
                need -= 1
                if need == 0:
                    break
        self._reserved = ((head.id, self._epoch), valid_until, shadow, cap)
        return shadow, dict(cap)

    def schedule(self, now: float) -> list[SimJob]:
        """One scheduling pass; return the jobs it allocated, in order."""
        queue = self.queue
        started: list[SimJob] = []
        head = 0
        while head < len(queue) and self.fits(queue[head]):
            job = queue[head]
            self.allocate(job, self._pick(job), now)
            started.append(job)
            head += 1
        del queue[:head]
        if len(queue) < 2 or not self._any_free():
            return started
        # The head's reservation is only worked out once a job could backfill.
        shadow: float | None = None
        cap: dict[str, int] = {}
        keep = [queue[0]]
        no_fit: set[tuple[int, int]] = set()  # shapes that do not fit now
        no_spare: set[tuple[int, int]] = set()  # shapes that would delay the head
        for i in range(1, len(queue)):
            job = queue[i]
            if i > self.backfill_depth or not self._any_free():
                keep.extend(queue[i:])
                break
            shape = (job.nodes, job.cores)
            nodes = None
            if shape not in no_fit and self.fits(job):
                if shadow is None:
                    shadow, cap = self._reservation(queue[0], now)
                if now + job.estimate <= shadow:
                    nodes = self._pick(job)
                elif shape not in no_spare:
                    nodes = self._pick(job, cap)
                    if nodes is None:
                        no_spare.add(shape)
                    else:
                        for node in nodes:
                            if node.name in cap:
                                cap[node.name] -= job.cores
            else:
                no_fit.add(shape)
            if nodes is None:
                keep.append(job)
            else:
                self.allocate(job, nodes, now)
                started.append(job)
        self.queue = keep
        return started
