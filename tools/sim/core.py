"""Discrete-event core of the simulator: workload, scheduler, cloud and a controller.

Events at the same instant are handled in a fixed order (jobs end, nodes
finish booting, jobs arrive), then the scheduler makes one pass, then the
controller's callbacks for that instant run and see the result. Node-hours
count every instance from the launch request until it is deleted (or, under
power saving, from power-up to power-down), booting time included.
"""

from __future__ import annotations

import heapq
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from tools.sim.scheduler import DRAINING, FAILED, OFF, STARTING, UP, Scheduler, SimJob, SimNode
from tools.sim.workload import Workload

# Event kinds, in the order they are handled at one instant.
_FINISH, _READY, _FAIL, _SUBMIT, _CALL = range(5)


class SimulationError(RuntimeError):
    """The simulated world reached a state that must not happen."""


@dataclass(frozen=True)
class CloudModel:
    """The simulated cloud: boot time, launch failures and quota.

    A launch becomes a node after ``boot_delay`` seconds plus a uniform
    jitter of up to ``boot_jitter`` either way; with probability
    ``failure_rate`` the instance goes to ERROR at that time instead.
    ``quota`` caps the instances that exist at once (None: no cap).
    """

    boot_delay: float = 60.0
    boot_jitter: float = 20.0
    failure_rate: float = 0.02
    quota: int | None = None

    def draw(self, rng: random.Random) -> tuple[float, bool]:
        """(boot time, fails) of one launch. Always two draws: the n-th
        launch of every policy boots as long and fails or not alike."""
        delay = self.boot_delay + rng.uniform(-self.boot_jitter, self.boot_jitter)
        return max(1.0, delay), rng.random() < self.failure_rate


class Controller:
    """What grows and shrinks the cluster. Subclasses are the policies compared."""

    name = "controller"

    def attach(self, sim: Simulation) -> None:
        """Set up the initial nodes and the first callbacks."""

    def on_idle(self, sim: Simulation, node: SimNode) -> None:
        """A node that is up has just been left with no job."""

    def on_submit(self, sim: Simulation, job: SimJob) -> None:
        """A job has just been submitted (before the scheduler's pass)."""

    def after_schedule(self, sim: Simulation) -> None:
        """The scheduler has just made a pass."""

    def stats(self) -> dict:
        return {}


