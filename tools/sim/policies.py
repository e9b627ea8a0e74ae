"""The controllers compared: the engine's real policy and three baselines.

- ``dcaas``: calls ``policy.decide`` of plugins/module_utils every cycle with
  an Observed built from the simulated state and carries out its plan
  (launch, drain, resume, delete). There is no other copy of the policy.
  Like the daemon, it makes a pass every ``interval``, on a new pending job
  (the watch) and when a clock of the plan runs out (``policy.next_due``).
  With ``{"wlm": {"nodes": "cloud"}}`` the WLM knows every node while it is
  off, as under power saving; a job placed on off nodes waits for the
  engine, which the WLM's resume hook wakes at once, to power them up, and
  the first queued job's planned start and nodes are shown to the policy
  as ``squeue --start`` shows them.
- ``static``: the traced machine, every node always on.
- ``powersave``: per-job power saving as Slurm (SuspendProgram/ResumeProgram)
  and AWS ParallelCluster do it: the WLM knows every node, places jobs on
  powered-down nodes, which then boot; a node idle for ``suspend_time`` is
  powered down. A node that fails to boot has its jobs requeued.
- ``legacy``: the original Dynamic Cluster daemon's algorithm: no launch
  while any node is starting, only the first 30 queued jobs, their cores
  packed first fit onto new nodes of the first resource by priority (idle
  nodes are not subtracted), idle nodes deleted after 600 s, an instance
  that failed to boot deleted after max_launch_time (1200 s).
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import replace

from ansible_collections.dcaas.cluster.plugins.module_utils.config import Config, parse
from ansible_collections.dcaas.cluster.plugins.module_utils.model import (
    Headroom,
    Job,
    Node,
    NodeState,
    Observed,
    Timers,
)
from ansible_collections.dcaas.cluster.plugins.module_utils.policy import (
    backoff_failed_boots,
    decide,
    next_due,
    next_pass_at,
)
from tools.sim.core import Controller, Simulation
from tools.sim.scheduler import DRAINING, FAILED, OFF, STARTING, UP, SimJob, SimNode

RESOURCE = "sim"
MEMORY_PER_CORE_MB = 4096  # SWF memory is mostly unknown; jobs ask for none
# Enum members as module constants: looking them up on the class is slow,
# and a view is built for every node that changed.
_STARTING, _DOWN, _DRAINING, _BUSY, _IDLE, _OFF = (
    NodeState.STARTING,
    NodeState.DOWN,
    NodeState.DRAINING,
    NodeState.BUSY,
    NodeState.IDLE,
    NodeState.OFF,
)


def _plain_defaults(cls) -> dict:
    out = {}
    for f in dataclasses.fields(cls):
        if f.default_factory is not dataclasses.MISSING:
            raise TypeError(f"{cls.__name__}.{f.name} has a default factory: node_view cannot fill it in")
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
    return out


_NODE_DEFAULTS = _plain_defaults(Node)
_new = object.__new__
_set = object.__setattr__


def node_view(values: dict) -> Node:
    """A Node whose fields are ``values``, every field, defaults included (the
    dict becomes its ``__dict__`` as it is): three times faster than
    ``Node(**values)``. A whole Atlas run builds millions of views, and a
    frozen dataclass's __init__ sets each field through object.__setattr__.
    Nothing is checked here; a test checks that the views the simulator
    builds are equal to Node(**values)."""
    view = _new(Node)
    _set(view, "__dict__", values)
    return view


class Static(Controller):
    name = "static"

    def attach(self, sim: Simulation) -> None:
        sim.add_static(sim.max_nodes)


class PowerSave(Controller):
    name = "powersave"

    def __init__(self, suspend_time: float = 600.0):
        self.suspend_time = suspend_time  # Slurm SuspendTime / ParallelCluster ScaledownIdletime

    def attach(self, sim: Simulation) -> None:
        sim.add_powered_down(sim.max_nodes)

    def on_idle(self, sim: Simulation, node: SimNode) -> None:
        since = node.idle_since

        def check(now: float) -> None:
            if node.state == UP and not node.jobs and node.idle_since == since:
                sim.power_down(node)

        sim.call_at(since + self.suspend_time, check)


class _Periodic(Controller):
    """A daemon that looks at the cluster every ``interval`` seconds.

    A cycle in which nothing changed since the last look and no timer can
    have expired is skipped (``due`` says when one may expire): it would see
    the same state and do the same nothing, and skipping it keeps whole-trace
    runs fast. ``every_cycle`` turns the shortcut off; a test checks that
    both give the same results.
    """

    interval = 30.0
    watch = 0.0  # seconds between looks at the pending jobs between passes; 0: none
    wake_at_due = False  # pass when a clock runs out (``due``), not only every interval

    def __init__(self, every_cycle: bool = False):
        self.every_cycle = every_cycle
        self.cycles = 0
        self.looked = 0
        self.woken = 0
        self._seen = -1
        self._due = math.inf
        self._pass = 0  # passes so far: a call scheduled by an older pass is stale
        self._started = 0.0  # when the last pass ran
        self._new: list[SimJob] = []  # submitted since the last pass
        self._look_at = math.inf  # the next look already scheduled

    def attach(self, sim: Simulation) -> None:
        self.sim = sim
        sim.call_at(sim.t0, self._tick)

    def _tick(self, now: float) -> None:
        sim = self.sim
        self.cycles += 1
        self._pass += 1
        self._started = now
        self._new.clear()
        self._look_at = math.inf
        if self.every_cycle or sim.version != self._seen or now >= self._due:
            self._seen = sim.version
            self.looked += 1
            self._due = self.cycle(now)
        if not sim.done or sim.billable:
            current = self._pass
            # As the daemon sleeps (Dcaas); the original daemon only polled.
            due = self._due if self.wake_at_due else math.inf
            later = next_pass_at(now, self.interval, self.watch, due)
            sim.call_at(later, lambda t: self._pass == current and self._tick(t))

    def on_submit(self, sim: Simulation, job: SimJob) -> None:
        """The daemon's watch (daemon.wait_for_work): between passes it reads
        the pending job ids every ``watch`` seconds, counted from the last
        pass, and starts a pass at once when one it has not seen is pending."""
        if self.watch <= 0:
            return
        self._new.append(job)
        look = self._started + self.watch * max(1, math.ceil((sim.now - self._started) / self.watch))
        if look < self._started + self.interval and look < self._look_at:
            self._look_at = look
            current = self._pass
            sim.call_at(look, lambda t: self._pass == current and self._look(t))

    def _look(self, now: float) -> None:
        self._look_at = math.inf
        if any(j.start < 0 for j in self._new):
            self.woken += 1
            self._tick(now)
        else:
            self._new.clear()  # they all started at once: nothing new is pending

    def cycle(self, now: float) -> float:
        """Look and act; return the earliest time a timer may expire."""
        raise NotImplementedError

    def stats(self) -> dict:
        return {"cycles": self.cycles, "cycles_looked": self.looked, "woken": self.woken}


class Dcaas(_Periodic):
    """The engine. ``config``: a whole Config, or a mapping merged over the
    generated one (``{"timers": {"idle_timeout": 900}}``)."""

    name = "dcaas"
    wake_at_due = True

    def __init__(self, config: Config | dict | None = None, every_cycle: bool = False):
        super().__init__(every_cycle)
        self._config = config
        self.timers = Timers()
        self.decide_seconds = 0.0
        self.decide_max = 0.0
        self.decide_calls = 0
        self._views: dict[str, Node] = {}  # the engine's view of each node, by name

    def attach(self, sim: Simulation) -> None:
        cfg = self._config
        if cfg is None or isinstance(cfg, dict):
            cfg = parse(self.config_for(sim.cores_per_node, sim.max_nodes, cfg or {}))
        self.config = cfg
        self.resource = cfg.resources[0]
        self.interval = float(cfg.timers.interval)
        self.watch = float(cfg.timers.watch)
        self.cloud_nodes = cfg.wlm_nodes == "cloud"
        self._view_base = {**_NODE_DEFAULTS, "resource": self.resource.name, "memory_mb": self.resource.memory_mb}
        if self.cloud_nodes:
            # The WLM knows every node, off; a job placed on an off node
            # waits for the engine to power it up.
            sim.add_powered_down(sim.max_nodes)
            sim.auto_resume = False
        super().attach(sim)

    def after_schedule(self, sim: Simulation) -> None:
        """Cloud nodes: the WLM's resume hook (Slurm ResumeProgram) wakes the
        daemon, which makes a pass at once, as its watch does for new jobs."""
        if sim.resume_wanted:
            sim.resume_wanted = False
            current = self._pass
            sim.call_at(sim.now, lambda t: self._pass == current and self._wake(t))

    def _wake(self, now: float) -> None:
        self.woken += 1
        self._tick(now)

    @staticmethod
    def config_for(cores_per_node: int, max_nodes: int, overrides: dict) -> dict:
        """The engine configuration of one simulated cluster: one resource of
        the trace's node size, max = the traced machine, engine defaults."""
        data = {
            "cluster": "sim",
            "resources": [
                {
                    "name": RESOURCE,
                    "flavor": f"sim.c{cores_per_node}",
                    "image": "worker",
                    "cores": cores_per_node,
                    "memory_mb": cores_per_node * MEMORY_PER_CORE_MB,
                    "max": max_nodes,
                }
            ],
        }
        data.update(overrides)
        return data

    # --- the simulated world as the engine sees it ---------------------------
    @staticmethod
    def _job_view(job: SimJob) -> Job:
        if job.view is None:
            running = job.start >= 0
            job.view = Job(
                id=str(job.id),
                state="running" if running else "pending",
                cores=job.cores,
                nodes=job.nodes,
                walltime_s=int(job.estimate),
                user=str(job.spec.user),
                submit_time=job.submit,
                node_names=tuple(n.name for n in job.alloc) if running else (),
            )
        return job.view

    def _node_view(self, node: SimNode) -> Node:
        state = node.state
        jobs = node.jobs
        values = self._view_base.copy()  # the defaults and the resource's fields
        values["name"] = node.name
        values["created"] = node.created
        values["cores"] = node.cores
        values["jobs"] = tuple(map(str, jobs)) if jobs else ()
        if state == OFF:
            values["state"] = _OFF
            values["instance_id"] = None
            values["in_wlm"] = True
            return node_view(values)
        values["instance_id"] = node.name  # one instance per node, named alike
        values["cores_alloc"] = node.cores - node.free
        if state == STARTING:
            values["state"] = _STARTING
        elif state == FAILED:
            values["state"] = _DOWN
            values["reason"] = "instance ERROR"
        elif state == DRAINING:
            values["state"] = _DRAINING
            values["drained_by_us"] = values["in_wlm"] = True
        else:
            values["state"] = _BUSY if jobs else _IDLE
            values["in_wlm"] = True
            if not jobs:
                values["last_busy"] = node.idle_since
        return node_view(values)

    def observe(self) -> Observed:
        sim = self.sim
        # Views are kept between cycles and rebuilt only for the nodes the
        # simulation reports as changed, so a cycle costs little more than
        # the policy itself. The dict keeps creation order, as sim.nodes does.
        views = self._views
        changed = sim.track_changes()
        for name, node in changed.items():
            if name in sim.nodes:
                views[name] = self._node_view(node)
            else:
                views.pop(name, None)
        changed.clear()
        job_view = self._job_view
        queue = sim.sched.queue
        jobs = [j.view or job_view(j) for j in queue]
        if self.cloud_nodes and queue:
            # What squeue --start shows: the start the WLM plans for the
            # first queued job (EASY plans that one), and its nodes.
            start, spare = sim.sched.reservation(queue[0], sim.now)
            if start != math.inf:
                jobs[0] = replace(jobs[0], start_time=start, planned_nodes=tuple(spare))
        jobs.extend(j.view or job_view(j) for j in sim.sched.running.values())
        headroom = {}
        if sim.cloud.quota is not None:
            headroom[self.resource.name] = Headroom(instances=max(0, sim.cloud.quota - sim.billable))
        return Observed(jobs=tuple(jobs), nodes=tuple(views.values()), headroom=headroom)

    def cycle(self, now: float) -> float:
        sim = self.sim
        observed = self.observe()
        # What Engine.run_once does between observing and deciding: an
        # instance that failed to boot backs its resource off. The engine's
        # own function is called, so the simulation follows the engine if
        # that rule changes. It acts only on nodes seen down, and only a
        # failed instance (sim.failed) is seen down: with none, a call
        # would look at every node for nothing.
        timers = backoff_failed_boots(self.config, observed, self.timers, now) if sim.failed else self.timers
        t = time.perf_counter()
        plan = decide(observed, self.config, now, timers)
        spent = time.perf_counter() - t
        self.decide_seconds += spent
        self.decide_max = max(self.decide_max, spent)
        self.decide_calls += 1
        self.timers = plan.timers
        # Deletes first: they free quota for the replacements in the same plan.
        for action in plan.actions:
            node = sim.nodes.get(action.node)
            if node is None:
                continue
            if action.action == "drain":
                sim.drain(node)
            elif action.action == "resume":
                sim.resume(node)
            elif action.action == "delete":
                sim.delete(node)
            elif action.action == "power_down" and node.state == UP and not node.jobs:
                sim.power_down(node)
        for launch in plan.launches:
            if launch.names:
                for name in launch.names:
                    if sim.nodes[name].state == OFF:
                        sim.power_up(sim.nodes[name])
            else:
                sim.launch(launch.count)
        return next_due(observed, self.config, plan, now)

    def stats(self) -> dict:
        return {
            **super().stats(),
            "decide_calls": self.decide_calls,
            "decide_seconds": round(self.decide_seconds, 3),
            "decide_max_ms": round(self.decide_max * 1e3, 2),
        }