class Simulation:
    def __init__(
        self,
        workload: Workload,
        controller: Controller,
        cloud: CloudModel | None = None,
        seed: int = 0,
        backfill_depth: int = 500,
        horizon: float = 7 * 86400.0,
    ):
        self.workload = workload
        self.controller = controller
        self.cloud = cloud or CloudModel()
        self.rng = random.Random(seed)
        self.cores_per_node = workload.cores_per_node
        self.max_nodes = workload.max_nodes
        self.sched = Scheduler(workload.cores_per_node, backfill_depth)
        self.jobs = [SimJob(spec) for spec in workload.jobs]
        self.t0 = workload.t0
        self.now = self.t0
        # A controller can starve a job for ever (and keep launching for it):
        # the run stops this long after the last job would have ended on an
        # empty machine, and what is left counts as unfinished.
        self.until = max((j.submit + j.run for j in self.jobs), default=self.t0) + horizon
        self.truncated = False
        self.nodes: dict[str, SimNode] = {}
        self.idle: dict[str, SimNode] = {}  # up, no job; in the order they became idle
        self.booting: dict[str, SimNode] = {}  # instances booting, in the order they were started
        self.failed: dict[str, SimNode] = {}  # instances in ERROR, until deleted
        # Nodes created, changed or deleted since the controller last cleared
        # it, in the order of their first change; None until a controller
        # asks for it (track_changes).
        self.changed: dict[str, SimNode] | None = None
        # Bumped by every change a WLM or cloud query would show; controllers
        # compare it to skip cycles in which nothing happened.
        self.version = 0
        # Whether a job placed on a powered-down node boots it at once (the
        # WLM's own power saving), or waits for the controller to power it
        # up (cloud nodes run by the engine); resume_wanted says one waits.
        self.auto_resume = True
        self.resume_wanted = False
        self._heap: list = []
        self._seq = 0
        self._node_seq = 0
        self._sched_dirty = False
        self.unfinished = len(self.jobs)
        # accounting
        self.billable = 0
        self.node_seconds = 0.0
        self.peak = 0
        self.launches = 0
        self.failed_launches = 0
        self.refused_deletes = 0
        self.timeline: list[tuple[float, int]] = [(self.t0, 0)]
        self._last_t = self.t0

    # --- event queue -------------------------------------------------------
    def _push(self, t: float, kind: int, payload) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (t, kind, self._seq, payload))

    def call_at(self, t: float, fn: Callable[[float], None]) -> None:
        """Run ``fn(now)`` at simulated time ``t`` (controller callbacks)."""
        self._push(max(t, self.now), _CALL, fn)

    @property
    def done(self) -> bool:
        return self.unfinished == 0

    def run(self) -> Simulation:
        for job in self.jobs:
            self._push(job.submit, _SUBMIT, job)
        self.controller.attach(self)
        heap = self._heap
        wall, cpu = time.perf_counter(), time.process_time()
        while True:
            if self._sched_dirty and (not heap or heap[0][0] > self.now or heap[0][1] == _CALL):
                self._schedule()
                continue  # the pass may add events at this instant
            if not heap:
                break
            if heap[0][0] > self.until:
                self.truncated = True
                self._advance(self.until)
                break
            t, kind, _seq, payload = heapq.heappop(heap)
            if t > self.now:
                self._advance(t)
            if kind == _FINISH:
                self._finish(payload)
            elif kind == _READY:
                self._ready(payload)
            elif kind == _FAIL:
                self._fail(payload)
            elif kind == _SUBMIT:
                self.sched.submit(payload)
                self._sched_dirty = True
                self.version += 1
                self.controller.on_submit(self, payload)
            else:
                payload(self.now)
        # CPU time too: on a shared machine wall time includes waiting for a core.
        self.wall_seconds = time.perf_counter() - wall
        self.cpu_seconds = time.process_time() - cpu
        return self

    def _advance(self, t: float) -> None:
        self.node_seconds += self.billable * (t - self._last_t)
        self._last_t = t
        self.now = t

    def _count(self, delta: int) -> None:
        self.billable += delta
        self.peak = max(self.peak, self.billable)
        if self.timeline[-1][0] == self.now:
            self.timeline[-1] = (self.now, self.billable)
        else:
            self.timeline.append((self.now, self.billable))

    # --- jobs ------------------------------------------------------------------
    def _schedule(self) -> None:
        self._sched_dirty = False
        for job in self.sched.schedule(self.now):
            self.version += 1
            for node in job.alloc:
                self.idle.pop(node.name, None)
            booting = [n for n in job.alloc if n.state != UP]
            if not booting:
                self._start(job)
                continue
            # Power saving: the job holds its nodes while they boot.
            job.waiting = len(booting)
            for node in booting:
                node.waiters.append(job)
                if node.state == OFF:
                    if self.auto_resume:
                        self._boot(node)
                    else:
                        self.resume_wanted = True
        self.controller.after_schedule(self)

    def _start(self, job: SimJob) -> None:
        job.start = self.now
        self.sched.set_expected_end(job, self.now + job.estimate)
        job.view = None
        self._push(self.now + job.run, _FINISH, job)

    def _finish(self, job: SimJob) -> None:
        job.end = self.now
        self.unfinished -= 1
        for node in self.sched.release(job):
            self._maybe_idle(node)
        self._sched_dirty = True
        self.version += 1

    def _maybe_idle(self, node: SimNode) -> None:
        if node.state == UP and not node.jobs:
            node.idle_since = self.now
            self.idle[node.name] = node
            self.controller.on_idle(self, node)

    def _requeue(self, job: SimJob) -> None:
        for node in job.alloc:
            if job in node.waiters:
                node.waiters.remove(job)
        for node in self.sched.release(job):
            self._maybe_idle(node)
        job.waiting = 0
        job.expected_end = float("inf")
        self.sched.submit(job)
        self._sched_dirty = True

    # --- nodes -----------------------------------------------------------------
    def track_changes(self) -> dict[str, SimNode]:
        """Start recording changed nodes (see ``changed``); the caller clears
        the dict once it has looked. The scheduler records into the same dict."""
        if self.changed is None:
            self.changed = self.sched.changed = dict(self.nodes)
        return self.changed

    def _touch(self, node: SimNode) -> None:
        if self.changed is not None:
            self.changed[node.name] = node

    def _new_node(self, state: str) -> SimNode:
        self._node_seq += 1
        node = SimNode(f"sim-{self._node_seq:06d}", self._node_seq, self.cores_per_node, state, self.now)
        self.nodes[node.name] = node
        self._touch(node)
        return node

    def _boot(self, node: SimNode) -> None:
        delay, fails = self.cloud.draw(self.rng)
        node.state = STARTING
        node.created = self.now
        self._touch(node)
        self.booting[node.name] = node
        self.launches += 1
        self._count(+1)
        self._push(self.now + delay, _FAIL if fails else _READY, node)

    def launch(self, count: int) -> None:
        """Request ``count`` new instances; the cloud refuses what is over quota."""
        quota = self.cloud.quota
        if quota is not None:
            count = max(0, min(count, quota - self.billable))
        for _index in range(count):
            self._boot(self._new_node(STARTING))
        if count > 0:
            self.version += 1

    def add_static(self, count: int) -> None:
        """Nodes that are up from the start and never go (the static baseline)."""
        for _index in range(count):
            node = self._new_node(UP)
            self._count(+1)
            self.sched.add_node(node)
            self._maybe_idle(node)
        self._sched_dirty = True

    def add_powered_down(self, count: int) -> None:
        """Nodes the WLM knows while they are off (power saving): jobs are placed
        on them and they power up for it."""
        for _index in range(count):
            self.sched.add_node(self._new_node(OFF))
        self._sched_dirty = True

    def power_up(self, node: SimNode) -> None:
        """Start a powered-down node (jobs placed on it start once it is up)."""
        if node.state != OFF:
            raise SimulationError(f"{node.name}: powered up while {node.state}")
        self._boot(node)
        self._sched_dirty = True
        self.version += 1

    def power_down(self, node: SimNode) -> None:
        if node.jobs:
            raise SimulationError(f"{node.name}: powered down while it has jobs")
        self.idle.pop(node.name, None)
        node.state = OFF
        node.idle_since = None
        self._touch(node)
        self._count(-1)
        self.version += 1

    def _ready(self, node: SimNode) -> None:
        if node.state != STARTING:
            return  # deleted while booting
        del self.booting[node.name]
        node.state = UP
        self._touch(node)
        self.sched.add_node(node)
        waiters, node.waiters = node.waiters, []
        for job in waiters:
            job.waiting -= 1
            if job.waiting == 0:
                self._start(job)
        self._maybe_idle(node)
        self._sched_dirty = True
        self.version += 1

    def _fail(self, node: SimNode) -> None:
        if node.state != STARTING:
            return
        del self.booting[node.name]
        self.failed_launches += 1
        self._touch(node)
        if node.waiters or node.name in self.sched.pool:
            # Power saving: the jobs that waited for it go back to the queue
            # (Slurm requeues them) and the node is powered down again.
            for job in list(node.waiters):
                self._requeue(job)
            node.state = OFF
            self._count(-1)
        else:
            node.state = FAILED
            self.failed[node.name] = node
        self.version += 1

    def drain(self, node: SimNode) -> None:
        if node.state != UP:
            return
        self.sched.remove_node(node)
        self.idle.pop(node.name, None)
        node.state = DRAINING
        self._touch(node)
        self.version += 1

    def resume(self, node: SimNode) -> None:
        if node.state != DRAINING:
            return
        node.state = UP
        self._touch(node)
        self.sched.add_node(node)
        self._maybe_idle(node)
        self._sched_dirty = True
        self.version += 1

    def delete(self, node: SimNode) -> None:
        """Delete an instance. A node with a job is never deleted: the attempt is
        counted (it would be a policy bug) and refused."""
        if node.jobs:
            self.refused_deletes += 1
            return
        self.booting.pop(node.name, None)
        self.sched.remove_node(node)
        self.idle.pop(node.name, None)
        self.failed.pop(node.name, None)
        del self.nodes[node.name]
        if node.state != OFF:
            self._count(-1)
        node.state = "deleted"
        self._touch(node)
        self.version += 1