class Legacy(_Periodic):
    name = "legacy"

    def __init__(
        self,
        window: int = 30,
        max_idle_time: float = 600.0,
        max_launch_time: float = 1200.0,
        interval: float = 30.0,
        every_cycle: bool = False,
    ):
        super().__init__(every_cycle)
        self.window = window
        self.max_idle_time = max_idle_time
        self.max_launch_time = max_launch_time
        self.interval = interval

    def cycle(self, now: float) -> float:
        sim = self.sim
        due = math.inf
        for node in list(sim.idle.values()):
            if now - node.idle_since >= self.max_idle_time:
                sim.delete(node)
            else:
                due = min(due, node.idle_since + self.max_idle_time)
        # A failed boot looks like a node that is still starting until
        # max_launch_time, and blocks every launch until then.
        unfinished = False
        for node in [*sim.booting.values(), *sim.failed.values()]:
            if now - node.created > self.max_launch_time:
                sim.delete(node)
            else:
                unfinished = True
                due = min(due, node.created + self.max_launch_time + 1e-6)
        if unfinished:
            return due
        room = sim.max_nodes - len(sim.nodes)
        proposed: list[int] = []  # cores taken on each new node
        size = sim.cores_per_node
        for job in sim.sched.queue[: self.window]:
            nodes = job.nodes
            if job.cores > size:
                continue
            fits_in = sum(1 for used in proposed if used + job.cores <= size)
            if nodes > room - len(proposed) + fits_in:
                continue
            for i, used in enumerate(proposed):
                if nodes and used + job.cores <= size:
                    proposed[i] += job.cores
                    nodes -= 1
            proposed.extend([job.cores] * nodes)
        if proposed:
            sim.launch(len(proposed))
        return due


class DcaasCloud(Dcaas):
    """The engine with cloud nodes (``wlm.nodes: cloud``): the WLM knows every
    node while it is off, the engine powers them up and down. The same
    policy code as ``dcaas``; only the mode differs."""

    name = "dcaas-cloud"

    def __init__(self, config: Config | dict | None = None, every_cycle: bool = False):
        if not isinstance(config, Config):
            config = dict(config or {})
            config["wlm"] = {**(config.get("wlm") or {}), "nodes": "cloud"}
        super().__init__(config, every_cycle)


POLICIES = {"static": Static, "powersave": PowerSave, "legacy": Legacy, "dcaas": Dcaas, "dcaas-cloud": DcaasCloud}
